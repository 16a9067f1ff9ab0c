//! The one integration-test binary: real servers on port 0, real databases, fake platforms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod app;
mod scale;
mod storage;
mod support;
