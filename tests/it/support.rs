//! Shared helpers for the integration tests.
#![allow(dead_code)]

/// The PostgreSQL server for tests, when `FAIRLINE_TEST_POSTGRES_URL` is set.
pub fn postgres_url() -> Option<String> {
    std::env::var("FAIRLINE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}
