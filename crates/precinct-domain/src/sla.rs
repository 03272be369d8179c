//! Service levels (ADR 0035): a station's SLA policy — accept, respond and resolve
//! deadlines per priority, the warning level before a breach, and what escalation does
//! — and the server's defaults that fill in whatever a policy leaves out.
//!
//! The policy is data on the station (`StationSlaPolicySet`); the SLA worker reads it
//! at every scan, so a change applies to the clocks already running (a report triaged to
//! `CRITICAL` gets the tighter deadline at once). Deadlines are whole seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{EscalationAction, Priority, SlaKind};

/// Longest deadline a policy may set (30 days).
pub const MAX_DEADLINE_SECS: u32 = 30 * 24 * 3600;
/// Longest further delay before an unaccepted assignment is escalated (1 day).
pub const MAX_ESCALATION_DELAY_SECS: u32 = 24 * 3600;
/// Highest warning level, in percent of the deadline.
pub const MAX_WARN_PERCENT: u8 = 99;

/// The deadlines of one priority; `None`: the server's default for that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_secs: Option<u32>,
}

impl Deadlines {
    pub fn get(&self, kind: SlaKind) -> Option<u32> {
        match kind {
            SlaKind::Accept => self.accept_secs,
            SlaKind::Respond => self.respond_secs,
            SlaKind::Resolve => self.resolve_secs,
        }
    }
}

/// What happens to an assignment still `ASSIGNED` `after_secs` after its accept
/// deadline was breached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unaccepted {
    pub action: EscalationAction,
    pub after_secs: u32,
}

/// A station's SLA policy, as an ADMIN or the station's SUPERVISOR set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    /// Deadlines per priority; a priority (or a kind) left out uses the server's default.
    #[serde(default)]
    pub deadlines: BTreeMap<Priority, Deadlines>,
    /// The warning level in percent of each deadline (1..=99); 0: no warnings; `None`:
    /// the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_at_percent: Option<u8>,
    /// Warnings, breaches and escalations are pushed to the station's supervisors.
    #[serde(default = "yes")]
    pub notify_supervisors: bool,
    /// What to do with an assignment still unaccepted after its breach; `None`: nothing
    /// (the desk decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unaccepted: Option<Unaccepted>,
}

fn yes() -> bool {
    true
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy {
            deadlines: BTreeMap::new(),
            warn_at_percent: None,
            notify_supervisors: true,
            unaccepted: None,
        }
    }
}

/// A refused policy: which field and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PolicyError {
    pub field: String,
    pub reason: String,
}

impl SlaPolicy {
    /// Whether every value is in range.
    pub fn check(&self) -> Result<(), PolicyError> {
        for (priority, d) in &self.deadlines {
            for kind in SlaKind::ALL {
                if let Some(secs) = d.get(*kind) {
                    if secs == 0 || secs > MAX_DEADLINE_SECS {
                        return Err(PolicyError {
                            field: format!(
                                "deadlines.{priority}.{}_secs",
                                kind.as_str().to_ascii_lowercase()
                            ),
                            reason: format!("must be 1..={MAX_DEADLINE_SECS} seconds"),
                        });
                    }
                }
            }
        }
        if self.warn_at_percent.is_some_and(|p| p > MAX_WARN_PERCENT) {
            return Err(PolicyError {
                field: "warn_at_percent".into(),
                reason: format!("must be 0..={MAX_WARN_PERCENT} (0: no warnings)"),
            });
        }
        if let Some(u) = &self.unaccepted {
            if u.after_secs > MAX_ESCALATION_DELAY_SECS {
                return Err(PolicyError {
                    field: "unaccepted.after_secs".into(),
                    reason: format!("must be 0..={MAX_ESCALATION_DELAY_SECS} seconds"),
                });
            }
        }
        Ok(())
    }

    /// The policy in force: this one, with the server's defaults where it is silent.
    pub fn effective(&self, defaults: &SlaDefaults) -> EffectivePolicy {
        let deadlines = Priority::ALL
            .iter()
            .map(|p| {
                let own = self.deadlines.get(p).copied().unwrap_or_default();
                let d = Deadlines {
                    accept_secs: own.accept_secs.or(Some(defaults.accept_secs)),
                    respond_secs: own.respond_secs.or(Some(defaults.respond_secs)),
                    resolve_secs: own.resolve_secs.or(defaults.resolve_secs),
                };
                (*p, d)
            })
            .collect();
        EffectivePolicy {
            deadlines,
            warn_at_percent: self.warn_at_percent.unwrap_or(defaults.warn_at_percent),
            notify_supervisors: self.notify_supervisors,
            unaccepted: self.unaccepted,
        }
    }
}

/// The server's defaults (`PRECINCT_SLA_*`): every priority of a station without its
/// own deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaDefaults {
    pub accept_secs: u32,
    pub respond_secs: u32,
    /// `None`: no resolve deadline.
    pub resolve_secs: Option<u32>,
    pub warn_at_percent: u8,
}

