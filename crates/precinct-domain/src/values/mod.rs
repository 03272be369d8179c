//! Value types with rules: each constructor parses its input and refuses what breaks
//! the rule, so a value that exists is a valid one ("parse, don't validate").
//!
//! - [`enums`]: the closed vocabularies (`Role`, `Priority`, `ReportStatus`, ...), all
//!   serialised as `SCREAMING_SNAKE_CASE` strings.
//! - [`text`]: bounded text, e-mail addresses, URLs, digests and password hashes.
//! - [`place`]: latitudes, longitudes, points and GeoJSON polygons.
//! - [`time`]: caller-supplied instants, kept in a range every store can hold.
//! - [`phone`]: telephone numbers (a station's contact number).

pub mod enums;
pub mod phone;
pub mod place;
pub mod text;
pub mod time;

pub use enums::{
    EscalationAction, MediaType, PatrolStatus, Priority, ReportStatus, Role, SlaKind, StationKind,
};
pub use phone::PhoneNumber;
pub use place::{GeoPoint, Latitude, Longitude, Polygon, PolygonCoordinates};
pub use text::{limits, optional_text, Email, HttpUrl, NonEmptyText, PasswordHash, TokenHash};
pub use time::Timestamp;

/// Why a raw input could not become a value. The caller knows which field it parsed
/// and reports `(field, error.to_string())` to the client (HTTP 422).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("must not be blank")]
    Blank,
    #[error("must not contain control characters other than tab and line breaks")]
    ControlCharacter,
    #[error("must contain at least one visible character")]
    Invisible,
    #[error("must not contain bidirectional override or isolate characters (U+202A to U+202E, U+2066 to U+2069)")]
    BidiControl,
    #[error("must be at most {max} characters long (got {len})")]
    TooLong { max: usize, len: usize },
    #[error("must contain at least {min} item(s)")]
    TooFew { min: usize },
    #[error("must contain at most {max} items (got {len})")]
    TooMany { max: usize, len: usize },
    #[error("latitude must be a finite number between -90 and 90 (got {0})")]
    Latitude(f64),
    #[error("longitude must be a finite number between -180 and 180 (got {0})")]
    Longitude(f64),
    #[error("not a valid e-mail address")]
    Email,
    #[error("must be an absolute http(s) URL of at most 2048 characters")]
    Url,
    #[error("must be a SHA-256 digest written as 64 hexadecimal characters")]
    TokenHash,
    #[error("must be between 1900-01-01T00:00:00Z and 9999-12-31T23:59:59Z")]
    TimeOutOfRange,
    #[error("must not be in the future")]
    Future,
    #[error("invalid polygon: {0}")]
    Polygon(String),
    #[error("unknown {kind} `{value}` (expected one of: {expected})")]
    UnknownVariant {
        kind: &'static str,
        value: String,
        expected: String,
    },
    #[error("must be a telephone number: digits, spaces and + - ( ) . (a + only in front), at least 3 digits")]
    Phone,
}
