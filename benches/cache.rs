//! Lookups per second through `ArrangementCache` in front of a SQLite store holding 1,000,000
//! arrangements: a cache hit, a negative hit (a number under no arrangement), and, for scale,
//! the store read a miss costs. Also prints the resident memory of 100,000 cached entries of
//! each kind (VmRSS from /proc/self/status, before and after filling).
//!
//! `cargo bench --bench cache` (set `FAIRLINE_BENCH_ARRANGEMENTS` for another size).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fairline::cache::{ArrangementCache, Lookup};
use fairline::config::CacheConfig;
use fairline::domain::{
    Allowance, AllowancePeriod, Arrangement, ArrangementId, ArrangementKind, LanguageSetting,
    PhoneNumber,
};
use fairline::store::sqlite::SqliteStore;
use fairline::store::{ArrangementStore, SharedStore};

const TEMPLATE_NUMBER: &str = "+447499999999";

/// The number of the `n`th generated arrangement (UK mobile-shaped, one per arrangement).
fn number(n: u64) -> PhoneNumber {
    PhoneNumber::parse(&format!("+4474{n:08}")).unwrap()
}

/// A number under no arrangement.
fn free_number(n: u64) -> PhoneNumber {
    PhoneNumber::parse(&format!("+4475{n:08}")).unwrap()
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One arrangement through the store API (the row shape to copy), then `count` more by a
/// single `INSERT … SELECT` over a recursive sequence, inside one transaction per table.
async fn build_store(path: &std::path::Path, count: u64) -> SharedStore {
    let store = SqliteStore::open_path(path).await.unwrap();
    let template = Arrangement {
        id: ArrangementId::generate(),
        customer_ref: "BENCH-TEMPLATE".into(),
        customer_name: None,
        phone_numbers: vec![PhoneNumber::parse(TEMPLATE_NUMBER).unwrap()],
        kind: ArrangementKind::Restricted,
        windows: Vec::new(),
        allowance: Some(Allowance {
            count: 1,
            per: AllowancePeriod::Day,
        }),
        designated_staff: Vec::new(),
        max_call_minutes: None,
        language: LanguageSetting::En,
        reason: "benchmark".into(),
        decided_by: "benchmark".into(),
        equality_advice_sought: false,
        advocate: None,
        starts_at: Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
        ends_at: Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap(),
        review_due: NaiveDate::from_ymd_opt(2098, 1, 1).unwrap(),
        revoked_at: None,
        revoked_reason: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        version: 1,
        customer_explanation: None,
        open_appeals: 0,
        urgent_route: true,
    };
    let created = store.create_arrangement(&template, "bench").await.unwrap();
    store.close().await;

    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let started = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    // Ids `arr_` + 26 digits are valid ULIDs; the number JSON is written the way the store does.
    sqlx::query(
        "INSERT INTO arrangements (id, customer_ref, customer_name, phone_numbers, kind, windows, \
         allowance, designated_staff, max_call_minutes, language, reason, decided_by, \
         equality_advice_sought, advocate, starts_at, ends_at, review_due, revoked_at, \
         revoked_reason, created_at, updated_at, version) \
         WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1) \
         SELECT printf('arr_%026d', n), printf('BENCH-%d', n), customer_name, \
                printf('[\"+4474%08d\"]', n), kind, windows, allowance, designated_staff, \
                max_call_minutes, language, reason, decided_by, equality_advice_sought, advocate, \
                starts_at, ends_at, review_due, revoked_at, revoked_reason, created_at, updated_at, \
                version \
         FROM seq, arrangements AS t WHERE t.id = ?2",
    )
    .bind(i64::try_from(count).unwrap())
    .bind(created.id.as_str())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO arrangement_numbers (number, arrangement_id) \
         WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?1) \
         SELECT printf('+4474%08d', n), printf('arr_%026d', n) FROM seq",
    )
    .bind(i64::try_from(count).unwrap())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    pool.close().await;
    eprintln!(
        "built {count} arrangements in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Arc::new(SqliteStore::open_path(path).await.unwrap())
}

