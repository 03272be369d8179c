//! Ids derived from command ids: what a command creates (a report, an account, a
//! patrol, a station, a note, an update, a piece of evidence) gets an id that is a
//! function of the command id, so that a retry of the command (same id) targets the same
//! stream and gets the same answer (ADR 0002). The namespaces are fixed forever: ids
//! already in the log were derived with them.

use uuid::Uuid;

/// Namespace of ids derived from command ids.
const ID_NS: Uuid = Uuid::from_u128(0x0d7e_52a4_8c1f_4a8e_b9b1_3f0a_6e2c_9d15);

/// Namespace of the SLA worker's command ids.
const SLA_NS: Uuid = Uuid::from_u128(0x51a0_77e2_0b4c_4f1d_8e3a_c2d4_9f60_1b37);

/// Namespace of the ADMIN bootstrap's ids.
const BOOTSTRAP_NS: Uuid = Uuid::from_u128(0x3f2b_9e61_c4d8_47a5_a1e3_7b6c_0d9f_52e8);

/// The id of the `kind` of thing (`"report"`, `"account"`, `"patrol"`, `"station"`)
/// command `command_id` creates.
pub fn derived_id(command_id: Uuid, kind: &str) -> Uuid {
    Uuid::new_v5(&ID_NS, format!("{kind}|{command_id}").as_bytes())
}

/// The id of the `kind` of entry (`"note"`, `"update"`, `"evidence"`) a command adds to
/// `report`; `seq` is the command id (as a number) plus the change's index within the
/// command.
pub fn entry_id(report: Uuid, kind: &str, seq: u128) -> Uuid {
    let ns = Uuid::new_v5(&ID_NS, report.as_bytes());
    Uuid::new_v5(&ns, format!("{kind}|{seq}").as_bytes())
}

/// The command id of an SLA breach: one per (report, kind, start of the clock), so that
/// several workers (or a restarted one) record each breach once.
pub fn sla_breach_command(report: Uuid, kind: impl std::fmt::Display, since_micros: i64) -> Uuid {
    Uuid::new_v5(
        &SLA_NS,
        format!("{report}|{kind}|{since_micros}").as_bytes(),
    )
}

/// The command id of an SLA warning: one per (report, kind, start of the clock).
pub fn sla_warning_command(report: Uuid, kind: impl std::fmt::Display, since_micros: i64) -> Uuid {
    Uuid::new_v5(
        &SLA_NS,
        format!("warn|{report}|{kind}|{since_micros}").as_bytes(),
    )
}

/// The command id of an SLA escalation: one per (report, start of the accept clock).
pub fn sla_escalation_command(report: Uuid, since_micros: i64) -> Uuid {
    Uuid::new_v5(
        &SLA_NS,
        format!("escalate|{report}|{since_micros}").as_bytes(),
    )
}

/// The command id of the ADMIN bootstrap for the reservation stream `email_stream`, and
/// the id of the account it creates: a repeated or concurrent bootstrap is one command.
pub fn bootstrap_ids(email_stream: Uuid) -> (Uuid, Uuid) {
    let command_id = Uuid::new_v5(&BOOTSTRAP_NS, email_stream.as_bytes());
    (
        command_id,
        Uuid::new_v5(&BOOTSTRAP_NS, command_id.as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derivations are those of the ids already in the log: changing one would make
    /// a retry across the change a second command.
    #[test]
    fn derivations_are_stable() {
        let command = Uuid::from_u128(1);
        assert_eq!(
            derived_id(command, "report"),
            Uuid::new_v5(
                &Uuid::from_u128(0x0d7e_52a4_8c1f_4a8e_b9b1_3f0a_6e2c_9d15),
                format!("report|{command}").as_bytes()
            )
        );
        let report = Uuid::from_u128(2);
        let ns = Uuid::new_v5(
            &Uuid::from_u128(0x0d7e_52a4_8c1f_4a8e_b9b1_3f0a_6e2c_9d15),
            report.as_bytes(),
        );
        assert_eq!(entry_id(report, "note", 7), Uuid::new_v5(&ns, b"note|7"));
        assert_ne!(entry_id(report, "note", 7), entry_id(report, "note", 8));
    }
}
