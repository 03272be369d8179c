//! The crime-type catalogue (ADR 0026): one aggregate per type, keyed by its stable
//! [`CrimeTypeCode`] (`THEFT`, `CYBER_FRAUD`), with a name per language (`en`
//! required), a default priority, resolution keywords, an optional Open311 service code
//! and group, and whether it is active. A retired type stays readable but no new text
//! resolves to it. [`OTHER`] is built in: it is never an event, cannot be created,
//! edited or retired, and is what a text no active type matches resolves to.
//!
//! [`resolve`] maps the free-text crime types a reporter typed to codes, given the
//! catalogue as facts ([`CrimeTypeFacts`]); it is deterministic (see its rule).
//!
//! Not here: who may change the catalogue (the application layer: ADMIN), and routing
//! (a division's keywords still route by the free text, [`crate::routing`]).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::{event_enum, Aggregate, DomainError, ErrorKind};
use crate::values::{limits, NonEmptyText, Priority, ValueError};

/// The built-in catch-all code.
pub const OTHER: &str = "OTHER";
/// Most names (languages) one type may have.
pub const NAMES_MAX: usize = 20;
/// Most resolution keywords one type may have.
pub const KEYWORDS_MAX: usize = 50;
/// Longest keyword, in characters.
pub const KEYWORD_MAX: usize = limits::CRIME_TYPE_MAX;
/// Longest Open311 service code, in characters.
pub const SERVICE_CODE_MAX: usize = 64;
/// Longest Open311 group, in characters.
pub const GROUP_MAX: usize = 100;
/// The language whose name every type must have.
pub const DEFAULT_LANGUAGE: &str = "en";

/// A stable crime-type code: an upper-case ASCII letter, then 1 to 31 upper-case ASCII
/// letters, digits or underscores (`^[A-Z][A-Z0-9_]{1,31}$`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CrimeTypeCode(String);

impl CrimeTypeCode {
    pub fn parse(s: &str) -> Result<Self, CrimeTypeError> {
        let bad = || CrimeTypeError::Invalid {
            field: "code",
            reason: "must match ^[A-Z][A-Z0-9_]{1,31}$".to_owned(),
        };
        let bytes = s.as_bytes();
        if !(2..=32).contains(&bytes.len()) || !bytes[0].is_ascii_uppercase() {
            return Err(bad());
        }
        if !bytes[1..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        {
            return Err(bad());
        }
        Ok(CrimeTypeCode(s.to_owned()))
    }

    /// The built-in catch-all.
    pub fn other() -> Self {
        CrimeTypeCode(OTHER.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_other(&self) -> bool {
        self.0 == OTHER
    }

    /// The type's stream id: UUID v5 of the code (one stream per code, so two creations
    /// of one code meet on one expected version).
    pub fn stream_id(&self) -> uuid::Uuid {
        uuid::Uuid::new_v5(&CRIME_TYPE_NAMESPACE, self.0.as_bytes())
    }
}

/// Namespace of crime-type stream ids. Fixed forever.
pub const CRIME_TYPE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x7c1e_2b9a_4d3f_4e86_a5c0_91d7_3b2e_6f48);

impl fmt::Display for CrimeTypeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CrimeTypeCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CrimeTypeCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

event_enum!(
    /// Everything that can happen to a crime type.
    CrimeTypeEvent {
        CrimeTypeCreated,
        CrimeTypeUpdated,
        CrimeTypeRetired,
    }
);

/// A new type, active.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrimeTypeCreated {
    pub code: CrimeTypeCode,
    /// Language tag → name; always has [`DEFAULT_LANGUAGE`].
    pub names: BTreeMap<String, String>,
    pub default_priority: Priority,
    /// Lower-case, unique.
    pub keywords: Vec<String>,
    #[serde(default)]
    pub service_code: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub at: DateTime<Utc>,
}

/// A type's editable fields after an edit (all of them) and which ones changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrimeTypeUpdated {
    pub code: CrimeTypeCode,
    pub names: BTreeMap<String, String>,
    pub default_priority: Priority,
    pub keywords: Vec<String>,
    pub service_code: Option<String>,
    pub group: Option<String>,
    /// Never empty.
    pub changed: Vec<CrimeTypeField>,
    pub at: DateTime<Utc>,
}

