//! The storage suite, written once and run against SQLite and (when
//! `FAIRLINE_TEST_POSTGRES_URL` is set) PostgreSQL, plus the arrangement cache.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as CDuration, NaiveDate, SubsecRound, Utc};
use fairline::cache::{ArrangementCache, Lookup};
use fairline::config::CacheConfig;
use fairline::domain::{
    Allowance, AllowancePeriod, Arrangement, ArrangementId, ArrangementKind, ArrangementStatus,
    CallId, Day, LanguageSetting, LocalTime, PhoneNumber, Provider, StaffId, Window,
};
use fairline::engine::{Decision, Outcome, Reason};
use fairline::store::postgres::PgStore;
use fairline::store::sqlite::SqliteStore;
use fairline::store::{
    ArrangementFilter, ArrangementStore, ChangeKind, DecideFn, DecisionFilter, DecisionSource,
    NewCall, SharedStore, StoreError,
};

use crate::support;

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

async fn sqlite_store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: the store creates it.
    let path = dir.path().join("nested").join("fairline.db");
    let store = SqliteStore::open_path(&path).await.unwrap();
    assert!(path.exists());
    (Arc::new(store), dir)
}

struct PgTest {
    url: String,
    schema: String,
    store: Arc<PgStore>,
}

impl PgTest {
    /// A second store instance (its own pool) on the same schema.
    async fn another(&self) -> Arc<PgStore> {
        Arc::new(
            PgStore::connect_in_schema(&self.url, &self.schema)
                .await
                .unwrap(),
        )
    }

    async fn finish(self) {
        self.store.close().await;
        PgStore::drop_schema(&self.url, &self.schema).await.unwrap();
    }
}

/// A fresh schema for one PostgreSQL test, or `None` (with a "skipped" line) when
/// `FAIRLINE_TEST_POSTGRES_URL` is not set.
async fn pg_store(test: &str) -> Option<PgTest> {
    let (url, schema) = support::pg_schema(test)?;
    let store = Arc::new(PgStore::connect_in_schema(&url, &schema).await.unwrap());
    Some(PgTest { url, schema, store })
}

/// Run `$name(store)` against SQLite and PostgreSQL.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (store, _dir) = super::sqlite_store().await;
                super::$name(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let name = concat!("storage::", stringify!($name), "::postgres");
                let Some(pg) = super::pg_store(name).await else { return };
                super::$name(pg.store.clone()).await;
                pg.finish().await;
            }
        }
    )*};
}

