//! One reader for every set of named fields Fairline takes from outside: JSON request bodies,
//! query strings and the configuration file with its environment variables.
//!
//! A [`Fields`] reads one object (a JSON body, a query string, a TOML table). Each read takes
//! the field out, so that whatever is left at [`Fields::finish`] is an unknown field. Every
//! problem is collected with the field's full path (`windows[0].start`, `twilio.auth_token`),
//! so that one answer names all of them: the API turns them into the problem document's
//! `errors[]`, `check-config` into its list, the console into messages next to form fields.
//!
//! The readers know nothing of HTTP or of the configuration's shape: they check one value's
//! type and form. The rules that involve several fields stay with their callers.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::domain::{PhoneNumber, PhoneNumberError};

/// One field that is missing or not right, named by its full path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Where the fields come from, which decides how strictly types are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A JSON body: a value has the type its schema gives (a count is a JSON number).
    Json,
    /// A query string: every value is text; fields not read are left alone.
    Query,
    /// The configuration: TOML values, where environment variables may give a number or a
    /// boolean as text.
    Config,
}

/// Whether a field must be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Required,
    Optional,
}
pub use Need::{Optional, Required};

/// The example in instant messages, so that every reader says the same.
pub const INSTANT_MESSAGE: &str = "must be an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z";
pub const DATE_MESSAGE: &str = "must be a date YYYY-MM-DD";

/// The unread fields of one object, and the problems found so far.
#[derive(Debug)]
pub struct Fields<'a> {
    source: Source,
    path: String,
    entries: BTreeMap<String, &'a Value>,
    problems: Vec<FieldProblem>,
}

impl<'a> Fields<'a> {
    /// The object at `path` (empty for a request body); an absent value reads as an empty
    /// object, any other non-object is a problem.
    pub fn new(source: Source, path: &str, value: Option<&'a Value>) -> Self {
        let mut f = Fields {
            source,
            path: path.to_string(),
            entries: BTreeMap::new(),
            problems: Vec::new(),
        };
        match value {
            None => {}
            Some(Value::Object(map)) => {
                f.entries = map.iter().map(|(k, v)| (k.clone(), v)).collect();
            }
            Some(_) => {
                let what = match source {
                    Source::Config => "must be a table",
                    Source::Json | Source::Query => "must be a JSON object",
                };
                let field = if path.is_empty() { "body" } else { path };
                f.problems.push(FieldProblem::new(field, what));
            }
        }
        f
    }

    /// A JSON request body, which must be an object.
    pub fn body(value: &'a Value) -> Result<Self, FieldProblem> {
        if value.is_object() {
            Ok(Self::new(Source::Json, "", Some(value)))
        } else {
            Err(FieldProblem::new("body", "must be a JSON object"))
        }
    }

    /// Fields already taken apart by a typed body (serde with `deny_unknown_fields`, so none
    /// is unknown): each name with its value, absent when `None`.
    pub fn of_entries(
        source: Source,
        entries: impl IntoIterator<Item = (&'static str, Option<&'a Value>)>,
    ) -> Self {
        let mut f = Self::new(source, "", None);
        for (key, value) in entries {
            if let Some(v) = value {
                f.entries.insert(key.to_string(), v);
            }
        }
        f
    }

    /// A query string already parsed into its named parameters.
    pub fn query(params: &'a Value) -> Self {
        Self::new(Source::Query, "", Some(params))
    }

