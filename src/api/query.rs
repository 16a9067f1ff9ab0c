//! Reading list filters from a query string, collecting every invalid parameter so that a 422
//! names them all at once.

use chrono::{DateTime, NaiveDate, Utc};

use crate::api::error::{ApiError, FieldError};
use crate::domain::PhoneNumber;

/// The default and largest page sizes of the list endpoints.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Default)]
pub struct QueryFields {
    errors: Vec<FieldError>,
}

fn present(raw: Option<&str>) -> Option<&str> {
    raw.filter(|s| !s.is_empty())
}

impl QueryFields {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn invalid(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A phone number in any common form, normalised.
    pub fn phone(&mut self, field: &str, raw: Option<&str>) -> Option<PhoneNumber> {
        let raw = present(raw)?;
        PhoneNumber::parse(raw)
            .map_err(|_| self.invalid(field, "is not a phone number"))
            .ok()
    }

    /// An RFC 3339 instant.
    pub fn instant(&mut self, field: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
        let raw = present(raw)?;
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.invalid(field, "must be an RFC 3339 instant"))
            .ok()
    }

    /// A date `YYYY-MM-DD`.
    pub fn date(&mut self, field: &str, raw: Option<&str>) -> Option<NaiveDate> {
        let raw = present(raw)?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| self.invalid(field, "must be a date YYYY-MM-DD"))
            .ok()
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        options: &[(&str, T)],
        message: &str,
    ) -> Option<T> {
        let raw = present(raw)?;
        match options.iter().find(|(name, _)| *name == raw) {
            Some((_, value)) => Some(*value),
            None => {
                self.invalid(field, message);
                None
            }
        }
    }

    /// A paging cursor: the id of the last item of the previous page.
    pub fn cursor<T, E>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
        message: &str,
    ) -> Option<T> {
        let raw = present(raw)?;
        parse(raw).map_err(|_| self.invalid(field, message)).ok()
    }

    /// The page size: default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`].
    pub fn limit(&mut self, raw: Option<u32>) -> u32 {
        let limit = raw.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            self.invalid("limit", "must be from 1 to 1000");
        }
        limit
    }

    /// `Err(422)` listing every invalid parameter, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// The cursor for the next page: the last item's id when the page is full, else `None`.
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> String) -> Option<String> {
    if items.len() == limit as usize {
        items.last().map(id)
    } else {
        None
    }
}
