//! A telephone number as people write it: digits with the usual separators.

use serde::{Deserialize, Serialize};

use super::ValueError;

/// At most this many characters, separators included.
pub const PHONE_MAX: usize = 32;
/// At least this many digits (short emergency numbers such as `911` or `117`).
pub const PHONE_DIGITS_MIN: usize = 3;

/// A contact telephone number: trimmed, at most [`PHONE_MAX`] characters of ASCII
/// digits, spaces and `+ - ( ) .`, a `+` only in front, at least
/// [`PHONE_DIGITS_MIN`] digits. Kept as written (no E.164 rewriting: a station's
/// local number is shown to the public as the station writes it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ValueError::Blank);
        }
        let len = s.chars().count();
        if len > PHONE_MAX {
            return Err(ValueError::TooLong {
                max: PHONE_MAX,
                len,
            });
        }
        let allowed = |(i, c): (usize, char)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0)
        };
        let digits = s.chars().filter(char::is_ascii_digit).count();
        if !s.chars().enumerate().all(allowed) || digits < PHONE_DIGITS_MIN {
            return Err(ValueError::Phone);
        }
        Ok(PhoneNumber(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        PhoneNumber::parse(&s)
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}
