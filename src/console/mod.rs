//! The staff console (SPEC §12): server-rendered pages under `/console/` for agents (Live
//! calls, End call) and managers (Ended calls and their review, arrangements, reviews, appeals
//! and letters). Works without JavaScript; the one small script (the Live calls refresh) and
//! all CSS are served from the binary.
//!
//! This module holds what has no HTTP in it (issue 11: the web framework stays in `src/api/`):
//!
//! * [`session`]: session rules (tokens, hashes, timeouts);
//! * [`live`]: live-call rows, written off the webhook path by a background writer;
//! * [`views`]: the page frame and the GOV.UK Design System patterns, as markup;
//! * [`words`]: the records in plain words;
//! * [`endcall`]: the console's way into the §9 end-call and review services.
//!
//! The router, handlers, session extractor, CSRF and headers are in `crate::api::console`.

pub mod arrangements;
pub mod config;
pub mod endcall;
pub mod live;
pub mod session;
pub mod views;
pub mod words;
