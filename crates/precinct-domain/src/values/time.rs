//! Instants that callers supply (when a crime occurred, when evidence was captured,
//! when a patrol took a fix, the bounds of a time filter): [`Timestamp`] keeps them in
//! a range every part of Precinct can hold and compare.
//!
//! Why a range: `chrono` reads years from -262143 to +262142, PostgreSQL's
//! `timestamptz` holds 4713 BC to 294276 AD, and date arithmetic near either end
//! overflows. One accepted `-5000-01-01` once made an event the read side could not
//! store. The range chosen is 1900-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z: no
//! report, capture or fix is older than 1900, four-digit years are what RFC 3339 writes,
//! and a day's arithmetic either side stays far inside every store.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ValueError;

/// 1900-01-01T00:00:00Z, in seconds since the Unix epoch.
const EARLIEST_SECS: i64 = -2_208_988_800;
/// 9999-12-31T23:59:59Z, in seconds since the Unix epoch.
const LATEST_SECS: i64 = 253_402_300_799;
/// How far a device's clock may run ahead of the server's when the device supplies a
/// time (the same allowance as for patrol positions).
pub const CLOCK_SKEW_SECS: i64 = 30;

/// An instant within [`Timestamp::earliest`] and [`Timestamp::latest`]. Serialises as
/// RFC 3339, like the `DateTime` inside it; deserialising refuses an instant out of
/// range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "DateTime<Utc>", into = "DateTime<Utc>")]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// 1900-01-01T00:00:00Z.
    pub fn earliest() -> DateTime<Utc> {
        DateTime::from_timestamp(EARLIEST_SECS, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// 9999-12-31T23:59:59.999999Z.
    pub fn latest() -> DateTime<Utc> {
        DateTime::from_timestamp(LATEST_SECS, 999_999_000).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// How far ahead of the server's clock a device-supplied time may be.
    pub fn clock_skew() -> Duration {
        Duration::seconds(CLOCK_SKEW_SECS)
    }

    /// Any instant within the range.
    pub fn parse(t: DateTime<Utc>) -> Result<Self, ValueError> {
        if (Self::earliest()..=Self::latest()).contains(&t) {
            Ok(Self(t))
        } else {
            Err(ValueError::TimeOutOfRange)
        }
    }

    /// A moment the caller says has already happened, judged at `now` (the command's
    /// own time): within the range, and not after `now` by more than the clock skew a
    /// device may have.
    pub fn past(t: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, ValueError> {
        let t = Self::parse(t)?;
        if t.0 > now + Self::clock_skew() {
            return Err(ValueError::Future);
        }
        Ok(t)
    }

    pub const fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl TryFrom<DateTime<Utc>> for Timestamp {
    type Error = ValueError;

    fn try_from(t: DateTime<Utc>) -> Result<Self, Self::Error> {
        Self::parse(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}
