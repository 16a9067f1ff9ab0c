//! Helpers shared by the SQLite and PostgreSQL stores: encoding of domain values into columns,
//! decoding rows back, error mapping.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ArrangementVersion, ChangeKind, DecisionLogEntry, DecisionSource, StoreError};
use crate::domain::{
    Allowance, Arrangement, ArrangementId, ArrangementKind, CallId, LanguageSetting, PhoneNumber,
    Provider, StaffId, Window,
};
use crate::engine::{Decision, Outcome, Reason};

/// The most rows one list call returns (also used when the caller asks for 0).
pub(crate) const MAX_LIST: u32 = 1000;

pub(crate) fn list_limit(requested: u32) -> i64 {
    i64::from(if requested == 0 {
        MAX_LIST
    } else {
        requested.min(MAX_LIST)
    })
}

/// Both backends keep instants to the millisecond, so values round-trip identically.
pub(crate) fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(3)
}

/// The wall-clock time, to the millisecond (for operational rows such as the outbox).
pub(crate) fn now_ms() -> DateTime<Utc> {
    trunc(Utc::now())
}

pub(crate) fn normalise_arrangement(a: &Arrangement) -> Arrangement {
    let mut a = a.clone();
    a.starts_at = trunc(a.starts_at);
    a.ends_at = trunc(a.ends_at);
    a.revoked_at = a.revoked_at.map(trunc);
    a.created_at = trunc(a.created_at);
    a.updated_at = trunc(a.updated_at);
    a
}

pub(crate) fn normalise_decision(mut d: Decision) -> Decision {
    d.next_permitted_at = d.next_permitted_at.map(trunc);
    d
}

/// The end of the period in which an arrangement can be in force: `ends_at`, or `revoked_at`
/// when that is earlier.
pub(crate) fn effective_end(a: &Arrangement) -> DateTime<Utc> {
    match a.revoked_at {
        Some(r) if r < a.ends_at => r,
        _ => a.ends_at,
    }
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("encoding: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Internal(format!("decoding {what}: {e}")))
}

/// The serde name of a unit enum variant (`"restricted"`, `"allowance_used"`…).
pub(crate) fn enum_str<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Internal("encoding an enum".into())),
    }
}

pub(crate) fn enum_from<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| StoreError::Internal(format!("decoding {what}: {e}")))
}

pub(crate) fn change_kind_str(c: ChangeKind) -> &'static str {
    match c {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Revoked => "revoked",
        ChangeKind::Reviewed => "reviewed",
        ChangeKind::Appealed => "appealed",
        ChangeKind::AppealDecided => "appeal_decided",
    }
}

/// An arrangement row as read from either backend, before parsing.
pub(crate) struct RawArrangement {
    pub id: String,
    pub customer_ref: String,
    pub customer_name: Option<String>,
    pub phone_numbers: String,
    pub kind: String,
    pub windows: String,
    pub allowance: Option<String>,
    pub designated_staff: String,
    pub max_call_minutes: Option<i64>,
    pub language: String,
    pub reason: String,
    pub decided_by: String,
    pub equality_advice_sought: bool,
    pub advocate: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub review_due: NaiveDate,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub customer_explanation: Option<String>,
    pub open_appeals: i64,
    pub urgent_route: bool,
}

impl RawArrangement {
    pub fn into_domain(self) -> Result<Arrangement, StoreError> {
        let bad = |what: &str| StoreError::Internal(format!("decoding {what}"));
        Ok(Arrangement {
            id: ArrangementId::parse(&self.id).map_err(|_| bad("id"))?,
            customer_ref: self.customer_ref,
            customer_name: self.customer_name,
            phone_numbers: from_json::<Vec<PhoneNumber>>(&self.phone_numbers, "phone_numbers")?,
            kind: enum_from::<ArrangementKind>(&self.kind, "kind")?,
            windows: from_json::<Vec<Window>>(&self.windows, "windows")?,
            allowance: match self.allowance.as_deref() {
                None => None,
                Some(s) => from_json::<Option<Allowance>>(s, "allowance")?,
            },
            designated_staff: from_json::<Vec<StaffId>>(&self.designated_staff, "staff")?,
            max_call_minutes: self
                .max_call_minutes
                .map(u32::try_from)
                .transpose()
                .map_err(|_| bad("max_call_minutes"))?,
            language: self
                .language
                .parse::<LanguageSetting>()
                .map_err(|_| bad("language"))?,
            reason: self.reason,
            decided_by: self.decided_by,
            equality_advice_sought: self.equality_advice_sought,
            advocate: self.advocate,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            review_due: self.review_due,
            revoked_at: self.revoked_at,
            revoked_reason: self.revoked_reason,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            customer_explanation: self.customer_explanation,
            open_appeals: u32::try_from(self.open_appeals).unwrap_or(u32::MAX),
            urgent_route: self.urgent_route,
        })
    }
}

/// The encoded columns of an arrangement that are the same text on both backends.
pub(crate) struct EncodedArrangement {
    pub phone_numbers: String,
    pub kind: String,
    pub windows: String,
    pub allowance: Option<String>,
    pub designated_staff: String,
    pub max_call_minutes: Option<i64>,
    pub language: String,
}

