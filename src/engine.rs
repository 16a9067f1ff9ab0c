//! The decision engine: a pure function of (caller, arrangement or none, counted calls in the
//! current period, instant, organisation calendar) → decision. No I/O, no clock: the instant is
//! an argument. SPEC §4 steps 1–7.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::{AllowancePeriod, Arrangement, ArrangementId, CallerId, StaffId};

/// The organisation's calendar: its timezone and the local dates on which no window is open.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub tz: Tz,
    pub closed_dates: BTreeSet<NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Continue,
    Route,
    Refuse,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Continue => "continue",
            Outcome::Route => "route",
            Outcome::Refuse => "refuse",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    WithheldNumber,
    UnrecognisedNumber,
    NoArrangement,
    Blocked,
    OutsideWindow,
    AllowanceUsed,
    DesignatedStaff,
    WithinArrangement,
    LookupFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WithheldNumber => "withheld_number",
            Reason::UnrecognisedNumber => "unrecognised_number",
            Reason::NoArrangement => "no_arrangement",
            Reason::Blocked => "blocked",
            Reason::OutsideWindow => "outside_window",
            Reason::AllowanceUsed => "allowance_used",
            Reason::DesignatedStaff => "designated_staff",
            Reason::WithinArrangement => "within_arrangement",
            Reason::LookupFailed => "lookup_failed",
        }
    }
}

/// What to do with one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    pub arrangement_id: Option<ArrangementId>,
    pub arrangement_version: Option<i64>,
    /// The designated member of staff, for `route`.
    pub route_to: Option<StaffId>,
    /// For `outside_window` and `allowance_used`: the first instant a call would be permitted.
    pub next_permitted_at: Option<DateTime<Utc>>,
}

impl Decision {
    /// A decision with no arrangement behind it.
    pub fn plain(outcome: Outcome, reason: Reason) -> Self {
        Decision {
            outcome,
            reason,
            arrangement_id: None,
            arrangement_version: None,
            route_to: None,
            next_permitted_at: None,
        }
    }

    /// A counted call: `continue` or `route` under an arrangement in force.
    pub fn is_counted(&self) -> bool {
        self.arrangement_id.is_some() && matches!(self.outcome, Outcome::Continue | Outcome::Route)
    }
}

/// Decide for one call. `counted` is the number of counted calls already made in the allowance
/// period containing `t` (ignored when the arrangement has no allowance).
pub fn decide(
    caller: &CallerId,
    arrangement: Option<&Arrangement>,
    counted: u32,
    t: DateTime<Utc>,
    calendar: &Calendar,
) -> Decision {
    let _ = (caller, arrangement, counted, t, calendar);
    Decision::plain(Outcome::Continue, Reason::NoArrangement)
}

/// The start (inclusive) and end (exclusive) instants of the local day or ISO week containing
/// `t` in `tz`.
pub fn period_bounds(
    per: AllowancePeriod,
    t: DateTime<Utc>,
    tz: Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let _ = (per, tz);
    (t, t)
}
