//! The OpenAPI document of `/api/v1` (SPEC §10, issue 14) and the error answers that axum's
//! extractors, routing and layers give (every one RFC 9457 problem+json).
//!
//! The served document is compared with `tests/snapshots/openapi.json`; after an intended
//! change, rewrite the snapshot with `UPDATE_SNAPSHOTS=1 cargo test --test it openapi`.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::app::TestApp;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");
const PROBLEM_JSON: &str = "application/problem+json";

async fn served_document(app: &TestApp) -> Value {
    // No token needed to read the document.
    let resp = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    resp.json().await.unwrap()
}

/// JSON pointers at which two documents differ (at most `max`).
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>, max: usize) {
    if out.len() >= max {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => differences(&p, u, v, out, max),
                    (Some(_), None) => out.push(format!("{p}: only in the served document")),
                    (None, Some(_)) => out.push(format!("{p}: only in the snapshot")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}/{i}"), u, v, out, max);
            }
        }
        _ if a != b => out.push(format!("{path}: served {a} but the snapshot has {b}")),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_matches_the_snapshot() {
    let app = TestApp::spawn("").await;
    let served = served_document(&app).await;
    app.stop().await;
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&served).unwrap();
        std::fs::write(SNAPSHOT, text + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(SNAPSHOT).unwrap_or_else(|e| {
        panic!("{SNAPSHOT}: {e}; create it with UPDATE_SNAPSHOTS=1 cargo test --test it openapi")
    });
    let snapshot: Value = serde_json::from_str(&text).unwrap();
    let mut diff = Vec::new();
    differences("", &served, &snapshot, &mut diff, 40);
    assert!(
        diff.is_empty(),
        "the served OpenAPI document differs from {SNAPSHOT} (if intended: \
         UPDATE_SNAPSHOTS=1 cargo test --test it openapi):\n{}",
        diff.join("\n")
    );
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                ops.push((method.clone(), path.clone(), op));
            }
        }
    }
    ops
}

#[tokio::test]
async fn openapi_every_operation_is_named_tagged_typed_and_documents_its_problems() {
    let app = TestApp::spawn("").await;
    let doc = served_document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let ops = operations(&doc);
    let ids: Vec<&str> = ops
        .iter()
        .map(|(m, p, op)| {
            op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{m} {p}: no operationId"))
        })
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operationIds repeat: {ids:?}");
    for id in [
        "evaluateCall",
        "createArrangement",
        "listArrangements",
        "getArrangement",
        "updateArrangement",
        "revokeArrangement",
        "getArrangementHistory",
        "listDecisions",
        "terminateCall",
        "listTerminations",
        "getTermination",
        "reviewTermination",
        "getOpenApiDocument",
    ] {
        assert!(unique.contains(id), "{id} missing from {ids:?}");
    }

    for (method, path, op) in &ops {
        let name = format!("{method} {path}");
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{name}: no tag"
        );
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            let code: u16 = status.parse().unwrap();
            let content = response["content"].as_object();
            if code >= 400
                && !(code == 502 && *path == "/api/v1/calls/{provider}/{call_id}/terminate")
            {
                let content = content.unwrap_or_else(|| panic!("{name} {status}: no content"));
                assert!(
                    content.contains_key(PROBLEM_JSON) && content.len() == 1,
                    "{name} {status}: not problem+json: {content:?}"
                );
            }
        }
        if op.get("security").is_some() {
            for status in ["400", "401", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{name}: {status} undocumented"
                );
            }
        }
        if let Some(body) = op.get("requestBody") {
            for status in ["413", "415", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{name}: {status} undocumented"
                );
            }
            let schema = &body["content"]["application/json"]["schema"];
            let name_of = schema["$ref"].as_str().unwrap_or_else(|| {
                panic!("{name}: the request body is not a named schema: {schema}")
            });
            let component = name_of.rsplit('/').next().unwrap();
            let component = &doc["components"]["schemas"][component];
            assert_eq!(
                component["additionalProperties"],
                Value::Bool(false),
                "{name}: extra fields are rejected but the schema allows them"
            );
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["name"] == "limit" {
                assert_eq!(param["schema"]["minimum"], 1, "{name}: limit minimum");
                assert_eq!(param["schema"]["maximum"], 1000, "{name}: limit maximum");
            }
        }
    }

    // Closed sets are enums; instants and dates have formats.
    let schemas = &doc["components"]["schemas"];
    let input = &schemas["ArrangementInput"];
    assert_eq!(input["properties"]["ends_at"]["format"], "date-time");
    assert_eq!(input["properties"]["review_due"]["format"], "date");
    let day_enum = &schemas["DayName"]["enum"];
    assert_eq!(day_enum.as_array().unwrap().len(), 7);
    assert!(schemas["WindowSchema"]["additionalProperties"] == Value::Bool(false));
    assert_eq!(
        schemas["ArrangementStatusName"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let list = &doc["paths"]["/api/v1/arrangements"]["get"]["parameters"];
    let review_due_before = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "review_due_before")
        .unwrap();
    assert!(review_due_before["schema"]
        .to_string()
        .contains("\"format\":\"date\""));

    // Every documented operation is routed: it answers something other than the fallback's 404.
    for (method, path, _) in &ops {
        let concrete = path
            .replace("{id}", "arr_01JF0000000000000000000000")
            .replace("{provider}", "twilio")
            .replace("{call_id}", "CA0123456789abcdef0123456789abcdef");
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = app.manager(m, &concrete).send().await.unwrap();
        if resp.status() == StatusCode::NOT_FOUND {
            let p: Value = resp.json().await.unwrap();
            assert_ne!(
                p["detail"], "no such endpoint",
                "{method} {path} is not routed"
            );
        }
    }
    app.stop().await;
}

