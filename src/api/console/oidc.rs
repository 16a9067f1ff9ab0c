//! Sign-in with the organisation's identity provider (SPEC §12): OpenID Connect, authorization
//! code flow with PKCE (S256), a random `state` and `nonce`, the `openidconnect` crate.
//!
//! The provider's discovery document and keys are read at each step (sign-ins are rare, and
//! a key rotation is then never missed). The `state` is bound to the browser by a short-lived
//! cookie (SameSite=Lax: the provider's redirect back is a cross-site navigation) and to the
//! store by its hash, with the nonce and the PKCE verifier, taken once. The person's name (the
//! ID token's `name`, else `preferred_username`, `email`, `sub`) is what records say; the role
//! comes from `role_claim` and `agent_roles` / `manager_roles`.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use serde_json::Value;

use super::session;
use crate::config::Role;
use crate::console::config::OidcConfig;
use crate::state::AppState;
use crate::store::PendingLogin;

pub const OIDC_COOKIE: &str = "fairline_console_oidc";
/// How long a sign-in at the identity provider may take.
const LOGIN_TTL_SECONDS: i64 = 600;

#[derive(Debug, thiserror::Error)]
enum OidcError {
    #[error("the identity provider could not be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("the ID token was not accepted: {0}")]
    Token(String),
}

fn http_client() -> Result<openidconnect::reqwest::Client, OidcError> {
    openidconnect::reqwest::Client::builder()
        // Following redirects would open the client to SSRF.
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| OidcError::Provider(e.to_string()))
}

fn redirect_url(state: &AppState) -> String {
    format!(
        "{}/console/sign-in/oidc/callback",
        state.config.server.public_url
    )
}

async fn metadata(
    cfg: &OidcConfig,
    http: &openidconnect::reqwest::Client,
) -> Result<CoreProviderMetadata, OidcError> {
    let issuer =
        IssuerUrl::new(cfg.issuer.clone()).map_err(|e| OidcError::Provider(e.to_string()))?;
    CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| OidcError::Provider(e.to_string()))
}

/// `GET /console/sign-in/oidc`: off to the identity provider.
pub async fn start(State(state): State<AppState>) -> Response {
    let Some(cfg) = state.config.console.oidc.clone() else {
        return super::pages::fallback().await;
    };
    match start_inner(&state, &cfg).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in could not start");
            provider_down()
        }
    }
}

async fn start_inner(state: &AppState, cfg: &OidcConfig) -> Result<Response, OidcError> {
    let http = http_client()?;
    let meta = metadata(cfg, &http).await?;
    let redirect =
        RedirectUrl::new(redirect_url(state)).map_err(|e| OidcError::Provider(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(cfg.client_id.clone()),
        Some(ClientSecret::new(cfg.client_secret.expose().to_owned())),
    )
    .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let login = PendingLogin {
        state_hash: session::hash_id(csrf.secret()),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        created_at: state.clock.now(),
    };
    state
        .store
        .create_login(&login)
        .await
        .map_err(|e| OidcError::Provider(format!("could not remember the sign-in: {e}")))?;
    let mut res = Redirect::to(url.as_str()).into_response();
    let mut cookie = format!(
        "{OIDC_COOKIE}={}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={LOGIN_TTL_SECONDS}",
        csrf.secret()
    );
    if state.config.server.public_url.starts_with("https://") {
        cookie.push_str("; Secure");
    }
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The session started: its cookies on a page that goes on to the console (see below), and
/// the sign-in cookie cleared.
fn signed_in(mut res: Response) -> Response {
    if res.status() == StatusCode::SEE_OTHER {
        // This request came from the identity provider's site, and browsers do not send a
        // SameSite=Strict cookie along a redirect chain that started on another site: answer
        // with a page that goes on to the console itself (a same-site navigation).
        let cookies: Vec<_> = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        res = super::html(crate::console::views::continue_page());
        for c in cookies {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "{OIDC_COOKIE}=; Path=/console; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `GET /console/sign-in/oidc/callback`: back from the identity provider.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(cfg) = state.config.console.oidc.clone() else {
        return super::pages::fallback().await;
    };
    let given = q.state.as_deref().unwrap_or("");
    let cookie = session::cookie_value(&headers, OIDC_COOKIE).unwrap_or("");
    if given.is_empty() || cookie.is_empty() || !session::same_token(given, cookie) {
        // Not the sign-in this browser started (login CSRF) or no sign-in at all.
        return session::csrf_refused();
    }
    let Some(login) = state
        .store
        .take_login(&session::hash_id(given))
        .await
        .ok()
        .flatten()
    else {
        return again(&state, "Your sign-in could not be finished. Try again.");
    };
    let now = state.clock.now();
    if (now - login.created_at).num_seconds() > LOGIN_TTL_SECONDS {
        return again(&state, "Your sign-in took too long. Try again.");
    }
    if let Some(err) = q.error {
        tracing::info!(error = %err, "the identity provider refused the sign-in");
        return again(
            &state,
            "Your organisation's sign-in did not succeed. Try again.",
        );
    }
    let Some(code) = q.code else {
        return again(&state, "Your sign-in could not be finished. Try again.");
    };
    let person = match finish(&state, &cfg, code, login).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect sign-in failed");
            return match e {
                OidcError::Provider(_) => provider_down(),
                OidcError::Token(_) => {
                    again(&state, "Your sign-in could not be checked. Try again.")
                }
            };
        }
    };
    let Some(role) = role_for(&cfg, &person.roles) else {
        tracing::info!(name = %person.name, "OpenID Connect sign-in refused: no console role");
        return (
            StatusCode::FORBIDDEN,
            super::html(crate::console::views::message_page(
                "You cannot use the staff console",
                "Your account does not have a role that may use this console. Ask your manager \
                 to give you access.",
            )),
        )
            .into_response();
    };
    signed_in(super::pages::start_session(&state, &person.name, role).await)
}

struct Person {
    name: String,
    roles: Vec<String>,
}

async fn finish(
    state: &AppState,
    cfg: &OidcConfig,
    code: String,
    login: PendingLogin,
) -> Result<Person, OidcError> {
    let http = http_client()?;
    let meta = metadata(cfg, &http).await?;
    let redirect =
        RedirectUrl::new(redirect_url(state)).map_err(|e| OidcError::Provider(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(cfg.client_id.clone()),
        Some(ClientSecret::new(cfg.client_secret.expose().to_owned())),
    )
    .set_redirect_uri(redirect);
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| OidcError::Provider(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier))
        .request_async(&http)
        .await
        .map_err(|e| OidcError::Provider(format!("token request: {e}")))?;
    let id_token = response
        .id_token()
        .ok_or_else(|| OidcError::Token("no ID token in the answer".into()))?;
    // Signature (against the provider's keys), issuer, audience, expiry and nonce.
    let verifier = client.id_token_verifier();
    id_token
        .claims(&verifier, &Nonce::new(login.nonce))
        .map_err(|e| OidcError::Token(e.to_string()))?;
    // The token is verified: read the claims the typed interface does not carry.
    let claims = payload(&id_token.to_string())?;
    Ok(Person {
        name: name_of(&claims),
        roles: roles_of(&claims, &cfg.role_claim),
    })
}

/// The JSON payload of a compact JWT (already verified by the caller).
fn payload(jwt: &str) -> Result<Value, OidcError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Token("not a compact JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| OidcError::Token("the payload is not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| OidcError::Token("the payload is not JSON".into()))
}

