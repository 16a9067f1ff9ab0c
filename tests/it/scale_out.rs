//! The scale-out proof: two real `fairline` processes sharing one PostgreSQL database.
//! An allowance race across instances, cache invalidation across instances within a second, and
//! one instance killed mid-load while the other keeps answering.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;

use crate::app::{arrangement, test_toml, MANAGER_TOKEN};
use crate::procs::{create_database, drop_database, twilio_call, twiml_verbs, Server};
use crate::support;

/// Signatures off; and a generous lookup timeout, since these tests count calls under an
/// arrangement: a lookup that times out on a loaded machine would be decided by the failure
/// policy instead (that path has its own tests in scale.rs).
const UNSIGNED: [(&str, &str); 2] = [
    ("FAIRLINE_TWILIO__VERIFY_SIGNATURES", "false"),
    ("FAIRLINE_DECISION__LOOKUP_TIMEOUT_MS", "30000"),
];

async fn create(
    client: &reqwest::Client,
    base: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = client
        .post(format!("{base}/api/v1/arrangements"))
        .bearer_auth(MANAGER_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Poll `base` with calls from `from` until the TwiML's first verb is `verb`; the time it took.
async fn until_verb(
    client: &reqwest::Client,
    base: &str,
    from: &str,
    verb: &str,
    tag: &str,
) -> Duration {
    let start = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let (status, xml) = twilio_call(client, base, &format!("CA{tag}{n:028}"), from)
            .await
            .unwrap();
        assert_eq!(status, 200);
        if twiml_verbs(&xml).first().map(String::as_str) == Some(verb) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never saw {verb}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_postgres_and_survive_one_being_killed() {
    let Some((base_url, _)) = support::pg_schema("scale_out::two_instances") else {
        return;
    };
    let (db_url, db_name) = create_database(&base_url).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = test_toml(&db_url, "");
    let mut a = Server::start(dir.path(), "a", &toml, &UNSIGNED, None).await;
    let b = Server::start(dir.path(), "b", &toml, &UNSIGNED, None).await;
    let client = reqwest::Client::new();

    // 1. An allowance of one call a day, raced from both instances: exactly one is counted.
    create(
        &client,
        &a.url,
        arrangement(
            "+442920123456",
            json!({"allowance": {"count": 1, "per": "day"}}),
        ),
    )
    .await;
    let calls = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let client = client.clone();
        async move {
            twilio_call(&client, &base, &format!("CArace{i:030}"), "+442920123456")
                .await
                .unwrap()
        }
    });
    let answers = join_all(calls).await;
    let mut allowed = 0;
    let mut refused = 0;
    for (status, xml) in &answers {
        assert_eq!(*status, 200);
        match twiml_verbs(xml).first().map(String::as_str) {
            Some("Redirect") => allowed += 1,
            Some("Say") => refused += 1,
            other => panic!("unexpected TwiML {other:?}: {xml}"),
        }
    }
    assert_eq!(
        (allowed, refused),
        (1, 19),
        "exactly one call may be counted"
    );

    // 2. A change through A reaches B's decisions within a second, both ways.
    let (_, xml) = twilio_call(
        &client,
        &b.url,
        "CAwarm0000000000000000000000000000",
        "+447700900123",
    )
    .await
    .unwrap();
    assert_eq!(
        twiml_verbs(&xml),
        vec!["Redirect"],
        "B caches 'no arrangement'"
    );
    let created = create(
        &client,
        &a.url,
        arrangement("+447700900123", json!({"kind": "blocked"})),
    )
    .await;
    let took = until_verb(&client, &b.url, "+447700900123", "Reject", "blk").await;
    assert!(
        took < Duration::from_secs(1),
        "block reached B after {took:?}"
    );
    let id = created["id"].as_str().unwrap();
    let r = client
        .post(format!("{}/api/v1/arrangements/{id}/revoke", a.url))
        .bearer_auth(MANAGER_TOKEN)
        .json(&json!({"reason": "appeal upheld"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = until_verb(&client, &b.url, "+447700900123", "Redirect", "rev").await;
    assert!(
        took < Duration::from_secs(1),
        "revocation reached B after {took:?}"
    );

    // 3. A is killed mid-load; B keeps answering every call with valid TwiML.
    let load = {
        let client = client.clone();
        let b_url = b.url.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            for i in 0..300 {
                let (status, xml) =
                    twilio_call(&client, &b_url, &format!("CAload{i:030}"), "+447700900999")
                        .await
                        .unwrap();
                assert_eq!(status, 200);
                assert!(!twiml_verbs(&xml).is_empty());
                answered += 1;
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.kill();
    assert_eq!(load.await.unwrap(), 300);
    assert!(
        twilio_call(
            &client,
            &a.url,
            "CAdead000000000000000000000000000",
            "+447700900999"
        )
        .await
        .is_err(),
        "A is gone"
    );

    drop(b);
    drop(a);
    drop_database(&base_url, &db_name).await;
}
