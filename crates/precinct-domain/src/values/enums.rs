//! Closed vocabularies. Every enum here serialises as its `SCREAMING_SNAKE_CASE` name,
//! parses from it (ASCII case-insensitively) and displays as it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ValueError;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name (`SCREAMING_SNAKE_CASE`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| ValueError::UnknownVariant {
                        kind: stringify!($name),
                        value: s.to_owned(),
                        expected: Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

string_enum!(
    /// What an account may do. Roles are exclusive.
    #[derive(Default)]
    Role {
        #[default]
        Citizen => "CITIZEN",
        Patrol => "PATROL",
        Dispatcher => "DISPATCHER",
        Supervisor => "SUPERVISOR",
        Admin => "ADMIN",
    }
);

impl Role {
    /// Police staff (everyone but citizens).
    pub const fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Patrol | Role::Dispatcher | Role::Supervisor | Role::Admin
        )
    }

    /// Staff other than `ADMIN` belong to exactly one station; citizens and admins to none.
    pub const fn needs_station(self) -> bool {
        matches!(self, Role::Patrol | Role::Dispatcher | Role::Supervisor)
    }
}

string_enum!(
    /// How urgent a report is. Ordered: `Low < Medium < High < Critical`.
    #[derive(Default)]
    Priority {
        Low => "LOW",
        /// The default: every report starts here until a dispatcher triages it.
        #[default]
        Medium => "MEDIUM",
        High => "HIGH",
        Critical => "CRITICAL",
    }
);

impl Priority {
    /// 0 (`LOW`) to 3 (`CRITICAL`); higher is more urgent.
    pub const fn rank(self) -> u8 {
        match self {
            Priority::Low => 0,
            Priority::Medium => 1,
            Priority::High => 2,
            Priority::Critical => 3,
        }
    }
}

string_enum!(
    /// Where a report stands in its lifecycle (see the spec's "Report lifecycle").
    #[derive(Default)]
    ReportStatus {
        #[default]
        New => "NEW",
        Assigned => "ASSIGNED",
        Accepted => "ACCEPTED",
        Responding => "RESPONDING",
        Resolved => "RESOLVED",
        Closed => "CLOSED",
        Rejected => "REJECTED",
        Withdrawn => "WITHDRAWN",
    }
);

impl ReportStatus {
    /// Still being worked on: anything but `CLOSED`, `REJECTED` and `WITHDRAWN`.
    pub const fn is_open(self) -> bool {
        !matches!(
            self,
            ReportStatus::Closed | ReportStatus::Rejected | ReportStatus::Withdrawn
        )
    }

    /// A patrol is on it: `ASSIGNED`, `ACCEPTED` or `RESPONDING` (counts as workload).
    pub const fn is_active_assignment(self) -> bool {
        matches!(
            self,
            ReportStatus::Assigned | ReportStatus::Accepted | ReportStatus::Responding
        )
    }
}

string_enum!(
    /// A patrol's availability.
    #[derive(Default)]
    PatrolStatus {
        #[default]
        Available => "AVAILABLE",
        Busy => "BUSY",
        OffDuty => "OFF_DUTY",
    }
);

string_enum!(
    /// A precinct covers an area; a division receives reports by crime type.
    #[derive(Default)]
    StationKind {
        #[default]
        Precinct => "PRECINCT",
        Division => "DIVISION",
    }
);

string_enum!(
    /// What kind of file a piece of evidence is.
    MediaType {
        Photo => "PHOTO",
        Video => "VIDEO",
        Audio => "AUDIO",
        Document => "DOCUMENT",
    }
);

string_enum!(
    /// Which service-level deadline was missed.
    SlaKind {
        /// `ASSIGNED` for too long without being accepted.
        Accept => "ACCEPT",
        /// `ACCEPTED` for too long without responding.
        Respond => "RESPOND",
        /// Accepted (`ACCEPTED`, `RESPONDING`) for too long without being resolved.
        Resolve => "RESOLVE",
    }
);

string_enum!(
    /// What the SLA worker does with an assignment still not accepted some time after
    /// its accept deadline passed (a station's SLA policy, ADR 0035).
    EscalationAction {
        /// The assignment is withdrawn: the report goes back to the station's queue.
        Requeue => "REQUEUE",
        /// The assignment moves to the least busy other `AVAILABLE` patrol of the
        /// station (back to the queue when there is none).
        Reassign => "REASSIGN",
    }
);
