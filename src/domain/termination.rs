//! Ended calls (SPEC §9): why staff ended a call, how the hang-up went, the record kept and
//! a manager's review of it. Shared by the store, the terminations service and the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ArrangementId, CallId, PhoneNumber, Provider, TerminationId};

/// How a hang-up request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupResult {
    Completed,
    AlreadyEnded,
    Failed,
}

impl HangupResult {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupResult::Completed => "completed",
            HangupResult::AlreadyEnded => "already_ended",
            HangupResult::Failed => "failed",
        }
    }
}

/// Why a member of staff ended a call (SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    Aggressive,
    Abusive,
    Offensive,
    Swearing,
    NotLettingStaffSpeak,
    Sexist,
    Racist,
    UpsettingStaff,
    ThreatOfViolence,
    UnreasonableDemands,
    Other,
}

impl TerminationReason {
    pub const ALL: [TerminationReason; 11] = [
        TerminationReason::Aggressive,
        TerminationReason::Abusive,
        TerminationReason::Offensive,
        TerminationReason::Swearing,
        TerminationReason::NotLettingStaffSpeak,
        TerminationReason::Sexist,
        TerminationReason::Racist,
        TerminationReason::UpsettingStaff,
        TerminationReason::ThreatOfViolence,
        TerminationReason::UnreasonableDemands,
        TerminationReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TerminationReason::Aggressive => "aggressive",
            TerminationReason::Abusive => "abusive",
            TerminationReason::Offensive => "offensive",
            TerminationReason::Swearing => "swearing",
            TerminationReason::NotLettingStaffSpeak => "not_letting_staff_speak",
            TerminationReason::Sexist => "sexist",
            TerminationReason::Racist => "racist",
            TerminationReason::UpsettingStaff => "upsetting_staff",
            TerminationReason::ThreatOfViolence => "threat_of_violence",
            TerminationReason::UnreasonableDemands => "unreasonable_demands",
            TerminationReason::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    /// A threat of violence must be reported to the police (and needs no warning).
    pub fn police_report_required(self) -> bool {
        self == TerminationReason::ThreatOfViolence
    }
}

/// What a manager decided on reviewing a termination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    NoFurtherAction,
    WriteToCustomer,
    ProposeArrangement,
    ReferToPolice,
}

impl ReviewOutcome {
    pub const ALL: [ReviewOutcome; 4] = [
        ReviewOutcome::NoFurtherAction,
        ReviewOutcome::WriteToCustomer,
        ReviewOutcome::ProposeArrangement,
        ReviewOutcome::ReferToPolice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::NoFurtherAction => "no_further_action",
            ReviewOutcome::WriteToCustomer => "write_to_customer",
            ReviewOutcome::ProposeArrangement => "propose_arrangement",
            ReviewOutcome::ReferToPolice => "refer_to_police",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// A manager's review of a termination.
#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub outcome: ReviewOutcome,
    pub reviewer: String,
    pub notes: Option<String>,
    pub reviewed_at: DateTime<Utc>,
}

/// One ended call, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Termination {
    pub id: TerminationId,
    pub provider: Provider,
    pub call_id: CallId,
    /// The caller's number, when the platform told us and it is a number.
    pub caller: Option<PhoneNumber>,
    pub arrangement_id: Option<ArrangementId>,
    pub customer_ref: Option<String>,
    /// The API token's name.
    pub agent: String,
    pub reason: TerminationReason,
    pub warning_given: bool,
    pub warned_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub terminated_at: DateTime<Utc>,
    /// `None` while provisional (claimed, the platform not yet asked or not yet answered).
    pub hangup: Option<HangupResult>,
    pub hangup_detail: Option<String>,
    /// Until when the claiming request owns a provisional row.
    pub claimed_until: DateTime<Utc>,
    pub review: Option<Review>,
}

impl Termination {
    pub fn is_provisional(&self) -> bool {
        self.hangup.is_none()
    }
}