/// No new text resolves to the type from now on; reports that have it keep it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrimeTypeRetired {
    pub code: CrimeTypeCode,
    pub at: DateTime<Utc>,
}

/// An editable field of a crime type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CrimeTypeField {
    Names,
    DefaultPriority,
    Keywords,
    ServiceCode,
    Group,
}

/// The fields of a type as an ADMIN wrote them (parsed by [`Aggregate::handle`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrimeTypeSpec {
    pub names: BTreeMap<String, String>,
    pub default_priority: Priority,
    pub keywords: Vec<String>,
    pub service_code: Option<String>,
    pub group: Option<String>,
}

/// The changes of one edit; `None` keeps a field, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrimeTypeChanges {
    /// The whole new name map.
    pub names: Option<BTreeMap<String, String>>,
    pub default_priority: Option<Priority>,
    /// The whole new keyword list.
    pub keywords: Option<Vec<String>>,
    pub service_code: Option<Option<String>>,
    pub group: Option<Option<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CrimeTypeCommand {
    /// Creates the type (refused for [`OTHER`] and for a code that exists, retired or not).
    Create {
        code: CrimeTypeCode,
        spec: CrimeTypeSpec,
        at: DateTime<Utc>,
    },
    /// Edits an active or retired type; an edit that changes nothing emits nothing.
    Update {
        changes: CrimeTypeChanges,
        at: DateTime<Utc>,
    },
    /// Retires the type. Already retired: nothing happens.
    Retire { at: DateTime<Utc> },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrimeTypeError {
    #[error("a crime type with this code already exists")]
    AlreadyExists,
    #[error("OTHER is built in: it cannot be created, edited or retired")]
    BuiltIn,
    #[error("no such crime type")]
    NotFound,
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DomainError for CrimeTypeError {
    fn kind(&self) -> ErrorKind {
        match self {
            CrimeTypeError::AlreadyExists | CrimeTypeError::BuiltIn => ErrorKind::Conflict,
            CrimeTypeError::NotFound => ErrorKind::NotFound,
            CrimeTypeError::Invalid { .. } => ErrorKind::Invalid,
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            CrimeTypeError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A crime type's state, folded from its events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CrimeType {
    exists: bool,
    pub code: Option<CrimeTypeCode>,
    pub spec: CrimeTypeSpec,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CrimeType {
    /// What resolution needs to know about this type.
    pub fn facts(&self) -> Option<CrimeTypeFacts> {
        Some(CrimeTypeFacts {
            code: self.code.clone()?,
            names: self.spec.names.values().cloned().collect(),
            keywords: self.spec.keywords.clone(),
            active: self.active,
        })
    }
}

impl Aggregate for CrimeType {
    const TYPE: &'static str = "crime_type";
    type Command = CrimeTypeCommand;
    type Event = CrimeTypeEvent;
    type Error = CrimeTypeError;

    fn handle(&self, cmd: CrimeTypeCommand) -> Result<Vec<CrimeTypeEvent>, CrimeTypeError> {
        match cmd {
            CrimeTypeCommand::Create { code, spec, at } => {
                if code.is_other() {
                    return Err(CrimeTypeError::BuiltIn);
                }
                if self.exists {
                    return Err(CrimeTypeError::AlreadyExists);
                }
                let spec = check_spec(spec)?;
                Ok(vec![CrimeTypeCreated {
                    code,
                    names: spec.names,
                    default_priority: spec.default_priority,
                    keywords: spec.keywords,
                    service_code: spec.service_code,
                    group: spec.group,
                    at,
                }
                .into()])
            }
            CrimeTypeCommand::Update { changes, at } => {
                let code = self.existing()?;
                let before = &self.spec;
                let after = check_spec(CrimeTypeSpec {
                    names: changes.names.unwrap_or_else(|| before.names.clone()),
                    default_priority: changes.default_priority.unwrap_or(before.default_priority),
                    keywords: changes.keywords.unwrap_or_else(|| before.keywords.clone()),
                    service_code: changes
                        .service_code
                        .unwrap_or_else(|| before.service_code.clone()),
                    group: changes.group.unwrap_or_else(|| before.group.clone()),
                })?;
                let mut changed = Vec::new();
                if after.names != before.names {
                    changed.push(CrimeTypeField::Names);
                }
                if after.default_priority != before.default_priority {
                    changed.push(CrimeTypeField::DefaultPriority);
                }
                if after.keywords != before.keywords {
                    changed.push(CrimeTypeField::Keywords);
                }
                if after.service_code != before.service_code {
                    changed.push(CrimeTypeField::ServiceCode);
                }
                if after.group != before.group {
                    changed.push(CrimeTypeField::Group);
                }
                if changed.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![CrimeTypeUpdated {
                    code,
                    names: after.names,
                    default_priority: after.default_priority,
                    keywords: after.keywords,
                    service_code: after.service_code,
                    group: after.group,
                    changed,
                    at,
                }
                .into()])
            }
            CrimeTypeCommand::Retire { at } => {
                let code = self.existing()?;
                if !self.active {
                    return Ok(vec![]);
                }
                Ok(vec![CrimeTypeRetired { code, at }.into()])
            }
        }
    }

    fn apply(&mut self, event: &CrimeTypeEvent) {
        match event {
            CrimeTypeEvent::CrimeTypeCreated(e) => {
                *self = CrimeType {
                    exists: true,
                    code: Some(e.code.clone()),
                    spec: CrimeTypeSpec {
                        names: e.names.clone(),
                        default_priority: e.default_priority,
                        keywords: e.keywords.clone(),
                        service_code: e.service_code.clone(),
                        group: e.group.clone(),
                    },
                    active: true,
                    created_at: e.at,
                    updated_at: e.at,
                };
            }
            CrimeTypeEvent::CrimeTypeUpdated(e) => {
                self.spec = CrimeTypeSpec {
                    names: e.names.clone(),
                    default_priority: e.default_priority,
                    keywords: e.keywords.clone(),
                    service_code: e.service_code.clone(),
                    group: e.group.clone(),
                };
                self.updated_at = e.at;
            }
            CrimeTypeEvent::CrimeTypeRetired(e) => {
                self.active = false;
                self.updated_at = e.at;
            }
        }
    }

    fn version_exists(&self) -> bool {
        self.exists
    }
}

impl CrimeType {
    fn existing(&self) -> Result<CrimeTypeCode, CrimeTypeError> {
        match (&self.code, self.exists) {
            (Some(code), true) => Ok(code.clone()),
            _ => Err(CrimeTypeError::NotFound),
        }
    }
}

fn invalid(field: &'static str) -> impl Fn(ValueError) -> CrimeTypeError {
    move |e| CrimeTypeError::Invalid {
        field,
        reason: e.to_string(),
    }
}

/// A language tag: 2 or 3 lower-case letters, then optional `-` subtags of 2 to 8
/// ASCII letters or digits (`en`, `fil`, `pt-BR`), at most 35 characters.
fn language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    tag.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks and normalises a spec: names (1..=[`NAMES_MAX`], `en` required, tags well
/// formed, each 1..=200 characters, trimmed), keywords (at most [`KEYWORDS_MAX`],
/// trimmed, lower-cased, 1..=[`KEYWORD_MAX`] characters, duplicates dropped), the
/// Open311 service code (1..=[`SERVICE_CODE_MAX`] of `A-Z a-z 0-9 _ . -`) and group
/// (1..=[`GROUP_MAX`] characters).
pub fn check_spec(spec: CrimeTypeSpec) -> Result<CrimeTypeSpec, CrimeTypeError> {
    if spec.names.len() > NAMES_MAX {
        return Err(invalid("names")(ValueError::TooMany {
            max: NAMES_MAX,
            len: spec.names.len(),
        }));
    }
    let mut names = BTreeMap::new();
    for (tag, name) in &spec.names {
        if !language_tag(tag) {
            return Err(CrimeTypeError::Invalid {
                field: "names",
                reason: format!("{tag:?} is not a language tag such as \"en\" or \"pt-BR\""),
            });
        }
        let name = NonEmptyText::parse(name, limits::NAME_MAX).map_err(invalid("names"))?;
        names.insert(tag.clone(), name.into_string());
    }
    if !names.contains_key(DEFAULT_LANGUAGE) {
        return Err(CrimeTypeError::Invalid {
            field: "names",
            reason: format!("a name in {DEFAULT_LANGUAGE:?} is required"),
        });
    }
    let mut keywords: Vec<String> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for k in &spec.keywords {
        let k = NonEmptyText::parse(k, KEYWORD_MAX)
            .map_err(invalid("keywords"))?
            .as_str()
            .to_lowercase();
        if seen.insert(k.clone()) {
            keywords.push(k);
        }
    }
    // Counted once duplicates are dropped, as a division's keywords are.
    if keywords.len() > KEYWORDS_MAX {
        return Err(invalid("keywords")(ValueError::TooMany {
            max: KEYWORDS_MAX,
            len: keywords.len(),
        }));
    }
    let service_code = match spec.service_code {
        None => None,
        Some(s) => {
            let ok = !s.is_empty()
                && s.len() <= SERVICE_CODE_MAX
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(CrimeTypeError::Invalid {
                    field: "service_code",
                    reason: format!(
                        "must be 1 to {SERVICE_CODE_MAX} of A-Z, a-z, 0-9, '_', '.', '-'"
                    ),
                });
            }
            Some(s)
        }
    };
    let group = spec
        .group
        .map(|g| NonEmptyText::parse(&g, GROUP_MAX).map(NonEmptyText::into_string))
        .transpose()
        .map_err(invalid("group"))?;
    Ok(CrimeTypeSpec {
        names,
        default_priority: spec.default_priority,
        keywords,
        service_code,
        group,
    })
}

/// What resolution needs to know about one catalogue type.
#[derive(Clone, Debug, PartialEq)]
pub struct CrimeTypeFacts {
    pub code: CrimeTypeCode,
    /// Its names in every language.
    pub names: Vec<String>,
    /// Lower-case.
    pub keywords: Vec<String>,
    pub active: bool,
}

/// The codes the free-text crime types `texts` resolve to, one per text in the order of
/// the texts, duplicates dropped. Retired types are skipped. For each text (trimmed,
/// compared ignoring case), the first rule that matches wins:
/// 1. **code**: the text is an active type's code (`"theft"` → `THEFT`);
/// 2. **name**: the text equals one of an active type's names, in any language
///    (several: the lowest code);
/// 3. **keyword**: one of an active type's keywords occurs in the text (the substring
///    match division routing uses); several: the longest keyword, then the lowest code;
/// 4. otherwise [`OTHER`].
pub fn resolve(catalogue: &[CrimeTypeFacts], texts: &[String]) -> Vec<CrimeTypeCode> {
    let active: Vec<&CrimeTypeFacts> = catalogue.iter().filter(|t| t.active).collect();
    let mut out: Vec<CrimeTypeCode> = Vec::with_capacity(texts.len());
    for text in texts {
        let code = resolve_one(&active, text);
        if !out.contains(&code) {
            out.push(code);
        }
    }
    out
}

fn resolve_one(active: &[&CrimeTypeFacts], text: &str) -> CrimeTypeCode {
    let text = text.trim().to_lowercase();
    if let Some(t) = active
        .iter()
        .filter(|t| t.code.as_str().to_lowercase() == text)
        .min_by(|a, b| a.code.cmp(&b.code))
    {
        return t.code.clone();
    }
    if let Some(t) = active
        .iter()
        .filter(|t| t.names.iter().any(|n| n.trim().to_lowercase() == text))
        .min_by(|a, b| a.code.cmp(&b.code))
    {
        return t.code.clone();
    }
    active
        .iter()
        .flat_map(|t| {
            t.keywords.iter().filter_map(|k| {
                let k = k.trim().to_lowercase();
                (!k.is_empty() && text.contains(&k)).then_some((k.chars().count(), &t.code))
            })
        })
        .min_by(|(len_a, code_a), (len_b, code_b)| len_b.cmp(len_a).then(code_a.cmp(code_b)))
        .map(|(_, code)| code.clone())
        .unwrap_or_else(CrimeTypeCode::other)
}