fn name_of(claims: &Value) -> String {
    ["name", "preferred_username", "email", "sub"]
        .iter()
        .filter_map(|k| claims.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

/// The role claim as a list: an array of strings, or one string (space-separated).
fn roles_of(claims: &Value, claim: &str) -> Vec<String> {
    match claims.get(claim) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn role_for(cfg: &OidcConfig, roles: &[String]) -> Option<Role> {
    let has = |wanted: &[String]| roles.iter().any(|r| wanted.contains(r));
    if has(&cfg.manager_roles) {
        Some(Role::Manager)
    } else if has(&cfg.agent_roles) {
        Some(Role::Agent)
    } else {
        None
    }
}

fn again(state: &AppState, message: &str) -> Response {
    super::pages::sign_in_page(state, Some(message), &[], StatusCode::BAD_REQUEST)
}

fn provider_down() -> Response {
    (
        StatusCode::BAD_GATEWAY,
        super::html(crate::console::views::message_page(
            "Sign-in is not working just now",
            "Your organisation's sign-in service could not be reached. Try again in a few \
             minutes, or sign in with an access token.",
        )),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example.org".into(),
            client_id: "fairline".into(),
            client_secret: crate::config::Secret::new("s"),
            role_claim: "roles".into(),
            agent_roles: vec!["contact-centre".into()],
            manager_roles: vec!["casework-managers".into()],
        }
    }

    #[test]
    fn roles_map_to_console_roles_and_manager_wins() {
        let c = cfg();
        let r = |v: Value| role_for(&c, &roles_of(&json!({ "roles": v }), "roles"));
        assert_eq!(r(json!(["contact-centre"])), Some(Role::Agent));
        assert_eq!(
            r(json!(["contact-centre", "casework-managers"])),
            Some(Role::Manager)
        );
        assert_eq!(r(json!("other casework-managers")), Some(Role::Manager));
        assert_eq!(r(json!(["finance"])), None);
        assert_eq!(r(json!(null)), None);
    }

    #[test]
    fn the_name_is_the_first_claim_present() {
        assert_eq!(
            name_of(&json!({"name": "Dana Scully", "sub": "x"})),
            "Dana Scully"
        );
        assert_eq!(
            name_of(&json!({"name": " ", "email": "d@example.org"})),
            "d@example.org"
        );
        assert_eq!(name_of(&json!({"sub": "abc"})), "abc");
    }
}