pub(crate) fn encode_arrangement(a: &Arrangement) -> Result<EncodedArrangement, StoreError> {
    Ok(EncodedArrangement {
        phone_numbers: to_json(&a.phone_numbers)?,
        kind: enum_str(&a.kind)?,
        windows: to_json(&a.windows)?,
        allowance: a.allowance.as_ref().map(to_json).transpose()?,
        designated_staff: to_json(&a.designated_staff)?,
        max_call_minutes: a.max_call_minutes.map(i64::from),
        language: a.language.as_str().to_owned(),
    })
}

pub(crate) fn decode_version(
    version: i64,
    change: &str,
    actor: String,
    changed_at: DateTime<Utc>,
    snapshot: &str,
) -> Result<ArrangementVersion, StoreError> {
    Ok(ArrangementVersion {
        version,
        change: enum_from::<ChangeKind>(change, "change")?,
        changed_by: actor,
        changed_at,
        arrangement: from_json::<Arrangement>(snapshot, "snapshot")?,
    })
}

/// A decision-log row as read from either backend, before parsing.
pub(crate) struct RawCall {
    pub provider: String,
    pub call_id: String,
    pub number: String,
    pub arrangement_id: Option<String>,
    pub arrangement_version: Option<i64>,
    pub decided_at: DateTime<Utc>,
    pub outcome: String,
    pub reason: String,
    pub route_to: Option<String>,
    pub next_permitted_at: Option<DateTime<Utc>>,
    pub source: String,
    pub counted: bool,
    pub counted_before: i64,
    pub final_status: Option<String>,
    pub duration_seconds: Option<i64>,
}

impl RawCall {
    pub fn decision(&self) -> Result<Decision, StoreError> {
        let bad = |what: &str| StoreError::Internal(format!("decoding {what}"));
        Ok(Decision {
            outcome: enum_from::<Outcome>(&self.outcome, "outcome")?,
            reason: enum_from::<Reason>(&self.reason, "reason")?,
            arrangement_id: self
                .arrangement_id
                .as_deref()
                .map(ArrangementId::parse)
                .transpose()
                .map_err(|_| bad("arrangement_id"))?,
            arrangement_version: self.arrangement_version,
            route_to: self
                .route_to
                .as_deref()
                .map(StaffId::parse)
                .transpose()
                .map_err(|_| bad("route_to"))?,
            next_permitted_at: self.next_permitted_at,
        })
    }

    pub fn counted_before(&self) -> u32 {
        u32::try_from(self.counted_before).unwrap_or(u32::MAX)
    }

    pub fn into_entry(self) -> Result<DecisionLogEntry, StoreError> {
        let bad = |what: &str| StoreError::Internal(format!("decoding {what}"));
        let decision = self.decision()?;
        Ok(DecisionLogEntry {
            provider: self
                .provider
                .parse::<Provider>()
                .map_err(|_| bad("provider"))?,
            call_id: CallId::parse(&self.call_id).map_err(|_| bad("call_id"))?,
            number: PhoneNumber::parse(&self.number).map_err(|_| bad("number"))?,
            decided_at: self.decided_at,
            decision,
            source: enum_from::<DecisionSource>(&self.source, "source")?,
            counted: self.counted,
            final_status: self.final_status,
            duration_seconds: self.duration_seconds,
        })
    }
}

/// Map a driver error: connection trouble is `Unavailable`; anything else is `Internal` with a
/// generic message (the detail is logged, never returned, so SQL never reaches an API caller).
pub(crate) fn map_sqlx(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match &e {
        E::PoolTimedOut => StoreError::Unavailable("timed out waiting for a connection".into()),
        E::PoolClosed => StoreError::Unavailable("the connection pool is closed".into()),
        E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
            tracing::warn!(error = %e, "storage connection error");
            StoreError::Unavailable("connection error".into())
        }
        E::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite BUSY / LOCKED (and extended forms); PostgreSQL connection exceptions
            // (class 08), admin shutdown / cannot connect now (57P0x), too many connections.
            let unavailable = matches!(code.as_str(), "5" | "6" | "261" | "517" | "262")
                || code.starts_with("08")
                || code.starts_with("57P")
                || code == "53300";
            tracing::warn!(code = %code, error = %db.message(), "storage database error");
            if unavailable {
                StoreError::Unavailable("the database is busy or unreachable".into())
            } else {
                StoreError::Internal("database error".into())
            }
        }
        _ => {
            tracing::warn!(error = %e, "storage error");
            StoreError::Internal("database error".into())
        }
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The numbers whose lookups change when an arrangement goes from `old` to `new`.
pub(crate) fn touched_numbers(old: Option<&Arrangement>, new: &Arrangement) -> Vec<PhoneNumber> {
    let mut out: Vec<PhoneNumber> = new.phone_numbers.clone();
    if let Some(o) = old {
        out.extend(o.phone_numbers.iter().cloned());
    }
    out.sort();
    out.dedup();
    out
}

/// Deduplicated numbers, sorted (locks are always taken in this order).
pub(crate) fn sorted_numbers(a: &Arrangement) -> Vec<PhoneNumber> {
    let mut v = a.phone_numbers.clone();
    v.sort();
    v.dedup();
    v
}
