//! A baseline for `bench/run.sh`: an axum server that answers every
//! `POST /webhooks/twilio/voice` with a fixed TwiML document and every
//! `POST /webhooks/vonage/answer` with a fixed NCCO, after reading the body the same way
//! Fairline does. Not part of the production router.
//!
//! `cargo run --release --example static_twiml -- 127.0.0.1:18081`

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

/// The same allocator as the `fairline` binary, so that the comparison is of the work done.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Redirect method="POST">https://example.org/twiml/main-menu</Redirect></Response>"#;

const NCCO: &str = r#"[{"action":"connect","from":"442079460000","endpoint":[{"type":"sip","uri":"sip:main-queue@pbx.example.org"}]}]"#;

async fn answer(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body.len());
    ([(header::CONTENT_TYPE, "application/json")], NCCO)
}

async fn voice(body: Bytes) -> impl IntoResponse {
    // Touch the body so that reading it is part of the work, as in the real handler.
    std::hint::black_box(body.len());
    ([(header::CONTENT_TYPE, "text/xml")], TWIML)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let app = Router::new()
        .route("/webhooks/twilio/voice", post(voice))
        .route("/webhooks/vonage/answer", post(answer));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