fn bench(c: &mut Criterion) {
    let count: u64 = std::env::var("FAIRLINE_BENCH_ARRANGEMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(build_store(&dir.path().join("bench.db"), count));
    let cache = ArrangementCache::new(
        store.clone(),
        &CacheConfig {
            ttl: Duration::from_secs(3600),
            max_entries: 1_000_000,
        },
        Duration::from_millis(250),
    );

    // Sanity: the generated rows decode and are found.
    rt.block_on(async {
        match cache.lookup(&number(count - 1)).await {
            Lookup::Found { arrangements, .. } => assert_eq!(arrangements.len(), 1),
            Lookup::Failed => panic!("lookup failed"),
        }
    });

    // Resident memory of 100,000 entries of each kind.
    let fill = 100_000u64.min(count);
    // The same store reads once without caching first, so that the SQLite page cache and the
    // allocator's per-thread arenas have grown already: the difference below is then what the
    // cache keeps, not the cost of reading.
    let cold = vm_rss_kib();
    rt.block_on(async {
        for i in 0..fill {
            let n = number(i * (count / fill));
            assert_eq!(store.arrangements_for_number(&n).await.unwrap().len(), 1);
            assert!(store
                .arrangements_for_number(&free_number(i))
                .await
                .unwrap()
                .is_empty());
        }
    });
    let before = vm_rss_kib();
    eprintln!(
        "VmRSS: {cold} KiB after building; {before} KiB after {fill} uncached store reads of each kind"
    );
    rt.block_on(async {
        for i in 0..fill {
            let n = number(i * (count / fill));
            match cache.lookup(&n).await {
                Lookup::Found { arrangements, .. } => assert_eq!(arrangements.len(), 1),
                Lookup::Failed => panic!("lookup failed"),
            }
        }
    });
    let after_hits = vm_rss_kib();
    rt.block_on(async {
        for i in 0..fill {
            match cache.lookup(&free_number(i)).await {
                Lookup::Found { arrangements, .. } => assert!(arrangements.is_empty()),
                Lookup::Failed => panic!("lookup failed"),
            }
        }
    });
    let after_negative = vm_rss_kib();
    eprintln!(
        "VmRSS: {before} KiB before; +{} KiB for {fill} cached arrangements ({} B each); \
         +{} KiB for {fill} negative entries ({} B each)",
        after_hits.saturating_sub(before),
        after_hits.saturating_sub(before) * 1024 / fill,
        after_negative.saturating_sub(after_hits),
        after_negative.saturating_sub(after_hits) * 1024 / fill,
    );

    let hits: Vec<PhoneNumber> = (0..fill).map(|i| number(i * (count / fill))).collect();
    let negatives: Vec<PhoneNumber> = (0..fill).map(free_number).collect();
    let mut group = c.benchmark_group("arrangement_cache");
    group.throughput(Throughput::Elements(1));

    let mut i = 0usize;
    group.bench_function("hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % hits.len();
            let n = &hits[i];
            let cache = &cache;
            async move {
                match cache.lookup(n).await {
                    Lookup::Found { arrangements, .. } => arrangements.len(),
                    Lookup::Failed => 0,
                }
            }
        })
    });
    let mut i = 0usize;
    group.bench_function("negative_hit", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 1) % negatives.len();
            let n = &negatives[i];
            let cache = &cache;
            async move {
                match cache.lookup(n).await {
                    Lookup::Found { arrangements, .. } => arrangements.len(),
                    Lookup::Failed => 0,
                }
            }
        })
    });
    // What a miss costs: the indexed store read (no cache).
    let mut i = 0u64;
    group.bench_function("store_read", |b| {
        b.to_async(&rt).iter(|| {
            i = (i + 7919) % count;
            let n = number(i);
            let store = &store;
            async move { store.arrangements_for_number(&n).await.map(|v| v.len()) }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