/// The served document validates against the OpenAPI 3.1 specification, by
/// `openapi-spec-validator` (PyPI; `.ci/run` installs it). Outside CI, a machine without it
/// is told so; in CI (`CI=true`) its absence fails.
#[tokio::test]
async fn openapi_document_validates() {
    let app = TestApp::spawn("").await;
    let doc = served_document(&app).await;
    app.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let validator = std::env::var("FAIRLINE_OPENAPI_VALIDATOR")
        .unwrap_or_else(|_| "openapi-spec-validator".to_string());
    match std::process::Command::new(&validator).arg(&file).output() {
        Ok(out) => assert!(
            out.status.success(),
            "the OpenAPI document is invalid:\n{:.3000}{:.3000}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{validator} cannot run in CI ({e}): pip install openapi-spec-validator")
        }
        Err(e) => eprintln!("openapi_document_validates: {validator} not run ({e})"),
    }
}

/// Send raw bytes and read the whole answer (the connection is closed by the request).
async fn raw_request(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, PROBLEM_JSON, "status {status}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(body["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:fairline:problem:"));
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

#[tokio::test]
async fn api_errors_from_extractors_and_layers_are_problem_json() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("f.db").display());
    let mut config = crate::app::test_config(&url, "");
    config.server.max_body_bytes = 2048;
    let state = fairline::AppState::build(config, fairline::Overrides::default())
        .await
        .unwrap();
    let app = TestApp::start(state, Some(dir)).await;

    // Query strings that cannot be read.
    for query in ["limit=-1", "limit=abc", "limit=99999999999"] {
        let resp = app
            .manager(Method::GET, &format!("/api/v1/decisions?{query}"))
            .send()
            .await
            .unwrap();
        let body = assert_problem(resp, 400).await;
        assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
    }
    let resp = app
        .manager(Method::GET, "/api/v1/terminations?limit=x")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    // In range but not allowed: a 422 naming the field.
    let resp = app
        .manager(Method::GET, "/api/v1/arrangements?limit=0")
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 422).await;
    assert_eq!(body["errors"][0]["field"], "limit");

    // A path segment that is not UTF-8.
    let resp = app
        .manager(Method::GET, "/api/v1/arrangements/%FF%FE")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;

    // A method the path does not have: 405 with Allow.
    let resp = app
        .manager(Method::DELETE, "/api/v1/arrangements")
        .send()
        .await
        .unwrap();
    let allow = resp.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_problem(resp, 405).await;
    let resp = app
        .manager(Method::PATCH, "/api/v1/terminations/trm_x")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 405).await;

    // A body over server.max_body_bytes, with and without a Content-Length.
    let big = format!("{{\"from\": \"{}\"}}", "1".repeat(4096));
    let resp = app
        .manager(Method::POST, "/api/v1/evaluate")
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413).await;
    // Chunked (no Content-Length): the limit is met while reading.
    let chunked = raw_request(
        &app,
        &format!(
            "POST /api/v1/evaluate HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\n\
             connection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
            crate::app::MANAGER_TOKEN,
            big.len()
        ),
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    assert!(
        chunked
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{chunked}"
    );

    // Another content type; JSON that is not JSON.
    let resp = app
        .manager(Method::POST, "/api/v1/evaluate")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415).await;
    let resp = app
        .manager(Method::POST, "/api/v1/evaluate")
        .header("content-type", "application/json")
        .body("{\"from\": ")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;

    // A malformed If-Match; an unknown path.
    let resp = app
        .manager(
            Method::PUT,
            "/api/v1/arrangements/arr_01JF0000000000000000000000",
        )
        .header("if-match", "three")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!([400, 404].contains(&resp.status().as_u16()));
    assert_eq!(resp.headers()["content-type"], PROBLEM_JSON);
    let resp = app
        .manager(Method::GET, "/api/v1/nothing-here")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404).await;

    // Outside /api the answers are untouched.
    let resp = app
        .client
        .delete(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_ne!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(PROBLEM_JSON.as_bytes())
    );
    app.stop().await;
}

/// The property names of an operation's JSON request body, through its component schema.
fn request_properties(doc: &Value, operation_id: &str) -> BTreeSet<String> {
    let op = operations(doc)
        .into_iter()
        .find(|(_, _, op)| op["operationId"] == operation_id)
        .unwrap_or_else(|| panic!("no operation {operation_id}"))
        .2;
    let reference = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{operation_id}: the body is not a named schema"));
    let name = reference.rsplit('/').next().unwrap();
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{operation_id}: {name} has no properties"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn openapi_each_review_body_keeps_its_own_schema() {
    // utoipa keeps one component per name: two request types of one name (the review of an
    // ended call, the review of an arrangement) once shared a schema, and the document then
    // described the wrong body for one of them. Each must document what its handler reads.
    let app = TestApp::spawn("").await;
    let doc = served_document(&app).await;
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        request_properties(&doc, "reviewTermination"),
        set(&["outcome", "notes"])
    );
    assert_eq!(
        request_properties(&doc, "createReview"),
        set(&["outcome", "notes", "next_review_due"])
    );
    assert_eq!(
        request_properties(&doc, "decideAppeal"),
        set(&["outcome", "decided_by", "notes"])
    );
    // And the server agrees: the arrangement review's field is refused on an ended call's.
    let resp = app
        .manager(
            Method::POST,
            "/api/v1/terminations/trm_01JF0000000000000000000000/review",
        )
        .json(&serde_json::json!({"outcome": "no_action", "next_review_due": "2030-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
