//! Bounded text and string-shaped values: trimmed non-blank text, e-mail addresses,
//! http(s) URLs, SHA-256 digests and password hashes.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

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
    /// characters (zero-width spaces and joiners, fillers...) and combining marks (an
    /// accent or an enclosing circle on nothing) reads as blank to a person and is
    /// refused as such; bidirectional overrides and isolates are refused anywhere,
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
            .all(|c| c.is_whitespace() || is_invisible(c) || is_combining_mark(c))
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

/// Combining marks (Unicode categories Mn, Mc, Me): they draw only on the character
/// before them.
fn is_combining_mark(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Mark
}

/// Characters no link or address should hold: controls, format characters (zero-width
/// space and joiners, BOM, soft hyphen, direction marks, bidirectional controls, tags),
/// whitespace and separators, the invisible fillers of [`is_invisible`], private-use and
/// unassigned code points. Any of them makes a string display as something other than
/// what it is.
fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || is_invisible(c)
        || is_bidi_control(c)
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::Unassigned
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
///
/// **ASCII only** (review of issue 13): with any Unicode allowed, `adm\u{200b}in@…`,
/// `\u{202e}admin@…` or a Cyrillic `а` make a second account that displays exactly like
/// `admin@…`. So:
/// - the local part is RFC 5322 `dot-atom` text: ASCII letters, digits and
///   ``!#$%&'*+/=?^_`{|}~-``, with single dots between them (no quoted local parts);
/// - the domain is at least two DNS labels of ASCII letters, digits and inner hyphens
///   (1 to 63 characters each), its last label not all digits (no address literals). An
///   internationalised domain is written as punycode (`xn--bcher-kva.example`), as it
///   travels on the wire anyway; internationalised local parts (RFC 6531) are refused,
///   since few mail systems deliver them and their look-alikes cannot be told apart.
///
/// Addresses accepted by earlier versions stay readable: [`Email::parse_existing`]
/// (and decoding from the log) keeps the old, Unicode-tolerant rule, so stored facts
/// decode and their owners can still sign in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// A new address (registration, invites): the ASCII rules above.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let email = Self::parse_existing(s)?;
        let (local, domain) = email.0.split_once('@').ok_or(ValueError::Email)?;
        if !is_dot_atom(local) || !is_dns_name(domain) {
            return Err(ValueError::Email);
        }
        Ok(email)
    }

    /// An address as earlier versions accepted it (any visible Unicode, one `@`, a
    /// dotted domain): for what is already stored, and for looking an account up by
    /// it. New addresses go through [`Email::parse`].
    pub fn parse_existing(s: &str) -> Result<Self, ValueError> {
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

/// RFC 5322 `dot-atom-text`: `atext` runs joined by single dots.
fn is_dot_atom(s: &str) -> bool {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    !s.is_empty()
        && s.split('.')
            .all(|run| !run.is_empty() && run.chars().all(atext))
}

/// A DNS host name in ASCII: two or more labels of letters, digits and inner hyphens,
/// 1 to 63 characters each, the last one not all digits (not an address literal).
fn is_dns_name(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decoding (events in the log) uses the rule the address was accepted under:
/// [`Email::parse_existing`].
impl TryFrom<String> for Email {
    type Error = ValueError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse_existing(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// An absolute `http://` or `https://` URL with a host, at most 2048 characters. Only
/// the shape is checked; nothing is fetched.
///
/// A link must go where it reads (review of issue 13): no control, format (zero-width,
/// bidirectional), whitespace, invisible, private-use or unassigned character anywhere;
/// the host is ASCII — a DNS name of letters, digits, `-`, `_` and dots (an
/// internationalised one as punycode, `xn--…`), an IPv4 address or a bracketed IPv6
/// one — with an optional numeric port, and no `user@` before it (which makes
/// `https://precinct.example@evil.example/` read as the wrong host). The path, query and
/// fragment may hold visible Unicode (`/café.jpg`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let url = s.trim();
        if url.is_empty() {
            return Err(ValueError::Blank);
        }
        if url.chars().count() > limits::URL_MAX || url.chars().any(is_hidden_or_control) {
            return Err(ValueError::Url);
        }
        let rest = ["https://", "http://"]
            .iter()
            .find_map(|scheme| {
                url.get(..scheme.len())
                    .filter(|head| head.eq_ignore_ascii_case(scheme))
                    .map(|_| &url[scheme.len()..])
            })
            .ok_or(ValueError::Url)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if !is_url_authority(authority) {
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

/// `host[:port]` of a URL, in ASCII: a DNS name, an IPv4 address or a bracketed IPv6
/// address; no user information, no percent-encoding.
fn is_url_authority(authority: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit());
    if let Some(v6) = authority.strip_prefix('[') {
        let Some((inside, after)) = v6.split_once(']') else {
            return false;
        };
        return inside.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    host.len() <= 253 && host.split('.').all(label_ok) && port.is_none_or(port_ok)
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
