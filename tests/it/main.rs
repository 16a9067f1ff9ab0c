//! The one integration-test binary: real servers on port 0, real databases, fake platforms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod app;
mod console;
mod console_browser;
mod console_oidc;
mod durable;
mod letters;
mod lifecycle;
mod logs;
mod notices;
mod openapi;
mod ops;
mod outage;
mod procs;
mod robustness;
mod scale;
mod scale_out;
mod signing;
mod storage;
mod support;
mod switches;
mod telnyx;
mod terminations;
mod twilio;
mod urgent;
mod vonage;
