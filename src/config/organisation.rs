//! `[organisation]`: who Fairline works for, its time zone, language and closed dates.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::lifecycle::Letterhead;
use crate::domain::LanguageSetting;
use crate::fields::{parse_date, Fields, Need, Required};

#[derive(Clone, Debug)]
pub struct OrganisationConfig {
    pub name: String,
    pub timezone: Tz,
    pub language: LanguageSetting,
    pub closed_dates: BTreeSet<NaiveDate>,
}

/// `[organisation]`, and the letterhead keys it also holds (SPEC §13).
pub(super) fn read(t: &mut Fields<'_>) -> (Option<OrganisationConfig>, Option<Letterhead>) {
    let name = t.string("name", Required);
    let timezone = t.string_with("timezone", Required, |s| {
        s.parse::<Tz>()
            .map_err(|_| format!("{s:?} is not an IANA timezone name"))
    });
    let language = language(t, "language", Required);
    let letterhead = super::lifecycle::read_letterhead(t);
    let closed_dates = closed_dates(t);
    let organisation = (|| {
        Some(OrganisationConfig {
            name: name?,
            timezone: timezone?,
            language: language?,
            closed_dates: closed_dates?,
        })
    })();
    (organisation, letterhead)
}

/// A language setting: `en`, `cy`, `en+cy` or `cy+en`.
pub(super) fn language(t: &mut Fields<'_>, key: &str, need: Need) -> Option<LanguageSetting> {
    t.parsed(
        key,
        need,
        |s| s.parse::<LanguageSetting>(),
        "must be one of \"en\", \"cy\", \"en+cy\", \"cy+en\"",
    )
}

fn closed_dates(t: &mut Fields<'_>) -> Option<BTreeSet<NaiveDate>> {
    let path = t.path_of("closed_dates");
    if !t.has("closed_dates") {
        t.take("closed_dates");
        return Some(BTreeSet::new());
    }
    let items = t.list(
        "closed_dates",
        Required,
        "must be a list of dates (YYYY-MM-DD)",
    )?;
    let before = t.problem_count();
    let mut out = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().map(parse_date) {
            Some(Ok(d)) => {
                out.insert(d);
            }
            _ => t.problem_at(format!("{path}[{i}]"), "is not a date (YYYY-MM-DD)"),
        }
    }
    (t.problem_count() == before).then_some(out)
}
