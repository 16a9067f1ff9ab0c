//! Domain types, parsed once at the boundary: phone numbers, identifiers, windows, allowances
//! and arrangements. Everything past the edge of the service works with these, never with raw
//! strings.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

mod termination;
pub use termination::{HangupResult, Review, ReviewOutcome, Termination, TerminationReason};

// ---------------------------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------------------------

/// A caller number in E.164 form (`+442920123456`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PhoneNumberError {
    #[error("a withheld number cannot be used")]
    Withheld,
    #[error("not a phone number")]
    NotANumber,
}

/// Twilio's keypad spellings of withheld caller ids (ANONYMOUS, RESTRICTED, BLOCKED, UNKNOWN,
/// UNAVAILABLE).
const KEYPAD_WITHHELD: [&str; 5] = [
    "+266696687",
    "+7378742833",
    "+2562533",
    "+8656696",
    "+86282452253",
];
const WORD_WITHHELD: [&str; 6] = [
    "anonymous",
    "restricted",
    "unknown",
    "blocked",
    "unavailable",
    "private",
];

impl PhoneNumber {
    /// Normalise a number as a person or a platform wrote it: national GB form
    /// (`02920 123456`), E.164 (`+442920123456`), international without `+` (`442079460123`,
    /// Vonage style) or with `00`.
    pub fn parse(raw: &str) -> Result<Self, PhoneNumberError> {
        match CallerId::classify(raw) {
            CallerId::Number(n) => Ok(n),
            CallerId::Withheld => Err(PhoneNumberError::Withheld),
            CallerId::Unrecognised => Err(PhoneNumberError::NotANumber),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with everything but the country code and the last four digits hidden:
    /// `+44********3456`. Used wherever a number would otherwise reach a log.
    pub fn masked(&self) -> String {
        mask_number(&self.0)
    }

    /// Most callers of a UK public body arrive as `+44` (or, from Vonage, `44`) and a national
    /// significant number.
    /// For those the full parser (about 25 µs) gives the input back unchanged, so it is
    /// skipped: `digits` (after the `+`) must be `44` followed by 7 to 13 digits not starting
    /// with `0` (a trunk `0` after the country code is left to the full parser, which strips it).
    /// `tests::uk_fast_path_agrees_with_the_full_parser` checks the equivalence.
    fn uk_fast_path(digits: &str) -> Option<Self> {
        let nsn = digits.strip_prefix("44")?;
        if !(7..=13).contains(&nsn.len())
            || nsn.starts_with('0')
            || !nsn.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(PhoneNumber(format!("+{digits}")))
    }

    /// International digits (after `+` or `00`, or as Vonage sends them without either).
    fn from_e164_digits(digits: &str) -> Result<Self, PhoneNumberError> {
        match Self::uk_fast_path(digits) {
            Some(n) => Ok(n),
            None => Self::from_e164_digits_in_full(digits),
        }
    }

    /// The full parser's reading of international digits (what the fast path must agree with).
    fn from_e164_digits_in_full(digits: &str) -> Result<Self, PhoneNumberError> {
        let parsed = phonenumber::parse(None, format!("+{digits}"))
            .map_err(|_| PhoneNumberError::NotANumber)?;
        Self::accept(&parsed)
    }

    fn accept(parsed: &phonenumber::PhoneNumber) -> Result<Self, PhoneNumberError> {
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        let digits = e164.trim_start_matches('+');
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneNumberError::NotANumber);
        }
        // The parser has already required a known country code. Full validity against the
        // numbering plan is deliberately not required, so that reserved drama/test ranges
        // (07700 900xxx) and ranges newer than the metadata still match.
        Ok(PhoneNumber(e164))
    }
}