    /// The full path of a field of this object.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// This object's own path (empty for a request body).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Record a problem with a field of this object.
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let field = self.path_of(key);
        self.problems.push(FieldProblem::new(field, message));
    }

    /// Record a problem at a full path (an item of a list, a rule across fields).
    pub fn problem_at(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(FieldProblem::new(field, message));
    }

    /// Whether a field is there (not `null`, and in a query string not empty).
    pub fn has(&self, key: &str) -> bool {
        self.entries.get(key).is_some_and(|v| self.is_given(v))
    }

    /// A field's value, left in place (to see what a body gives before reading it).
    pub fn peek(&self, key: &str) -> Option<&'a Value> {
        self.entries.get(key).copied().filter(|v| self.is_given(v))
    }

    /// Take a field's value out; `null` (and in a query string `?x=`) reads as absent.
    pub fn take(&mut self, key: &str) -> Option<&'a Value> {
        let v = self.entries.remove(key)?;
        self.is_given(v).then_some(v)
    }

    fn is_given(&self, v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::String(s) if self.source == Source::Query => !s.is_empty(),
            _ => true,
        }
    }

    /// Leave these fields to someone else (read-only fields echoed back, a section read by
    /// another module): they are not unknown.
    pub fn skip(&mut self, keys: &[&str]) {
        for key in keys {
            self.entries.remove(*key);
        }
    }

    /// A nested object, read with its own [`Fields`]; hand it back with [`Fields::absorb`].
    pub fn section(&mut self, key: &str) -> Fields<'a> {
        let value = self.take(key);
        Fields::new(self.source, &self.path_of(key), value)
    }

    /// An object at a full path (an item of a list of objects).
    pub fn item<'b>(&self, path: String, value: &'b Value) -> Fields<'b> {
        Fields::new(self.source, &path, Some(value))
    }

    /// Take in a nested reader's problems, its unknown fields included.
    pub fn absorb(&mut self, nested: Fields<'_>) {
        let problems = nested.finish();
        self.problems.extend(problems);
    }

    /// The problems so far.
    pub fn problems(&self) -> &[FieldProblem] {
        &self.problems
    }

    /// How many problems so far (to tell whether a part added any).
    pub fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// The problems, for a table that other readers read too (their fields are not unknown).
    pub fn finish_shared(self) -> Vec<FieldProblem> {
        self.problems
    }

    /// Every problem, each field not read reported as unknown (except in a query string).
    pub fn finish(mut self) -> Vec<FieldProblem> {
        if self.source != Source::Query {
            let what = match self.source {
                Source::Config => "unknown key",
                Source::Json | Source::Query => "unknown field",
            };
            let unread: Vec<String> = self.entries.keys().cloned().collect();
            for key in unread {
                self.problem(&key, what);
            }
        }
        self.problems
    }

    fn missing(&mut self, key: &str, need: Need) {
        if need == Required {
            self.problem(key, "is required");
        }
    }

    /// A list; `message` says what it must be a list of.
    pub fn list(&mut self, key: &str, need: Need, message: &str) -> Option<&'a [Value]> {
        match self.take(key) {
            None => {
                self.missing(key, need);
                None
            }
            Some(Value::Array(items)) => Some(items.as_slice()),
            Some(_) => {
                self.problem(key, message.to_string());
                None
            }
        }
    }

    /// Text as written. In the configuration a number stands for its digits.
    pub fn string(&mut self, key: &str, need: Need) -> Option<String> {
        match self.take(key) {
            None => {
                self.missing(key, need);
                None
            }
            Some(v) => match self.text_of(v) {
                Some(s) => Some(s),
                None => {
                    self.problem(key, "must be a string");
                    None
                }
            },
        }
    }

    /// Text meant for people: trimmed, at most `max` characters; empty reads as absent (and
    /// is a problem when the field is required).
    pub fn text(&mut self, key: &str, need: Need, max: usize) -> Option<String> {
        let raw = self.string(key, need)?;
        if raw.chars().count() > max {
            self.problem(key, format!("must be at most {max} characters"));
            return None;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            if need == Required {
                self.problem(key, "must not be empty");
            }
            return None;
        }
        Some(trimmed.to_string())
    }

    /// A whole number in `range`.
    pub fn uint(&mut self, key: &str, need: Need, range: RangeInclusive<u64>) -> Option<u64> {
        let message = format!(
            "must be a whole number from {} to {}",
            range.start(),
            range.end()
        );
        self.uint_or(key, need, range, &message)
    }

    /// A whole number in `range`, with the caller's words for a wrong one.
    pub fn uint_or(
        &mut self,
        key: &str,
        need: Need,
        range: RangeInclusive<u64>,
        message: &str,
    ) -> Option<u64> {
        let v = match self.take(key) {
            None => {
                self.missing(key, need);
                return None;
            }
            Some(v) => v,
        };
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if self.source != Source::Json => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.problem(key, message.to_string());
                None
            }
        }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self, key: &str, need: Need) -> Option<bool> {
        match self.take(key) {
            None => {
                self.missing(key, need);
                None
            }
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s))
                if self.source != Source::Json && (s == "true" || s == "false") =>
            {
                Some(s == "true")
            }
            Some(_) => {
                self.problem(key, "must be true or false");
                None
            }
        }
    }

    /// A string turned into a value by `parse`; `message` says what it must be.
    pub fn parsed<T, E>(
        &mut self,
        key: &str,
        need: Need,
        parse: impl FnOnce(&str) -> Result<T, E>,
        message: &str,
    ) -> Option<T> {
        let v = match self.take(key) {
            None => {
                self.missing(key, need);
                return None;
            }
            Some(v) => v,
        };
        match self.text_of(v).map(|s| parse(&s)) {
            Some(Ok(t)) => Some(t),
            _ => {
                self.problem(key, message.to_string());
                None
            }
        }
    }

    /// A list of strings (roles, names).
    pub fn strings(&mut self, key: &str, need: Need) -> Option<Vec<String>> {
        let items = self.list(key, need, "must be a list of strings")?;
        let texts: Option<Vec<String>> = items.iter().map(|v| self.text_of(v)).collect();
        if texts.is_none() {
            self.problem(key, "must be a list of strings");
        }
        texts
    }

    /// A string turned into a value by `parse`, whose error is the message (it may quote the
    /// value, as the configuration's messages do).
    pub fn string_with<T>(
        &mut self,
        key: &str,
        need: Need,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.string(key, need)?;
        match parse(&raw) {
            Ok(t) => Some(t),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    /// One of a fixed set of words. A required field that is missing says which words.
    pub fn choice<T: Copy>(
        &mut self,
        key: &str,
        need: Need,
        options: &[(&str, T)],
        message: &str,
    ) -> Option<T> {
        if need == Required && !self.has(key) {
            self.take(key);
            let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
            self.problem(key, format!("is required: {}", words.join(", ")));
            return None;
        }
        self.parsed(
            key,
            need,
            |s| {
                options
                    .iter()
                    .find(|(w, _)| *w == s)
                    .map(|(_, v)| *v)
                    .ok_or(())
            },
            message,
        )
    }

    /// An RFC 3339 instant, in UTC.
    pub fn instant(&mut self, key: &str, need: Need) -> Option<DateTime<Utc>> {
        self.parsed(key, need, parse_instant, INSTANT_MESSAGE)
    }

    /// A calendar date `YYYY-MM-DD`.
    pub fn date(&mut self, key: &str, need: Need) -> Option<NaiveDate> {
        self.parsed(key, need, parse_date, DATE_MESSAGE)
    }

    /// A phone number in any common form, normalised.
    pub fn phone(&mut self, key: &str, need: Need) -> Option<PhoneNumber> {
        let v = match self.take(key) {
            None => {
                self.missing(key, need);
                return None;
            }
            Some(v) => v,
        };
        let field = self.path_of(key);
        match self.text_of(v) {
            Some(s) => match phone_problem(&s) {
                Ok(n) => Some(n),
                Err(message) => {
                    self.problem_at(field, message);
                    None
                }
            },
            None => {
                self.problem_at(field, "must be a string");
                None
            }
        }
    }

    /// An http(s) URL, without a trailing `/`. `Some(None)` is an empty value where that is
    /// allowed (a feature switched off).
    pub fn url(&mut self, key: &str, need: Need, allow_empty: bool) -> Option<Option<String>> {
        let raw = self.string(key, need)?;
        if raw.is_empty() {
            if allow_empty {
                return Some(None);
            }
            self.problem(key, "must be an http(s) URL");
            return None;
        }
        match url::Url::parse(&raw) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                Some(Some(raw.trim_end_matches('/').to_string()))
            }
            _ => {
                self.problem(key, format!("{raw:?} is not an http(s) URL"));
                None
            }
        }
    }

    /// A value's text: a string, or in the configuration and a query string a number.
    fn text_of(&self, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) if self.source != Source::Json => Some(n.to_string()),
            _ => None,
        }
    }
}