both_backends!(
    create_get_list_update_revoke_history,
    number_in_use,
    decide_and_record_replays,
    counting_within_period,
    call_status_decision_log_and_purge,
    fifty_racing_calls_under_allowance_of_one,
    cache_negative_entry_then_create,
);

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn num(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// A restricted arrangement, active now (from a day ago for 30 days), with an allowance of one
/// call a day.
fn arrangement(numbers: &[&str]) -> Arrangement {
    let t = now();
    Arrangement {
        id: ArrangementId::generate(),
        customer_ref: "PSOW-2026-00123".into(),
        customer_name: Some("A Customer".into()),
        phone_numbers: numbers.iter().map(|n| num(n)).collect(),
        kind: ArrangementKind::Restricted,
        windows: vec![Window {
            days: vec![Day::Tue, Day::Thu],
            start: LocalTime::hm(10, 0).unwrap(),
            end: LocalTime::hm(12, 0).unwrap(),
        }],
        allowance: Some(Allowance {
            count: 1,
            per: AllowancePeriod::Day,
        }),
        designated_staff: vec![StaffId::parse("alice").unwrap()],
        max_call_minutes: Some(20),
        language: LanguageSetting::CyEn,
        reason: "repeated abusive calls".into(),
        decided_by: "Director of Investigations".into(),
        equality_advice_sought: true,
        advocate: None,
        starts_at: t - CDuration::days(1),
        ends_at: t + CDuration::days(30),
        review_due: (t + CDuration::days(20)).date_naive(),
        revoked_at: None,
        revoked_reason: None,
        created_at: t,
        updated_at: t,
        version: 0,
        customer_explanation: None,
        open_appeals: 0,
        // Not the default, so that round trips show it is stored (SPEC §14).
        urgent_route: false,
    }
}

fn with_period(mut a: Arrangement, from: DateTime<Utc>, to: DateTime<Utc>) -> Arrangement {
    a.starts_at = from;
    a.ends_at = to;
    a.review_due = to.date_naive();
    a
}

fn call(
    a: &Arrangement,
    call_id: &str,
    at: DateTime<Utc>,
    period: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> NewCall {
    NewCall {
        provider: Provider::Twilio,
        call_id: CallId::parse(call_id).unwrap(),
        number: a.phone_numbers[0].clone(),
        arrangement: a.clone(),
        at,
        source: DecisionSource::Store,
        period,
    }
}

/// Continue while fewer than `limit` calls were counted, then refuse (allowance used).
fn limit_decider(a: &Arrangement, limit: u32) -> DecideFn {
    let id = a.id.clone();
    let version = a.version;
    Box::new(move |counted| {
        if counted < limit {
            Decision {
                outcome: Outcome::Continue,
                reason: Reason::WithinArrangement,
                arrangement_id: Some(id.clone()),
                arrangement_version: Some(version),
                route_to: None,
                next_permitted_at: None,
            }
        } else {
            Decision {
                outcome: Outcome::Refuse,
                reason: Reason::AllowanceUsed,
                arrangement_id: Some(id.clone()),
                arrangement_version: Some(version),
                route_to: None,
                next_permitted_at: Some(
                    DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
                        .unwrap()
                        .with_timezone(&Utc),
                ),
            }
        }
    })
}

fn route_decider(a: &Arrangement) -> DecideFn {
    let id = a.id.clone();
    let version = a.version;
    Box::new(move |_| Decision {
        outcome: Outcome::Route,
        reason: Reason::DesignatedStaff,
        arrangement_id: Some(id.clone()),
        arrangement_version: Some(version),
        route_to: Some(StaffId::parse("alice").unwrap()),
        next_permitted_at: None,
    })
}

fn today() -> (DateTime<Utc>, DateTime<Utc>) {
    let t = now();
    (t - CDuration::hours(1), t + CDuration::hours(23))
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

async fn create_get_list_update_revoke_history(store: SharedStore) {
    store.ping().await.unwrap();
    let a = arrangement(&["+442920123456", "+442079460123"]);
    let created = store.create_arrangement(&a, "manager-1").await.unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.id, a.id);
    assert_eq!(created.phone_numbers, a.phone_numbers);
    let got = store.get_arrangement(&a.id).await.unwrap().unwrap();
    assert_eq!(got, created, "stored and returned arrangements agree");
    assert!(store
        .get_arrangement(&ArrangementId::generate())
        .await
        .unwrap()
        .is_none());

    // A scheduled one, an expired one and a blocked one with another number.
    let t = now();
    let scheduled = store
        .create_arrangement(
            &with_period(
                arrangement(&["+447700900001"]),
                t + CDuration::days(5),
                t + CDuration::days(50),
            ),
            "m",
        )
        .await
        .unwrap();
    let expired = store
        .create_arrangement(
            &with_period(
                arrangement(&["+447700900002"]),
                t - CDuration::days(50),
                t - CDuration::days(5),
            ),
            "m",
        )
        .await
        .unwrap();
    let mut blocked = arrangement(&["+447700900003"]);
    blocked.customer_ref = "PSOW-2026-00999".into();
    blocked.kind = ArrangementKind::Blocked;
    blocked.allowance = None;
    blocked.windows = vec![];
    blocked.designated_staff = vec![];
    blocked.review_due = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let blocked = store.create_arrangement(&blocked, "m").await.unwrap();

    let ids = |v: Vec<Arrangement>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let all = store
        .list_arrangements(&ArrangementFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    // Keyset paging walks the same list, in the same order, two at a time.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_arrangements(&ArrangementFilter {
                limit: 2,
                after: after.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|a| a.id.clone());
        paged.extend(page);
        assert!(paged.len() <= 4, "paging does not end");
    }
    assert_eq!(ids(paged), ids(all.clone()));
    let by_phone = store
        .list_arrangements(&ArrangementFilter {
            phone: Some(num("+442079460123")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(by_phone), vec![a.id.clone()]);
    let status = |s| ArrangementFilter {
        status: Some(s),
        now: Some(t),
        ..Default::default()
    };
    let mut active = ids(store
        .list_arrangements(&status(ArrangementStatus::Active))
        .await
        .unwrap());
    active.sort();
    let mut want = vec![a.id.clone(), blocked.id.clone()];
    want.sort();
    assert_eq!(active, want);
    assert_eq!(
        ids(store
            .list_arrangements(&status(ArrangementStatus::Scheduled))
            .await
            .unwrap()),
        vec![scheduled.id.clone()]
    );
    assert_eq!(
        ids(store
            .list_arrangements(&status(ArrangementStatus::Expired))
            .await
            .unwrap()),
        vec![expired.id.clone()]
    );
    assert!(store
        .list_arrangements(&status(ArrangementStatus::Revoked))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store
            .list_arrangements(&ArrangementFilter {
                review_due_before: Some(NaiveDate::from_ymd_opt(2001, 1, 1).unwrap()),
                ..Default::default()
            })
            .await
            .unwrap()),
        vec![blocked.id.clone()]
    );
    assert_eq!(
        store
            .list_arrangements(&ArrangementFilter {
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        2
    );

    // The console's filters: a customer reference in any letter case, and a review date range.
    assert_eq!(
        ids(store
            .list_arrangements(&ArrangementFilter {
                customer_ref: Some(" psow-2026-00999 ".into()),
                ..Default::default()
            })
            .await
            .unwrap()),
        vec![blocked.id.clone()]
    );
    assert!(store
        .list_arrangements(&ArrangementFilter {
            customer_ref: Some("PSOW-2026".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store
            .list_arrangements(&ArrangementFilter {
                review_due_from: Some(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()),
                review_due_before: Some(NaiveDate::from_ymd_opt(2000, 1, 2).unwrap()),
                ..Default::default()
            })
            .await
            .unwrap()),
        vec![blocked.id.clone()]
    );
    assert_eq!(
        store
            .list_arrangements(&ArrangementFilter {
                review_due_from: Some(NaiveDate::from_ymd_opt(2000, 1, 2).unwrap()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        3
    );

    // Update with a version check.
    let mut change = created.clone();
    change.reason = "updated reason".into();
    change.phone_numbers = vec![num("+442920123456"), num("+447700900099")];
    match store.update_arrangement(&change, 7, "manager-2").await {
        Err(StoreError::VersionMismatch { current }) => assert_eq!(current, 1),
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    let updated = store
        .update_arrangement(&change, 1, "manager-2")
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.reason, "updated reason");
    assert_eq!(
        store.get_arrangement(&a.id).await.unwrap().unwrap(),
        updated
    );
    // The number index follows the update.
    assert!(store
        .arrangements_for_number(&num("+442079460123"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store
            .arrangements_for_number(&num("+447700900099"))
            .await
            .unwrap()),
        vec![a.id.clone()]
    );
    let mut ghost = arrangement(&["+447700900098"]);
    ghost.id = ArrangementId::generate();
    assert!(matches!(
        store.update_arrangement(&ghost, 1, "m").await,
        Err(StoreError::NotFound)
    ));

    // Revoke.
    let at = now();
    let revoked = store
        .revoke_arrangement(&a.id, "appeal upheld", "manager-3", at)
        .await
        .unwrap();
    assert_eq!(revoked.version, 3);
    assert_eq!(revoked.revoked_at, Some(at));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("appeal upheld"));
    assert_eq!(
        revoked.status_at(at + CDuration::seconds(1)),
        ArrangementStatus::Revoked
    );
    assert_eq!(
        ids(store
            .list_arrangements(&ArrangementFilter {
                status: Some(ArrangementStatus::Revoked),
                now: Some(at + CDuration::seconds(1)),
                ..Default::default()
            })
            .await
            .unwrap()),
        vec![a.id.clone()]
    );
    assert!(matches!(
        store
            .revoke_arrangement(&ArrangementId::generate(), "x", "m", at)
            .await,
        Err(StoreError::NotFound)
    ));

    // History: every version, oldest first, with who and what.
    let history = store.arrangement_history(&a.id).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(
        history
            .iter()
            .map(|v| (v.version, v.change, v.changed_by.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (1, ChangeKind::Created, "manager-1"),
            (2, ChangeKind::Updated, "manager-2"),
            (3, ChangeKind::Revoked, "manager-3"),
        ]
    );
    assert_eq!(history[0].arrangement, created);
    assert_eq!(history[1].arrangement, updated);
    assert_eq!(history[2].arrangement, revoked);
    assert!(matches!(
        store.arrangement_history(&ArrangementId::generate()).await,
        Err(StoreError::NotFound)
    ));
}

async fn number_in_use(store: SharedStore) {
    let t = now();
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();

    // Overlapping period, same number (written differently before normalisation is the API's
    // job; here the stored forms are equal).
    let b = arrangement(&["+447700900010", "+442920123456"]);
    match store.create_arrangement(&b, "m").await {
        Err(StoreError::NumberInUse {
            number,
            arrangement_id,
        }) => {
            assert_eq!(number, num("+442920123456"));
            assert_eq!(arrangement_id, a.id);
        }
        other => panic!("expected NumberInUse, got {other:?}"),
    }
    // Nothing of the refused arrangement was stored.
    assert!(store.get_arrangement(&b.id).await.unwrap().is_none());
    assert!(store
        .arrangements_for_number(&num("+447700900010"))
        .await
        .unwrap()
        .is_empty());

    // The same number in a period after the first one ends is fine.
    let later = with_period(
        arrangement(&["+442920123456"]),
        a.ends_at,
        a.ends_at + CDuration::days(10),
    );
    store.create_arrangement(&later, "m").await.unwrap();

    // No conflict with an expired arrangement.
    store
        .create_arrangement(
            &with_period(
                arrangement(&["+447700900020"]),
                t - CDuration::days(40),
                t - CDuration::days(10),
            ),
            "m",
        )
        .await
        .unwrap();
    store
        .create_arrangement(&arrangement(&["+447700900020"]), "m")
        .await
        .unwrap();

    // No conflict with a revoked arrangement.
    let r = store
        .create_arrangement(&arrangement(&["+447700900030"]), "m")
        .await
        .unwrap();
    // Starting now, as an arrangement created through the API does by default.
    let fresh = with_period(
        arrangement(&["+447700900030"]),
        now(),
        now() + CDuration::days(30),
    );
    assert!(matches!(
        store.create_arrangement(&fresh, "m").await,
        Err(StoreError::NumberInUse { .. })
    ));
    store
        .revoke_arrangement(&r.id, "ended early", "m", now() - CDuration::hours(2))
        .await
        .unwrap();
    store.create_arrangement(&fresh, "m").await.unwrap();

    // Update: adding a number in force elsewhere is refused; the stored version is unchanged.
    let x = store
        .create_arrangement(&arrangement(&["+447700900040"]), "m")
        .await
        .unwrap();
    let mut change = x.clone();
    change.phone_numbers.push(num("+442920123456"));
    assert!(matches!(
        store.update_arrangement(&change, 1, "m").await,
        Err(StoreError::NumberInUse { .. })
    ));
    assert_eq!(
        store.get_arrangement(&x.id).await.unwrap().unwrap().version,
        1
    );
    // An update keeping its own numbers does not conflict with itself.
    let mut own = x.clone();
    own.reason = "still needed".into();
    assert_eq!(
        store
            .update_arrangement(&own, 1, "m")
            .await
            .unwrap()
            .version,
        2
    );
}

async fn decide_and_record_replays(store: SharedStore) {
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let period = today();
    let first = store
        .decide_and_record(call(&a, "CA001", now(), Some(period)), route_decider(&a))
        .await
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.counted_before, 0);
    assert_eq!(first.decision.outcome, Outcome::Route);
    assert_eq!(
        first.decision.route_to,
        Some(StaffId::parse("alice").unwrap())
    );

    // The retry would decide differently, but the stored decision is returned.
    let again = store
        .decide_and_record(call(&a, "CA001", now(), Some(period)), limit_decider(&a, 0))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.decision, first.decision);
    assert_eq!(again.counted_before, 0);
    assert_eq!(
        store.count_calls(&a.id, period.0, period.1).await.unwrap(),
        1
    );

    // A refusal with next_permitted_at is replayed exactly too.
    let refused = store
        .decide_and_record(call(&a, "CA002", now(), Some(period)), limit_decider(&a, 1))
        .await
        .unwrap();
    assert_eq!(refused.decision.outcome, Outcome::Refuse);
    assert_eq!(refused.counted_before, 1);
    let replay = store
        .decide_and_record(call(&a, "CA002", now(), Some(period)), route_decider(&a))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.decision, refused.decision);
    assert_eq!(replay.counted_before, 1);
    assert!(replay.decision.next_permitted_at.is_some());

    // The same id from the other provider is another call.
    let mut other = call(&a, "CA001", now(), Some(period));
    other.provider = Provider::Telnyx;
    let telnyx = store
        .decide_and_record(other, limit_decider(&a, 5))
        .await
        .unwrap();
    assert!(!telnyx.replayed);
    assert_eq!(telnyx.counted_before, 1);

    // Unknown arrangement.
    let ghost = arrangement(&["+447700900001"]);
    assert!(matches!(
        store
            .decide_and_record(call(&ghost, "CA999", now(), None), route_decider(&ghost))
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn counting_within_period(store: SharedStore) {
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let day = |d: i64| {
        let base = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        (base + CDuration::days(d), base + CDuration::days(d + 1))
    };
    let (d0, d1) = day(0);
    // Yesterday's counted call.
    let r = store
        .decide_and_record(
            call(&a, "CA-y", d0 - CDuration::minutes(1), Some(day(-1))),
            limit_decider(&a, 1),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.decision.outcome, r.counted_before),
        (Outcome::Continue, 0)
    );
    // Today: yesterday's call does not count; the first call is permitted.
    let r = store
        .decide_and_record(call(&a, "CA-1", d0, Some((d0, d1))), limit_decider(&a, 1))
        .await
        .unwrap();
    assert_eq!(
        (r.decision.outcome, r.counted_before),
        (Outcome::Continue, 0)
    );
    // The second is refused, and a refused call is not counted.
    for id in ["CA-2", "CA-3"] {
        let r = store
            .decide_and_record(
                call(&a, id, d0 + CDuration::hours(3), Some((d0, d1))),
                limit_decider(&a, 1),
            )
            .await
            .unwrap();
        assert_eq!((r.decision.outcome, r.counted_before), (Outcome::Refuse, 1));
    }
    assert_eq!(store.count_calls(&a.id, d0, d1).await.unwrap(), 1);
    assert_eq!(
        store
            .count_calls(&a.id, day(-1).0, day(-1).1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_calls(&a.id, d0 - CDuration::days(1), d1)
            .await
            .unwrap(),
        2
    );
    // The end of the period is exclusive.
    store
        .decide_and_record(call(&a, "CA-next", d1, Some(day(1))), limit_decider(&a, 1))
        .await
        .unwrap();
    assert_eq!(store.count_calls(&a.id, d0, d1).await.unwrap(), 1);
    assert_eq!(store.count_calls(&a.id, d1, day(1).1).await.unwrap(), 1);
    // Without a period (no allowance) nothing is counted before.
    let r = store
        .decide_and_record(
            call(&a, "CA-free", d0 + CDuration::hours(4), None),
            limit_decider(&a, 1),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.decision.outcome, r.counted_before),
        (Outcome::Continue, 0)
    );
    assert_eq!(store.count_calls(&a.id, d0, d1).await.unwrap(), 2);
    // Another arrangement's calls are not this one's.
    let b = store
        .create_arrangement(&arrangement(&["+447700900001"]), "m")
        .await
        .unwrap();
    assert_eq!(store.count_calls(&b.id, d0, d1).await.unwrap(), 0);
}

async fn call_status_decision_log_and_purge(store: SharedStore) {
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let b = store
        .create_arrangement(&arrangement(&["+447700900001"]), "m")
        .await
        .unwrap();
    let base = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    for (i, arr) in [&a, &a, &b].iter().enumerate() {
        let mut c = call(
            arr,
            &format!("CA{i}"),
            base + CDuration::hours(i as i64),
            None,
        );
        c.source = if i == 2 {
            DecisionSource::StaleCache
        } else {
            DecisionSource::Cache
        };
        store
            .decide_and_record(c, route_decider(arr))
            .await
            .unwrap();
    }

    // The caller of a logged call can be found by its call id (any instance).
    assert_eq!(
        store
            .logged_caller(Provider::Twilio, &CallId::parse("CA2").unwrap())
            .await
            .unwrap(),
        Some(b.phone_numbers[0].clone())
    );
    assert_eq!(
        store
            .logged_caller(Provider::Telnyx, &CallId::parse("CA2").unwrap())
            .await
            .unwrap(),
        None
    );
    assert!(store
        .record_call_status(
            Provider::Twilio,
            &CallId::parse("CA0").unwrap(),
            "completed",
            Some(73)
        )
        .await
        .unwrap());
    // A duplicate status callback without a duration keeps the duration.
    assert!(store
        .record_call_status(
            Provider::Twilio,
            &CallId::parse("CA0").unwrap(),
            "completed",
            None
        )
        .await
        .unwrap());
    assert!(!store
        .record_call_status(
            Provider::Twilio,
            &CallId::parse("CA-unknown").unwrap(),
            "completed",
            Some(1)
        )
        .await
        .unwrap());
    assert!(!store
        .record_call_status(
            Provider::Telnyx,
            &CallId::parse("CA0").unwrap(),
            "completed",
            Some(1)
        )
        .await
        .unwrap());

    let all = store
        .list_decisions(&DecisionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(),
        vec!["CA2", "CA1", "CA0"],
        "newest first"
    );
    let ca0 = &all[2];
    assert_eq!(ca0.final_status.as_deref(), Some("completed"));
    assert_eq!(ca0.duration_seconds, Some(73));
    assert_eq!(ca0.number, num("+442920123456"));
    assert_eq!(ca0.provider, Provider::Twilio);
    assert_eq!(ca0.decided_at, base);
    assert_eq!(ca0.source, DecisionSource::Cache);
    assert!(ca0.counted);
    assert_eq!(ca0.decision.arrangement_id, Some(a.id.clone()));
    assert_eq!(ca0.decision.arrangement_version, Some(1));
    assert_eq!(ca0.decision.reason, Reason::DesignatedStaff);
    assert_eq!(all[0].source, DecisionSource::StaleCache);

    let by_phone = store
        .list_decisions(&DecisionFilter {
            phone: Some(num("+442920123456")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_phone.len(), 2);
    let window = store
        .list_decisions(&DecisionFilter {
            since: Some(base + CDuration::hours(1)),
            until: Some(base + CDuration::hours(2)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        window
            .iter()
            .map(|e| e.call_id.as_str())
            .collect::<Vec<_>>(),
        vec!["CA1"]
    );
    let limited = store
        .list_decisions(&DecisionFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);

    assert_eq!(
        store
            .purge_decisions(base + CDuration::hours(2))
            .await
            .unwrap(),
        2
    );
    let left = store
        .list_decisions(&DecisionFilter::default())
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(),
        vec!["CA2"]
    );
    assert_eq!(store.purge_decisions(base).await.unwrap(), 0);
}

async fn race_under_allowance(stores: Vec<SharedStore>, a: &Arrangement, per_store: usize) {
    let period = today();
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for i in 0..per_store {
            let store = store.clone();
            let c = call(a, &format!("CA-race-{s}-{i}"), now(), Some(period));
            let decide = limit_decider(a, 1);
            tasks.push(tokio::spawn(async move {
                store.decide_and_record(c, decide).await
            }));
        }
    }
    let mut continued = 0;
    let mut refused = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        match r.decision.outcome {
            Outcome::Continue => continued += 1,
            Outcome::Refuse => {
                assert_eq!(r.counted_before, 1);
                refused += 1
            }
            Outcome::Route => panic!("unexpected route"),
        }
    }
    assert_eq!(continued, 1, "exactly one call is permitted");
    assert_eq!(refused, stores.len() * per_store - 1);
    assert_eq!(
        stores[0]
            .count_calls(&a.id, period.0, period.1)
            .await
            .unwrap(),
        1
    );
    let logged = stores[0]
        .list_decisions(&DecisionFilter::default())
        .await
        .unwrap();
    assert_eq!(logged.len(), stores.len() * per_store);
    assert_eq!(logged.iter().filter(|e| e.counted).count(), 1);
}

async fn fifty_racing_calls_under_allowance_of_one(store: SharedStore) {
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    race_under_allowance(vec![store], &a, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_instances_race_under_allowance_of_one() {
    let Some(pg) = pg_store("storage::two_postgres_instances_race_under_allowance_of_one").await
    else {
        return;
    };
    let other = pg.another().await;
    let a = pg
        .store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    race_under_allowance(vec![pg.store.clone(), other.clone()], &a, 25).await;
    other.close().await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Cache
// ---------------------------------------------------------------------------------------------

fn cache_cfg(ttl: Duration) -> CacheConfig {
    CacheConfig {
        ttl,
        max_entries: 1000,
    }
}

fn found(l: Lookup) -> (Arc<Vec<Arrangement>>, DecisionSource) {
    match l {
        Lookup::Found {
            arrangements,
            source,
        } => (arrangements, source),
        Lookup::Failed => panic!("lookup failed"),
    }
}

async fn cache_negative_entry_then_create(store: SharedStore) {
    let cache = ArrangementCache::new(
        store.clone(),
        &cache_cfg(Duration::from_secs(60)),
        Duration::from_millis(500),
    );
    let n = num("+442920123456");
    let (list, source) = found(cache.lookup(&n).await);
    assert!(list.is_empty());
    assert_eq!(source, DecisionSource::Store);
    let (list, source) = found(cache.lookup(&n).await);
    assert!(list.is_empty(), "negative entry");
    assert_eq!(source, DecisionSource::Cache);

    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    // Still the (fresh) negative entry until invalidated.
    let (list, _) = found(cache.lookup(&n).await);
    assert!(list.is_empty());
    cache.invalidate(std::slice::from_ref(&n)).await;
    let (list, source) = found(cache.lookup(&n).await);
    assert_eq!(source, DecisionSource::Store);
    assert_eq!(
        list.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone()]
    );
    let (_, source) = found(cache.lookup(&n).await);
    assert_eq!(source, DecisionSource::Cache);

    // invalidate_all also forces a re-read.
    cache.invalidate_all();
    let (list, source) = found(cache.lookup(&n).await);
    assert_eq!(source, DecisionSource::Store);
    assert_eq!(list.len(), 1);

    // An expired entry is re-read.
    let short = ArrangementCache::new(
        store,
        &cache_cfg(Duration::from_millis(50)),
        Duration::from_millis(500),
    );
    assert_eq!(found(short.lookup(&n).await).1, DecisionSource::Store);
    assert_eq!(found(short.lookup(&n).await).1, DecisionSource::Cache);
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(found(short.lookup(&n).await).1, DecisionSource::Store);
}

/// With the store unreachable, a cached entry is served stale and an uncached number fails
/// quickly.
async fn check_unreachable(
    cache: &ArrangementCache,
    cached: &PhoneNumber,
    a: &Arrangement,
    lookup_timeout: Duration,
) {
    // Let the entry go stale.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (list, source) = found(cache.lookup(cached).await);
    assert_eq!(source, DecisionSource::StaleCache);
    assert_eq!(
        list.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![a.id.clone()]
    );
    let started = Instant::now();
    assert!(matches!(
        cache.lookup(&num("+447700900077")).await,
        Lookup::Failed
    ));
    assert!(started.elapsed() < lookup_timeout + Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_serves_stale_when_sqlite_is_closed() {
    let (store, _dir) = sqlite_store().await;
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let timeout = Duration::from_millis(250);
    let cache = ArrangementCache::new(
        store.clone(),
        &cache_cfg(Duration::from_millis(30)),
        timeout,
    );
    let n = num("+442920123456");
    assert_eq!(found(cache.lookup(&n).await).1, DecisionSource::Store);
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    check_unreachable(&cache, &n, &a, timeout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_serves_stale_when_postgres_is_unreachable() {
    let Some(pg) = pg_store("storage::cache_serves_stale_when_postgres_is_unreachable").await
    else {
        return;
    };
    let a = pg
        .store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let second = pg.another().await;
    let timeout = Duration::from_millis(250);
    let cache = ArrangementCache::new(
        second.clone(),
        &cache_cfg(Duration::from_millis(30)),
        timeout,
    );
    let n = num("+442920123456");
    assert_eq!(found(cache.lookup(&n).await).1, DecisionSource::Store);
    second.close().await;
    assert!(matches!(
        second.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    check_unreachable(&cache, &n, &a, timeout).await;
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_times_out_a_slow_store() {
    let (store, _dir) = sqlite_store().await;
    let a = store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let slow = Arc::new(support::SlowStore::new(store.clone()));
    let timeout = Duration::from_millis(100);
    let cache = ArrangementCache::new(slow.clone(), &cache_cfg(Duration::from_millis(30)), timeout);
    let n = num("+442920123456");
    slow.set_delay(Duration::ZERO);
    assert_eq!(found(cache.lookup(&n).await).1, DecisionSource::Store);
    slow.set_delay(Duration::from_secs(5));
    check_unreachable(&cache, &n, &a, timeout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_change_on_one_instance_reaches_another_cache_within_a_second() {
    let Some(pg) =
        pg_store("storage::postgres_change_on_one_instance_reaches_another_cache_within_a_second")
            .await
    else {
        return;
    };
    let b = pg.another().await;
    let cache = ArrangementCache::new(
        b.clone(),
        &cache_cfg(Duration::from_secs(600)),
        Duration::from_millis(500),
    );
    let listener = cache
        .spawn_change_listener()
        .expect("postgres has notifications");
    let n = num("+442920123456");
    let (list, _) = found(cache.lookup(&n).await);
    assert!(list.is_empty());
    assert_eq!(found(cache.lookup(&n).await).1, DecisionSource::Cache);

    // Create through instance A.
    let a = pg
        .store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let (list, _) = found(cache.lookup(&n).await);
        if list.len() == 1 {
            assert_eq!(list[0].id, a.id);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "change not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Revoke through A: the cached entry is refreshed too.
    pg.store
        .revoke_arrangement(&a.id, "appeal upheld", "m", now())
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let (list, _) = found(cache.lookup(&n).await);
        if list[0].revoked_at.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "revocation not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    listener.abort();
    b.close().await;
    pg.finish().await;
}

#[tokio::test]
async fn sqlite_has_no_change_feed() {
    let (store, _dir) = sqlite_store().await;
    let shared: SharedStore = store;
    assert!(shared.subscribe_changes().is_none());
    let cache = ArrangementCache::new(
        shared,
        &cache_cfg(Duration::from_secs(1)),
        Duration::from_millis(100),
    );
    assert!(cache.spawn_change_listener().is_none());
}

#[tokio::test]
async fn open_from_config_creates_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("fairline.db");
    let cfg = fairline::config::StorageConfig {
        url: fairline::config::Secret::new(format!("sqlite://{}", path.display())),
        spool_dir: None,
    };
    let store = fairline::store::open(&cfg).await.unwrap();
    store.ping().await.unwrap();
    assert!(path.exists());
    drop(store);
    // Reopening runs the migrations again harmlessly and keeps the data.
    let store = fairline::store::open(&cfg).await.unwrap();
    store
        .create_arrangement(&arrangement(&["+442920123456"]), "m")
        .await
        .unwrap();
    drop(store);
    let store = fairline::store::open(&cfg).await.unwrap();
    assert_eq!(
        store
            .list_arrangements(&ArrangementFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}
