//! The two traits every aggregate and event type implements, and [`fold`].
//!
//! An aggregate is a plain value: `handle` reads it and a command and answers with the
//! events to append (or a typed refusal); `apply` folds one event into it. Only
//! `handle` decides; `apply` never refuses and never checks anything, because the
//! events it receives are facts that already happened.

/// An event-sourced aggregate: its state is the fold of its events.
pub trait Aggregate: Default + Clone {
    /// The aggregate type as used in stream names: `"report"`, `"patrol"`, `"account"`,
    /// `"station"`, `"invite"` or `"email"`.
    const TYPE: &'static str;
    type Command;
    type Event: DomainEvent;
    type Error: DomainError;

    /// Decides what happens: the events to append, in order, or why nothing may. An
    /// empty `Vec` means "already so, nothing to record" (an idempotent no-op).
    fn handle(&self, cmd: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one recorded event into the state. Never fails.
    fn apply(&mut self, event: &Self::Event);

    /// `false` until the creating event has been applied (the stream does not exist).
    fn version_exists(&self) -> bool;

    /// Whose personal data this aggregate's events carry (their personal fields are
    /// sealed with that subject's key), if anyone's.
    fn data_subject(&self) -> Option<uuid::Uuid> {
        None
    }
}

/// How a refusal should be reported, whatever the aggregate: the API maps
/// `NotFound` to 404, `Conflict` to 409 and `Invalid` to 422.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The aggregate does not exist (any command but the creating one).
    NotFound,
    /// The current state does not allow the command (illegal transition, duplicate,
    /// already used, ...). Retrying the same command will not help.
    Conflict,
    /// The command's fields break a rule; the error names the field when it can.
    Invalid,
}

/// A typed refusal from `handle` (a plain value: the application layer keeps it whole
/// for its callers).
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;

    /// The offending request field for `Invalid` errors (e.g. `"title"`), if one.
    fn field(&self) -> Option<&'static str> {
        None
    }
}

/// A serialisable domain event with a stable type name and schema version.
///
/// On the wire an event is its type name plus a `data` JSON object; the payload of
/// `X` is described by `schemas/events/X.v1.json`. Renaming a type is a migration.
pub trait DomainEvent:
    serde::Serialize + serde::de::DeserializeOwned + Clone + std::fmt::Debug
{
    /// Stable PascalCase name, e.g. `"ReportSubmitted"`.
    fn event_type(&self) -> &'static str;

    fn schema_version(&self) -> u32 {
        1
    }

    /// The payload without the type tag (a JSON object).
    fn to_data(&self) -> serde_json::Value;

    /// Rebuilds an event from its type name and payload.
    fn from_parts(event_type: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::from_parts_ref(event_type, &data)
    }

    /// [`DomainEvent::from_parts`] from a borrowed payload, for readers that keep the
    /// payload (a projection decodes an event another one decodes too).
    fn from_parts_ref(
        event_type: &str,
        data: &serde_json::Value,
    ) -> Result<Self, serde_json::Error>;
}

/// Rebuilds an aggregate's state from its events, oldest first.
pub fn fold<'a, A: Aggregate + 'a>(events: impl IntoIterator<Item = &'a A::Event>) -> A {
    let mut state = A::default();
    for event in events {
        state.apply(event);
    }
    state
}

/// Declares an aggregate's event enum: adjacently tagged (`{"type": .., "data": ..}`),
/// one variant per payload struct of the same name, plus its `DomainEvent` impl, a
/// `TYPES` list and `From<Payload>` conversions.
macro_rules! event_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum $name {
            $($variant($variant)),+
        }

        impl $name {
            /// Every event type name of this aggregate.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];
        }

        impl $crate::aggregate::DomainEvent for $name {
            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($variant)),+
                }
            }

            fn to_data(&self) -> serde_json::Value {
                let data = match self {
                    $(Self::$variant(payload) => serde_json::to_value(payload)),+
                };
                // Payloads are plain structs with string keys: serialising cannot fail.
                data.expect("event payloads always serialise to JSON")
            }

            // The payload type is chosen by the name, and the payload decoded straight
            // from the JSON value: no `{"type", "data"}` object is built around it
            // (serde would buffer an adjacently tagged payload whose tag comes after
            // it, as it does in a sorted map, and decode it from that copy).
            fn from_parts_ref(
                event_type: &str,
                data: &serde_json::Value,
            ) -> Result<Self, serde_json::Error> {
                match event_type {
                    $(stringify!($variant) => {
                        <$variant as serde::Deserialize>::deserialize(data).map(Self::$variant)
                    })+
                    other => Err(<serde_json::Error as serde::de::Error>::unknown_variant(
                        other,
                        Self::TYPES,
                    )),
                }
            }
        }

        $(
            impl From<$variant> for $name {
                fn from(payload: $variant) -> Self {
                    Self::$variant(payload)
                }
            }
        )+
    };
}

pub(crate) use event_enum;
