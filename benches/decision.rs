//! Decisions per second for a restricted arrangement with three windows and an allowance, for
//! an instant inside a window and one outside (which also computes `next_permitted_at`).
// Set-up of fixed, known-good fixtures: a failure there is a bug in the benchmark itself.
#![allow(clippy::panic)]

use std::collections::BTreeSet;
use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fairline::domain::{
    Allowance, AllowancePeriod, Arrangement, ArrangementId, ArrangementKind, CallerId, Day,
    LanguageSetting, LocalTime, PhoneNumber, Window,
};
use fairline::engine::{decide, Calendar, Reason};

fn at(s: &str) -> DateTime<Utc> {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(e) => panic!("bad instant {s}: {e}"),
    }
}

fn time(s: &str) -> LocalTime {
    match LocalTime::parse(s) {
        Ok(t) => t,
        Err(e) => panic!("bad time {s}: {e}"),
    }
}

fn arrangement() -> Arrangement {
    let window = |days: &[Day], start: &str, end: &str| Window {
        days: days.to_vec(),
        start: time(start),
        end: time(end),
    };
    let number = match PhoneNumber::parse("+442920123456") {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    };
    let id = match ArrangementId::parse("arr_01JF0000000000000000000000") {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    };
    Arrangement {
        id,
        customer_ref: "PSOW-2026-00123".into(),
        customer_name: None,
        phone_numbers: vec![number],
        kind: ArrangementKind::Restricted,
        windows: vec![
            window(&[Day::Tue, Day::Thu], "10:00", "12:00"),
            window(&[Day::Mon], "14:00", "15:30"),
            window(&[Day::Fri], "09:00", "10:00"),
        ],
        allowance: Some(Allowance {
            count: 2,
            per: AllowancePeriod::Week,
        }),
        designated_staff: vec![],
        max_call_minutes: None,
        language: LanguageSetting::EnCy,
        reason: "bench".into(),
        decided_by: "bench".into(),
        equality_advice_sought: false,
        advocate: None,
        starts_at: at("2026-01-01T00:00:00Z"),
        ends_at: at("2027-06-01T00:00:00Z"),
        review_due: chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap_or_default(),
        revoked_at: None,
        revoked_reason: None,
        created_at: at("2026-01-01T00:00:00Z"),
        updated_at: at("2026-01-01T00:00:00Z"),
        version: 1,
        customer_explanation: None,
        open_appeals: 0,
        urgent_route: true,
    }
}

fn bench(c: &mut Criterion) {
    let arr = arrangement();
    let caller = CallerId::Number(arr.phone_numbers[0].clone());
    let calendar = Calendar {
        tz: chrono_tz::Europe::London,
        closed_dates: ["2026-12-25", "2026-12-28"]
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect::<BTreeSet<_>>(),
    };
    // Tuesday 1 December 2026 10:30 (inside) and Tuesday 12:30 (outside; next is Thursday).
    let inside = at("2026-12-01T10:30:00Z");
    let outside = at("2026-12-01T12:30:00Z");
    assert_eq!(
        decide(&caller, Some(&arr), 1, inside, &calendar).reason,
        Reason::WithinArrangement
    );
    assert_eq!(
        decide(&caller, Some(&arr), 1, outside, &calendar).reason,
        Reason::OutsideWindow
    );

    let mut g = c.benchmark_group("decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function("inside_window", |b| {
        b.iter(|| {
            decide(
                black_box(&caller),
                black_box(Some(&arr)),
                black_box(1),
                black_box(inside),
                black_box(&calendar),
            )
        })
    });
    g.bench_function("outside_window", |b| {
        b.iter(|| {
            decide(
                black_box(&caller),
                black_box(Some(&arr)),
                black_box(1),
                black_box(outside),
                black_box(&calendar),
            )
        })
    });
    g.bench_function("allowance_used", |b| {
        b.iter(|| {
            decide(
                black_box(&caller),
                black_box(Some(&arr)),
                black_box(2),
                black_box(inside),
                black_box(&calendar),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