/// Mask any string that may be a phone number: keep a leading `+` and country code (up to two
/// digits), hide the middle, keep the last four characters. Short strings are hidden whole.
pub fn mask_number(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len().max(1));
    }
    let (prefix_len, prefix): (usize, String) = if chars[0] == '+' {
        (3, chars[..3].iter().collect())
    } else {
        (0, String::new())
    };
    let tail: String = chars[chars.len() - 4..].iter().collect();
    let _ = prefix_len;
    format!("{prefix}********{tail}")
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug masks the number so a stray `{:?}` cannot leak it into a log.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        PhoneNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What a platform told us about the caller, classified (SPEC §4 step 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerId {
    Number(PhoneNumber),
    Withheld,
    Unrecognised,
}

impl CallerId {
    pub fn classify(raw: &str) -> CallerId {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return CallerId::Withheld;
        }
        if WORD_WITHHELD
            .iter()
            .any(|w| w.eq_ignore_ascii_case(trimmed))
            || KEYPAD_WITHHELD.contains(&trimmed)
        {
            return CallerId::Withheld;
        }
        // Only digits, spaces, dashes, dots, brackets and one leading '+' may appear. Most
        // numbers arrive without any of the separators: those are used as they are.
        let separator = |c: char| matches!(c, ' ' | '-' | '.' | '(' | ')');
        let compact: std::borrow::Cow<'_, str> = if trimmed.contains(separator) {
            trimmed
                .chars()
                .filter(|c| !separator(*c))
                .collect::<String>()
                .into()
        } else {
            trimmed.into()
        };
        let (plus, body) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, compact.as_ref()),
        };
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return CallerId::Unrecognised;
        }
        if KEYPAD_WITHHELD
            .iter()
            .any(|k| k.strip_prefix('+') == Some(body))
        {
            return CallerId::Withheld;
        }
        let result = if plus {
            PhoneNumber::from_e164_digits(body)
        } else if let Some(intl) = body.strip_prefix("00") {
            PhoneNumber::from_e164_digits(intl)
        } else if body.starts_with('0') {
            phonenumber::parse(Some(phonenumber::country::Id::GB), body)
                .map_err(|_| PhoneNumberError::NotANumber)
                .and_then(|p| PhoneNumber::accept(&p))
        } else {
            // International digits without '+', as Vonage sends them.
            PhoneNumber::from_e164_digits(body)
        };
        match result {
            Ok(n) => CallerId::Number(n),
            Err(_) => CallerId::Unrecognised,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct IdError(pub String);

/// A member of staff from `[[staff]]`: `[a-z0-9_-]+`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StaffId(String);

impl StaffId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() || raw.len() > 64 {
            return Err(IdError("a staff id has 1 to 64 characters".into()));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(IdError("a staff id uses only a-z, 0-9, '_' and '-'".into()));
        }
        Ok(StaffId(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StaffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StaffId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        StaffId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id.
            pub fn generate() -> Self {
                $name(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            pub fn parse(raw: &str) -> Result<Self, IdError> {
                let rest = raw.strip_prefix($prefix).ok_or_else(|| {
                    IdError(format!("an id starting with '{}'", $prefix))
                })?;
                if rest.is_empty()
                    || rest.len() > 64
                    || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(IdError(format!("not a valid '{}' id", $prefix)));
                }
                Ok($name(raw.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An arrangement: `arr_` + ULID.
    ArrangementId,
    "arr_"
);
prefixed_id!(
    /// A termination (an ended call): `trm_` + ULID.
    TerminationId,
    "trm_"
);
prefixed_id!(
    /// A review of an arrangement: `rev_` + ULID.
    ReviewId,
    "rev_"
);
prefixed_id!(
    /// An appeal against an arrangement: `apl_` + ULID.
    AppealId,
    "apl_"
);

/// The phone platforms Fairline speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Twilio,
    Telnyx,
    Vonage,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Telnyx => "telnyx",
            Provider::Vonage => "vonage",
        }
    }
}

impl FromStr for Provider {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "twilio" => Ok(Provider::Twilio),
            "telnyx" => Ok(Provider::Telnyx),
            "vonage" => Ok(Provider::Vonage),
            _ => Err(IdError("provider is 'twilio', 'telnyx' or 'vonage'".into())),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform's id for one call (Twilio `CallSid`, Telnyx `call_control_id`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CallId(String);

impl CallId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if raw.is_empty() || raw.len() > 256 {
            return Err(IdError("a call id has 1 to 256 characters".into()));
        }
        if !raw.chars().all(|c| c.is_ascii_graphic()) {
            return Err(IdError("a call id has only printable ASCII".into()));
        }
        Ok(CallId(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        CallId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Windows, allowances, languages
// ---------------------------------------------------------------------------------------------

/// A local wall-clock time `HH:MM`, from `00:00` to `24:00` inclusive (minutes since midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalTime(u16);

impl LocalTime {
    pub const MIDNIGHT: LocalTime = LocalTime(0);
    pub const END_OF_DAY: LocalTime = LocalTime(24 * 60);

    pub fn from_minutes(m: u16) -> Option<Self> {
        (m <= 24 * 60).then_some(LocalTime(m))
    }
    pub fn hm(h: u16, m: u16) -> Option<Self> {
        if m >= 60 {
            return None;
        }
        Self::from_minutes(h * 60 + m)
    }
    /// Minutes since local midnight (1440 for `24:00`).
    pub fn minutes(self) -> u16 {
        self.0
    }
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let err = || IdError("a time is HH:MM, from 00:00 to 24:00".into());
        let (h, m) = raw.split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u16 = h.parse().map_err(|_| err())?;
        let m: u16 = m.parse().map_err(|_| err())?;
        if h > 24 || (h == 24 && m != 0) {
            return Err(err());
        }
        LocalTime::hm(h, m).ok_or_else(err)
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        LocalTime::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A day of the week as the API writes it: `mon` … `sun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];
    pub fn weekday(self) -> Weekday {
        match self {
            Day::Mon => Weekday::Mon,
            Day::Tue => Weekday::Tue,
            Day::Wed => Weekday::Wed,
            Day::Thu => Weekday::Thu,
            Day::Fri => Weekday::Fri,
            Day::Sat => Weekday::Sat,
            Day::Sun => Weekday::Sun,
        }
    }
    pub fn from_weekday(w: Weekday) -> Day {
        match w {
            Weekday::Mon => Day::Mon,
            Weekday::Tue => Day::Tue,
            Weekday::Wed => Day::Wed,
            Weekday::Thu => Day::Thu,
            Weekday::Fri => Day::Fri,
            Weekday::Sat => Day::Sat,
            Weekday::Sun => Day::Sun,
        }
    }
}

/// A weekly period in which calls are permitted: `start <= local time < end` on the listed days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub days: Vec<Day>,
    pub start: LocalTime,
    pub end: LocalTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowancePeriod {
    /// The local calendar day, 00:00–24:00.
    Day,
    /// The ISO week, from Monday 00:00 local time.
    Week,
}

/// How many calls are permitted per period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub count: u32,
    pub per: AllowancePeriod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrangementKind {
    Restricted,
    Blocked,
}

/// A spoken language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Cy,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Cy => "cy",
        }
    }
}

/// Which languages a refusal is spoken in, in order: `en`, `cy`, `en+cy`, `cy+en`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LanguageSetting {
    En,
    Cy,
    EnCy,
    CyEn,
}

impl LanguageSetting {
    pub fn spoken(self) -> &'static [Language] {
        match self {
            LanguageSetting::En => &[Language::En],
            LanguageSetting::Cy => &[Language::Cy],
            LanguageSetting::EnCy => &[Language::En, Language::Cy],
            LanguageSetting::CyEn => &[Language::Cy, Language::En],
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            LanguageSetting::En => "en",
            LanguageSetting::Cy => "cy",
            LanguageSetting::EnCy => "en+cy",
            LanguageSetting::CyEn => "cy+en",
        }
    }
}

impl FromStr for LanguageSetting {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(LanguageSetting::En),
            "cy" => Ok(LanguageSetting::Cy),
            "en+cy" => Ok(LanguageSetting::EnCy),
            "cy+en" => Ok(LanguageSetting::CyEn),
            _ => Err(IdError("language is one of en, cy, en+cy, cy+en".into())),
        }
    }
}

impl fmt::Display for LanguageSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for LanguageSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LanguageSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Arrangements
// ---------------------------------------------------------------------------------------------

/// One customer's contact arrangement, as stored (SPEC §5). `status` and `review_overdue` are
/// derived, never stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arrangement {
    pub id: ArrangementId,
    pub customer_ref: String,
    pub customer_name: Option<String>,
    pub phone_numbers: Vec<PhoneNumber>,
    pub kind: ArrangementKind,
    pub windows: Vec<Window>,
    pub allowance: Option<Allowance>,
    pub designated_staff: Vec<StaffId>,
    pub max_call_minutes: Option<u32>,
    pub language: LanguageSetting,
    pub reason: String,
    pub decided_by: String,
    pub equality_advice_sought: bool,
    pub advocate: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub review_due: NaiveDate,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Words meant for the customer: why the arrangement was needed (used in letters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_explanation: Option<String>,
    /// Derived when read (never written): how many appeals against it are open.
    #[serde(default)]
    pub open_appeals: u32,
    /// SPEC §14: whether a spoken refusal offers this caller the safeguarding route (when
    /// `[decision.urgent]` is enabled). Versions stored before the field existed read as `true`.
    #[serde(default = "urgent_route_default")]
    pub urgent_route: bool,
}

/// `urgent_route` when not given.
pub fn urgent_route_default() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrangementStatus {
    Scheduled,
    Active,
    Expired,
    Revoked,
}

impl ArrangementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArrangementStatus::Scheduled => "scheduled",
            ArrangementStatus::Active => "active",
            ArrangementStatus::Expired => "expired",
            ArrangementStatus::Revoked => "revoked",
        }
    }
}

impl Arrangement {
    /// In force at `t`: `starts_at <= t < ends_at`, and not revoked by then.
    pub fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        self.starts_at <= t && t < self.ends_at && self.revoked_at.is_none_or(|r| t < r)
    }

    pub fn status_at(&self, t: DateTime<Utc>) -> ArrangementStatus {
        if self.revoked_at.is_some_and(|r| r <= t) {
            ArrangementStatus::Revoked
        } else if t < self.starts_at {
            ArrangementStatus::Scheduled
        } else if t < self.ends_at {
            ArrangementStatus::Active
        } else {
            ArrangementStatus::Expired
        }
    }

    /// `review_due` has passed on an active arrangement (local date given by the caller).
    pub fn review_overdue_at(&self, t: DateTime<Utc>, today_local: NaiveDate) -> bool {
        self.status_at(t) == ArrangementStatus::Active && self.review_due < today_local
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_spec_examples() {
        assert_eq!(
            PhoneNumber::parse("02920 123456").map(|n| n.to_string()),
            Ok("+442920123456".to_string())
        );
        assert_eq!(
            PhoneNumber::parse("442079460123").map(|n| n.to_string()),
            Ok("+442079460123".to_string())
        );
        assert_eq!(
            PhoneNumber::parse("+44 7700 900123").map(|n| n.to_string()),
            Ok("+447700900123".to_string())
        );
        assert_eq!(
            PhoneNumber::parse("0044 29 2012 3456").map(|n| n.to_string()),
            Ok("+442920123456".to_string())
        );
    }

    #[test]
    fn withheld_forms_are_withheld() {
        for raw in [
            "",
            "  ",
            "anonymous",
            "Anonymous",
            "RESTRICTED",
            "unknown",
            "blocked",
            "Unavailable",
            "private",
            "+266696687",
            "+7378742833",
            "+2562533",
            "+8656696",
            "+86282452253",
            // The keypad spellings without the '+' or with separators, and a word padded.
            "266696687",
            "+266 696 687",
            "(737) 874-2833",
            " UNKNOWN ",
        ] {
            assert_eq!(CallerId::classify(raw), CallerId::Withheld, "{raw:?}");
        }
    }

    #[test]
    fn non_numbers_are_unrecognised() {
        for raw in [
            "client:alice",
            "sip:bob@example.org",
            "hello",
            "+",
            "+12",
            "0",
        ] {
            assert_eq!(CallerId::classify(raw), CallerId::Unrecognised, "{raw:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn uk_fast_path_agrees_with_the_full_parser(nsn in "[1-9][0-9]{6,12}") {
            let digits = format!("44{nsn}");
            let fast = PhoneNumber::uk_fast_path(&digits);
            let full = PhoneNumber::from_e164_digits_in_full(&digits).ok();
            proptest::prop_assert!(fast.is_some());
            proptest::prop_assert_eq!(&fast, &full);
            // Every way a platform spells it takes the fast path to the same number: `+44…`
            // (Twilio, Telnyx), `44…` (Vonage), `0044…`.
            let full = full.map(CallerId::Number);
            for spelled in [format!("+{digits}"), digits.clone(), format!("00{digits}")] {
                proptest::prop_assert_eq!(Some(CallerId::classify(&spelled)), full.clone());
            }
        }
    }

    #[test]
    fn masking_keeps_country_code_and_last_four() {
        let n = PhoneNumber::parse("+442920123456").unwrap();
        assert_eq!(n.masked(), "+44********3456");
        assert!(!format!("{n:?}").contains("2920123456"));
    }

    #[test]
    fn ids_parse_with_their_prefix() {
        let id = ArrangementId::generate();
        assert!(id.as_str().starts_with("arr_"));
        assert_eq!(ArrangementId::parse(id.as_str()), Ok(id));
        assert!(ArrangementId::parse("trm_01ABC").is_err());
        assert!(TerminationId::parse("trm_01ABC").is_ok());
        assert!(StaffId::parse("alice_b-2").is_ok());
        assert!(StaffId::parse("Alice").is_err());
        assert!(StaffId::parse("").is_err());
    }

    #[test]
    fn local_times() {
        assert_eq!(LocalTime::parse("24:00").map(|t| t.minutes()), Ok(1440));
        assert_eq!(LocalTime::parse("09:30").map(|t| t.minutes()), Ok(570));
        for bad in ["24:01", "9:30", "10:60", "25:00", "ab:cd", "1000"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(LocalTime::parse("07:05").unwrap().to_string(), "07:05");
    }
}
