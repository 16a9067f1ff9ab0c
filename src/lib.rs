//! Fairline: enforces contact arrangements on a public body's phone line.
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod domain;
pub mod engine;
pub mod messages;
pub mod providers;
pub mod store;
