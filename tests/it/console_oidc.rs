//! OpenID Connect sign-in to the console against a fake identity provider in this test binary:
//! discovery, JWKS, authorize and token endpoints, RS256 ID tokens signed with the test key in
//! `fixtures/oidc/test-key.pem`. PKCE is checked by the fake provider as a real one does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use fairline::state::{AppState, Overrides};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::console::{
    console_config, fake_twilio, hangups, incoming_call_to, sid, Visitor, CALLER,
};

const TEST_KEY: &str = include_str!("../../fixtures/oidc/test-key.pem");
pub const CLIENT_ID: &str = "fairline-console";
pub const CLIENT_SECRET: &str = "test-oidc-client-secret";

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

/// The fake identity provider.
pub struct Idp {
    pub issuer: String,
    key: rsa::RsaPrivateKey,
    grants: Mutex<HashMap<String, Grant>>,
    /// Who is signed in at the provider: name and roles.
    pub user: Mutex<(String, Vec<String>)>,
    /// Token requests refused because the PKCE verifier did not match.
    pub pkce_failures: Mutex<u32>,
}

type Shared = Arc<Idp>;

async fn discovery(State(idp): State<Shared>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"]
    }))
}

async fn jwks(State(idp): State<Shared>) -> Json<Value> {
    let public = idp.key.to_public_key();
    Json(json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "test-key",
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    }]}))
}

/// Signs the user straight in (no login form) and sends the browser back with a code.
async fn authorize(
    State(idp): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.contains_key("code_challenge")
        && q.contains_key("nonce")
        && q.get("scope")
            .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = format!("code-{}", uuid::Uuid::new_v4().simple());
    let redirect_uri = q["redirect_uri"].clone();
    idp.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            nonce: q["nonce"].clone(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let state = q.get("state").cloned().unwrap_or_default();
    let back = format!(
        "{redirect_uri}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &state)
            .finish()
    );
    Redirect::to(&back).into_response()
}

fn sign(idp: &Idp, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "RS256", "typ": "JWT", "kid": "test-key"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{body}");
    let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(idp.key.clone());
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

async fn token(State(idp): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let refuse = || {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse();
    }
    let Some(grant) = form
        .get("code")
        .and_then(|c| idp.grants.lock().unwrap().remove(c))
    else {
        return refuse();
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse();
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        *idp.pkce_failures.lock().unwrap() += 1;
        return refuse();
    }
    let (name, roles) = idp.user.lock().unwrap().clone();
    let now = chrono::Utc::now().timestamp();
    let id_token = sign(
        &idp,
        &json!({
            "iss": idp.issuer, "sub": format!("user-{}", name.len()), "aud": CLIENT_ID,
            "iat": now, "exp": now + 300, "nonce": grant.nonce,
            "name": name, "roles": roles
        }),
    );
    Json(json!({
        "access_token": "access-token", "token_type": "Bearer", "expires_in": 300,
        "id_token": id_token
    }))
    .into_response()
}

/// Start the fake provider; the signed-in user is `name` with `roles`.
pub async fn start_idp(name: &str, roles: &[&str]) -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let idp = Arc::new(Idp {
        issuer,
        key: rsa::RsaPrivateKey::from_pkcs8_pem(TEST_KEY).unwrap(),
        grants: Mutex::new(HashMap::new()),
        user: Mutex::new((
            name.to_owned(),
            roles.iter().map(|r| (*r).to_owned()).collect(),
        )),
        pkce_failures: Mutex::new(0),
    });
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    idp
}

/// The console with `[console.oidc]` pointed at `idp`, served at `http://{host}:{port}` (which
/// is also its `public_url`, so the redirect back comes here).
pub struct OidcApp {
    pub url: String,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

pub async fn spawn_oidc_app(idp: &Idp, host: &str, twilio_base: &str) -> OidcApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{host}:{}", listener.local_addr().unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fairline.db").display());
    let public = url.clone();
    let issuer = idp.issuer.clone();
    // Through the real configuration reader, to check [console.oidc] is read.
    let base = console_config(&db, twilio_base, |_| {});
    let extra = format!(
        "[console.oidc]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{CLIENT_SECRET}\"\nrole_claim = \"roles\"\n\
         agent_roles = [\"contact-centre\"]\nmanager_roles = [\"casework-managers\"]\n"
    );
    let mut cfg = fairline::config::from_sources(
        &crate::app::test_toml(&db, &extra),
        &[(
            "FAIRLINE_TWILIO__API_BASE_URL".to_string(),
            twilio_base.to_string(),
        )],
    )
    .expect("config with [console.oidc]");
    assert_eq!(cfg.twilio.api_base_url, base.twilio.api_base_url);
    cfg.server.public_url = public;
    let state = AppState::build(cfg, Overrides::default()).await.unwrap();
    let s = state.clone();
    tokio::spawn(async move {
        let _ = fairline::serve(s, listener).await;
    });
    OidcApp {
        url,
        state,
        _dir: dir,
    }
}

