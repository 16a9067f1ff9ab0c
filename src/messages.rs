//! The spoken explanations of a refusal, in English and Welsh, with configurable overrides.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{Allowance, Language, LanguageSetting, Window};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKey {
    OutsideWindow,
    AllowanceUsed,
    Blocked,
    StaffUnavailable,
}

/// One text to be spoken, in one language.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpokenMessage {
    pub language: Language,
    pub text: String,
}

/// What a message may mention.
#[derive(Clone, Debug)]
pub struct MessageContext<'a> {
    pub organisation: &'a str,
    pub tz: Tz,
    pub windows: &'a [Window],
    pub allowance: Option<Allowance>,
    pub next_permitted_at: Option<DateTime<Utc>>,
}