impl SlaDefaults {
    pub fn new(
        accept: Duration,
        respond: Duration,
        resolve: Option<Duration>,
        warn_at_percent: u8,
    ) -> Self {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        SlaDefaults {
            accept_secs: secs(accept),
            respond_secs: secs(respond),
            resolve_secs: resolve.map(secs),
            warn_at_percent: warn_at_percent.min(MAX_WARN_PERCENT),
        }
    }
}

/// A policy with every deadline decided (what `GET /stations/{id}/sla-policy` shows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EffectivePolicy {
    pub deadlines: BTreeMap<Priority, Deadlines>,
    pub warn_at_percent: u8,
    pub notify_supervisors: bool,
    pub unaccepted: Option<Unaccepted>,
}

impl EffectivePolicy {
    /// The deadline of `kind` for a report of `priority`, if there is one.
    pub fn deadline(&self, priority: Priority, kind: SlaKind) -> Option<Duration> {
        self.deadlines
            .get(&priority)
            .and_then(|d| d.get(kind))
            .map(|s| Duration::from_secs(u64::from(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> SlaDefaults {
        SlaDefaults::new(
            Duration::from_secs(900),
            Duration::from_secs(1800),
            None,
            80,
        )
    }

    #[test]
    fn a_policy_overrides_only_what_it_names() {
        let policy: SlaPolicy = serde_json::from_value(serde_json::json!({
            "deadlines": { "CRITICAL": { "accept_secs": 60, "resolve_secs": 3600 } },
            "warn_at_percent": 50
        }))
        .expect("parses");
        policy.check().expect("valid");
        let e = policy.effective(&defaults());
        assert_eq!(
            e.deadline(Priority::Critical, SlaKind::Accept),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            e.deadline(Priority::Critical, SlaKind::Respond),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            e.deadline(Priority::Critical, SlaKind::Resolve),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            e.deadline(Priority::Low, SlaKind::Accept),
            Some(Duration::from_secs(900))
        );
        assert_eq!(e.deadline(Priority::Low, SlaKind::Resolve), None);
        assert_eq!(e.warn_at_percent, 50);
        assert!(e.notify_supervisors);
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let zero: SlaPolicy = serde_json::from_value(serde_json::json!({
            "deadlines": { "HIGH": { "respond_secs": 0 } }
        }))
        .expect("parses");
        assert_eq!(
            zero.check().expect_err("refused").field,
            "deadlines.HIGH.respond_secs"
        );
        let warn = SlaPolicy {
            warn_at_percent: Some(100),
            ..SlaPolicy::default()
        };
        assert_eq!(warn.check().expect_err("refused").field, "warn_at_percent");
        let late = SlaPolicy {
            unaccepted: Some(Unaccepted {
                action: EscalationAction::Requeue,
                after_secs: MAX_ESCALATION_DELAY_SECS + 1,
            }),
            ..SlaPolicy::default()
        };
        assert_eq!(
            late.check().expect_err("refused").field,
            "unaccepted.after_secs"
        );
    }

    #[test]
    fn each_range_holds_its_edges_and_refuses_one_past_them() {
        assert_eq!(MAX_DEADLINE_SECS, 2_592_000, "30 days");
        assert_eq!(MAX_ESCALATION_DELAY_SECS, 86_400, "one day");
        let deadline = |secs: u32| SlaPolicy {
            deadlines: BTreeMap::from([(
                Priority::Low,
                Deadlines {
                    resolve_secs: Some(secs),
                    ..Deadlines::default()
                },
            )]),
            ..SlaPolicy::default()
        };
        assert!(deadline(1).check().is_ok());
        assert!(deadline(MAX_DEADLINE_SECS).check().is_ok());
        assert!(deadline(MAX_DEADLINE_SECS + 1).check().is_err());
        let warn = |p: u8| SlaPolicy {
            warn_at_percent: Some(p),
            ..SlaPolicy::default()
        };
        assert!(warn(0).check().is_ok());
        assert!(warn(MAX_WARN_PERCENT).check().is_ok());
        assert!(warn(MAX_WARN_PERCENT + 1).check().is_err());
        let after = |secs: u32| SlaPolicy {
            unaccepted: Some(Unaccepted {
                action: EscalationAction::Reassign,
                after_secs: secs,
            }),
            ..SlaPolicy::default()
        };
        assert!(after(0).check().is_ok());
        assert!(after(MAX_ESCALATION_DELAY_SECS).check().is_ok());
        assert!(after(MAX_ESCALATION_DELAY_SECS + 1).check().is_err());
    }

    #[test]
    fn an_unknown_priority_or_field_is_refused_by_the_parser() {
        assert!(serde_json::from_value::<SlaPolicy>(serde_json::json!({
            "deadlines": { "URGENT": { "accept_secs": 60 } }
        }))
        .is_err());
        assert!(serde_json::from_value::<SlaPolicy>(serde_json::json!({
            "deadlines": { "HIGH": { "accept_sec": 60 } }
        }))
        .is_err());
    }
}
