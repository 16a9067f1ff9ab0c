//! Reading list filters from a query string with the one field reader ([`crate::fields`]),
//! collecting every invalid parameter so that a 422 names them all at once.

use serde::Serialize;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::fields::{Fields, Optional};

/// The default and largest page sizes of the list endpoints.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// A query's parameters (already split by the extractor) as the field reader reads them.
pub fn params<T: Serialize>(query: &T) -> Value {
    serde_json::to_value(query).unwrap_or(Value::Null)
}

/// The page size: default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`].
pub fn limit(fields: &mut Fields<'_>) -> u32 {
    fields
        .uint_or(
            "limit",
            Optional,
            1..=u64::from(MAX_LIMIT),
            "must be from 1 to 1000",
        )
        .and_then(|l| u32::try_from(l).ok())
        .unwrap_or(DEFAULT_LIMIT)
}

/// `Err(422)` listing every invalid parameter, if any.
pub fn finish(fields: Fields<'_>) -> Result<(), ApiError> {
    ApiError::check(fields.finish())
}

/// The cursor for the next page: the last item's id when the page is full, else `None`.
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> String) -> Option<String> {
    if items.len() == limit as usize {
        items.last().map(id)
    } else {
        None
    }
}
