//! The one integration-test binary: real servers on port 0, real databases, fake platforms.

mod storage;
mod support;