/// Follow the sign-in through the fake provider with a cookie-keeping HTTP client.
async fn oidc_sign_in(v: &mut Visitor, app: &OidcApp) -> crate::console::Page {
    let start = v.get("/console/sign-in/oidc").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorize = start.location.unwrap();
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    // At the provider (another site): it sends the browser back with a code.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&authorize)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    let path = back
        .strip_prefix(&app.url)
        .expect("back to the console")
        .to_owned();
    v.get(&path).await
}

#[tokio::test]
async fn oidc_sign_in_names_the_person_in_the_records() {
    let call = sid(0x01dc);
    let twilio = fake_twilio(&call, CALLER).await;
    let idp = start_idp("Dana Scully", &["contact-centre"]).await;
    let app = spawn_oidc_app(&idp, "127.0.0.1", &twilio.uri()).await;
    let mut v = Visitor::at(&app.url);

    // The sign-in page offers the organisation's sign-in.
    let page = v.get("/console/sign-in").await;
    assert!(page.body.contains("Sign in with your organisation account"));

    // Back from the provider: signed in as the person the ID token names, as an agent.
    let back = oidc_sign_in(&mut v, &app).await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.contains("url=/console/"));
    let home = v.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Dana Scully"));
    assert!(!home.body.contains("Ended calls"));

    // What the records say is that name.
    incoming_call_at(&app, &call).await;
    let end = format!("/console/calls/twilio/{call}/end");
    let form = v.get(&end).await;
    let p = v
        .post(
            &end,
            &[
                ("csrf_token", &form.csrf()),
                ("reason", "swearing"),
                ("warning_given", "yes"),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(hangups(&twilio).await, 1);
    let t = app
        .state
        .store
        .find_termination(
            fairline::domain::Provider::Twilio,
            &fairline::domain::CallId::parse(&call).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.agent, "Dana Scully");

    // A manager role makes a manager.
    *idp.user.lock().unwrap() = ("Walter Skinner".into(), vec!["casework-managers".into()]);
    let mut m = Visitor::at(&app.url);
    oidc_sign_in(&mut m, &app).await;
    let home = m.get("/console/").await;
    assert!(home.body.contains("Walter Skinner"));
    assert!(home.body.contains("Ended calls"));

    // No console role: refused, no session.
    *idp.user.lock().unwrap() = ("Finance Person".into(), vec!["finance".into()]);
    let mut f = Visitor::at(&app.url);
    let p = oidc_sign_in(&mut f, &app).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!f.cookies.contains_key("fairline_console"));
    assert_eq!(*idp.pkce_failures.lock().unwrap(), 0);
}

/// A redirect back that this browser did not start (login CSRF), or a replayed one: refused.
#[tokio::test]
async fn oidc_callbacks_not_started_by_this_browser_are_refused() {
    let idp = start_idp("Dana Scully", &["contact-centre"]).await;
    let app = spawn_oidc_app(&idp, "127.0.0.1", "http://127.0.0.1:9").await;
    // The attacker starts a sign-in and gets a code for their own account…
    let mut attacker = Visitor::at(&app.url);
    let start = attacker.get("/console/sign-in/oidc").await;
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(start.location.unwrap())
        .send()
        .await
        .unwrap();
    let back = resp.headers()["location"].to_str().unwrap().to_owned();
    let path = back.strip_prefix(&app.url).unwrap().to_owned();
    // …and has the victim's browser (without the attacker's state cookie) follow it.
    let mut victim = Visitor::at(&app.url);
    let p = victim.get(&path).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(!victim.cookies.contains_key("fairline_console"));
    // The attacker's own browser may use it once, and only once.
    assert_eq!(attacker.get(&path).await.status, 200);
    let cookie = attacker.cookies.clone();
    let mut again = Visitor::at(&app.url);
    again.cookies = cookie;
    again.cookies.remove("fairline_console");
    again.cookies.insert(
        "fairline_console_oidc".into(),
        path.split("state=").nth(1).unwrap().to_owned(),
    );
    let p = again.get(&path).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(!again.cookies.contains_key("fairline_console"));
}

async fn incoming_call_at(app: &OidcApp, call: &str) {
    // The app's public_url is its own URL.
    incoming_call_to(&app.url, &app.url, CALLER, call).await;
}