/// An RFC 3339 instant, in UTC.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<NaiveDate, chrono::ParseError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
}

/// A phone number, or what is wrong with it in words.
pub fn phone_problem(s: &str) -> Result<PhoneNumber, &'static str> {
    PhoneNumber::parse(s).map_err(|e| match e {
        PhoneNumberError::Withheld => "is a withheld-number form, which can never match a caller",
        _ => "is not a phone number",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(problems: Vec<FieldProblem>) -> Vec<String> {
        problems.into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn every_problem_is_named_by_its_full_path_and_unread_fields_are_unknown() {
        let v = json!({"server": {"bind": 5, "port": "x"}, "extra": true});
        let mut top = Fields::new(Source::Config, "", Some(&v));
        let mut server = top.section("server");
        assert_eq!(server.string("bind", Required).as_deref(), Some("5"));
        assert_eq!(server.uint("timeout", Required, 1..=10), None);
        top.absorb(server);
        let problems = top.finish();
        assert_eq!(
            fields(problems.clone()),
            ["server.timeout", "server.port", "extra"]
        );
        assert_eq!(problems[0].message, "is required");
        assert_eq!(problems[1].message, "unknown key");
    }

    #[test]
    fn json_bodies_are_strict_about_types_and_configuration_is_not() {
        let v = json!({"count": "3", "on": "true", "name": 7});
        let mut json_fields = Fields::body(&v).unwrap();
        assert_eq!(json_fields.uint("count", Required, 1..=5), None);
        assert_eq!(json_fields.boolean("on", Required), None);
        assert_eq!(json_fields.string("name", Required), None);
        assert_eq!(json_fields.finish().len(), 3);

        let mut config = Fields::new(Source::Config, "t", Some(&v));
        assert_eq!(config.uint("count", Required, 1..=5), Some(3));
        assert_eq!(config.boolean("on", Required), Some(true));
        assert_eq!(config.string("name", Required).as_deref(), Some("7"));
        assert!(config.finish().is_empty());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_one_problem() {
        let v = json!([1, 2]);
        assert_eq!(Fields::body(&v).unwrap_err().field, "body");
        let mut config = Fields::new(Source::Config, "vonage", Some(&v));
        config.string("x", Optional);
        assert_eq!(
            config.finish(),
            [FieldProblem::new("vonage", "must be a table")]
        );
    }

    #[test]
    fn null_is_absent_and_optional_fields_may_be_missing() {
        let v = json!({"notes": null});
        let mut f = Fields::body(&v).unwrap();
        assert_eq!(f.text("notes", Optional, 10), None);
        assert_eq!(f.instant("at", Optional), None);
        assert!(f.finish().is_empty());
        let mut f = Fields::body(&v).unwrap();
        assert_eq!(f.text("notes", Required, 10), None);
        assert_eq!(f.finish(), [FieldProblem::new("notes", "is required")]);
    }

    #[test]
    fn text_is_trimmed_bounded_and_empty_is_absent() {
        let v = json!({"a": "  hi  ", "b": "   ", "c": "toolong", "d": "   "});
        let mut f = Fields::body(&v).unwrap();
        assert_eq!(f.text("a", Required, 10).as_deref(), Some("hi"));
        assert_eq!(f.text("b", Optional, 10), None);
        assert_eq!(f.text("c", Required, 3), None);
        assert_eq!(f.text("d", Required, 10), None);
        let messages: Vec<String> = f.finish().into_iter().map(|p| p.message).collect();
        assert_eq!(
            messages,
            ["must be at most 3 characters", "must not be empty"]
        );
    }

    #[test]
    fn typed_readers_parse_or_say_what_is_expected() {
        let v = json!({
            "at": "2026-03-29T01:30:00+01:00", "bad_at": "yesterday",
            "day": "2026-02-28", "bad_day": "2026-02-30",
            "phone": "02920 123456", "withheld": "anonymous", "bad_phone": "hello",
            "kind": "blocked", "bad_kind": "maybe",
            "site": "https://example.org/", "bad_site": "ftp://example.org"
        });
        let mut f = Fields::body(&v).unwrap();
        assert_eq!(
            f.instant("at", Required).map(|t| t.to_rfc3339()),
            Some("2026-03-29T00:30:00+00:00".into())
        );
        assert_eq!(f.instant("bad_at", Required), None);
        assert_eq!(
            f.date("day", Required),
            NaiveDate::from_ymd_opt(2026, 2, 28)
        );
        assert_eq!(f.date("bad_day", Required), None);
        assert_eq!(
            f.phone("phone", Required).map(|n| n.as_str().to_string()),
            Some("+442920123456".into())
        );
        assert_eq!(f.phone("withheld", Required), None);
        assert_eq!(f.phone("bad_phone", Required), None);
        let options = [("restricted", 1), ("blocked", 2)];
        assert_eq!(f.choice("kind", Required, &options, "no"), Some(2));
        assert_eq!(f.choice("bad_kind", Required, &options, "no"), None);
        assert_eq!(f.choice("gone", Required, &options, "no"), None);
        assert_eq!(
            f.url("site", Required, false),
            Some(Some("https://example.org".into()))
        );
        assert_eq!(f.url("bad_site", Required, false), None);
        let problems = f.finish();
        let got: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("bad_at", INSTANT_MESSAGE),
                ("bad_day", DATE_MESSAGE),
                (
                    "withheld",
                    "is a withheld-number form, which can never match a caller"
                ),
                ("bad_phone", "is not a phone number"),
                ("bad_kind", "no"),
                ("gone", "is required: restricted, blocked"),
                ("bad_site", "\"ftp://example.org\" is not an http(s) URL"),
            ]
        );
    }

    #[test]
    fn a_query_string_reads_numbers_from_text_and_ignores_what_it_does_not_read() {
        let v = json!({"limit": "50", "page": "2"});
        let mut f = Fields::query(&v);
        assert_eq!(f.uint("limit", Optional, 1..=1000), Some(50));
        assert!(f.finish().is_empty());
    }
}
