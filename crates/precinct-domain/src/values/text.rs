//! Bounded text and string-shaped values: trimmed non-blank text, e-mail addresses,
//! http(s) URLs, SHA-256 digests and password hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// Length limits (in characters) the domain enforces. The API may quote them in docs.
pub mod limits {
    pub const TITLE_MAX: usize = 200;
    pub const DESCRIPTION_MAX: usize = 10_000;
    pub const NOTE_MAX: usize = 10_000;
    pub const PUBLIC_UPDATE_MAX: usize = 2_000;
    pub const REASON_MAX: usize = 2_000;
    pub const RESOLUTION_NOTES_MAX: usize = 10_000;
    pub const EVIDENCE_DESCRIPTION_MAX: usize = 2_000;
    pub const NAME_MAX: usize = 200;
    pub const CALL_SIGN_MAX: usize = 32;
    pub const CRIME_TYPE_MAX: usize = 100;
    pub const CRIME_TYPES_MAX: usize = 20;
    pub const MEDIA_URLS_MAX: usize = 20;
    pub const URL_MAX: usize = 2_048;
    pub const STREET_MAX: usize = 300;
    pub const CONTACT_MAX: usize = 300;
    pub const CITY_MAX: usize = 100;
    pub const STATE_MAX: usize = 100;
    pub const EMAIL_MAX: usize = 254;
    pub const OFFICERS_MAX: usize = 50;
    pub const PASSWORD_HASH_MAX: usize = 1_024;
}

/// Trimmed text that is not blank and not longer than a limit chosen by the caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NonEmptyText(String);

impl NonEmptyText {
    /// Trims `s` and refuses it when blank, longer than `max_len` characters, or holding
    /// a control character other than tab, CR and LF (PostgreSQL cannot store U+0000:
    /// one such event would stop a projection for good). Text made only of invisible
    /// characters (zero-width spaces and joiners, fillers...) reads as blank to a person
    /// and is refused as such; bidirectional overrides and isolates are refused anywhere,
    /// since they make text display as something other than what it says ("Trojan
    /// source": `invoice`, U+202E, `gpj.exe` shows as `invoiceexe.jpg`).
    pub fn parse(s: &str, max_len: usize) -> Result<Self, ValueError> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(ValueError::Blank);
        }
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(ValueError::ControlCharacter);
        }
        if trimmed.chars().any(is_bidi_control) {
            return Err(ValueError::BidiControl);
        }
        if trimmed
            .chars()
            .all(|c| c.is_whitespace() || is_invisible(c))
        {
            return Err(ValueError::Invisible);
        }
        let len = trimmed.chars().count();
        if len > max_len {
            return Err(ValueError::TooLong { max: max_len, len });
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for NonEmptyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bidirectional embeddings, overrides and isolates (U+202A to U+202E, U+2066 to
/// U+2069): they reorder how the text around them is displayed. The plain direction
/// marks (U+200E, U+200F, U+061C) only nudge neutral characters and stay allowed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing: format characters (zero-width space, joiners, word
/// joiner, BOM, soft hyphen, direction marks, invisible operators), fillers that render
/// as blank, combining grapheme joiner, variation selectors and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{205f}'..='\u{206f}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

/// Optional text: `None` and blank input both mean "absent"; otherwise as
/// [`NonEmptyText::parse`].
pub fn optional_text(s: Option<&str>, max_len: usize) -> Result<Option<String>, ValueError> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => NonEmptyText::parse(s, max_len).map(|t| Some(t.into_string())),
    }
}

/// A normalised e-mail address: trimmed, lower-cased, `local@domain.tld`, at most 254
/// characters. Equality is therefore case-insensitive, as the spec requires.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let email = s.trim().to_lowercase();
        if email.is_empty() {
            return Err(ValueError::Blank);
        }
        let len = email.chars().count();
        if len > limits::EMAIL_MAX {
            return Err(ValueError::TooLong {
                max: limits::EMAIL_MAX,
                len,
            });
        }
        let mut parts = email.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ValueError::Email);
        };
        let shaped = !local.is_empty()
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty())
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !shaped {
            return Err(ValueError::Email);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// An absolute `http://` or `https://` URL with a host, at most 2048 characters, no
/// whitespace. Only the shape is checked; nothing is fetched.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let url = s.trim();
        if url.is_empty() {
            return Err(ValueError::Blank);
        }
        if url.chars().count() > limits::URL_MAX
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ValueError::Url);
        }
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"))
            .ok_or(ValueError::Url)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') || host.starts_with('@') {
            return Err(ValueError::Url);
        }
        Ok(Self(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HttpUrl {
    type Error = ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<HttpUrl> for String {
    fn from(u: HttpUrl) -> String {
        u.0
    }
}

/// A SHA-256 digest as 64 lower-case hex characters: what the log keeps of anonymous
/// tracking tokens and invite codes (the secrets themselves never reach an event).
/// The caller hashes; this crate has no crypto dependency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenHash(String);

impl TokenHash {
    /// Accepts 64 hex digits in either case and stores them lower-cased.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ValueError::TokenHash);
        }
        Ok(Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TokenHash {
    type Error = ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TokenHash> for String {
    fn from(h: TokenHash) -> String {
        h.0
    }
}

/// An encoded password hash (an argon2 PHC string, produced by the caller). Not a
/// secret in the strict sense, but its `Debug` output is redacted so it never lands in
/// logs by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Refuses blank input and anything longer than 1024 characters.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        NonEmptyText::parse(s, limits::PASSWORD_HASH_MAX).map(|t| Self(t.into_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PasswordHash> for String {
    fn from(h: PasswordHash) -> String {
        h.0
    }
}
