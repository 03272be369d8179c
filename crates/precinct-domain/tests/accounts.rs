//! Account, e-mail reservation and invite aggregates.

mod common;

use common::{given, given_nothing, t, uuid};
use precinct_domain::account::*;
use precinct_domain::email::*;
use precinct_domain::ids::*;
use precinct_domain::invite::*;
use precinct_domain::values::*;
use precinct_domain::{Aggregate, DomainError, DomainEvent, ErrorKind};

fn account_id() -> AccountId {
    AccountId::new(uuid(30))
}
fn station() -> StationId {
    StationId::new(uuid(10))
}
fn email() -> Email {
    Email::parse("Maria.Santos@Example.org").expect("valid email")
}
fn password_hash() -> PasswordHash {
    PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").expect("valid")
}

// ----- account ----------------------------------------------------------------------

fn register(role: Role, station_id: Option<StationId>) -> AccountCommand {
    AccountCommand::Register {
        account_id: account_id(),
        email: email(),
        name: " Maria Santos ".into(),
        role,
        station_id,
        password_hash: password_hash(),
        at: t(0),
        invite_id: None,
    }
}

fn registered(role: Role, station_id: Option<StationId>) -> AccountEvent {
    AccountRegistered {
        account_id: account_id(),
        email: Some(email()),
        name: Some("Maria Santos".into()),
        role,
        station_id,
        password_hash: password_hash(),
        at: t(0),
        invite_id: None,
    }
    .into()
}

#[test]
fn register_creates_an_active_account() {
    let account = given_nothing::<Account>()
        .when(register(Role::Citizen, None))
        .then_events(vec![registered(Role::Citizen, None)]);
    assert!(account.version_exists() && account.active);
    assert_eq!(
        account.email.as_ref().map(Email::as_str),
        Some("maria.santos@example.org")
    );
    assert_eq!(account.name, "Maria Santos");

    for role in [Role::Patrol, Role::Dispatcher, Role::Supervisor] {
        given_nothing::<Account>()
            .when(register(role, Some(station())))
            .then_events(vec![registered(role, Some(station()))]);
    }
    given_nothing::<Account>()
        .when(register(Role::Admin, None))
        .then_events(vec![registered(Role::Admin, None)]);
}

#[test]
fn register_enforces_the_role_station_rule() {
    for role in [Role::Patrol, Role::Dispatcher, Role::Supervisor] {
        given_nothing::<Account>()
            .when(register(role, None))
            .then_err(AccountError::StationRequired { role });
    }
    for role in [Role::Citizen, Role::Admin] {
        given_nothing::<Account>()
            .when(register(role, Some(station())))
            .then_err(AccountError::StationNotAllowed { role });
    }
}

#[test]
fn register_refuses_bad_names() {
    let with_name = |name: String| AccountCommand::Register {
        account_id: account_id(),
        email: email(),
        name,
        role: Role::Citizen,
        station_id: None,
        password_hash: password_hash(),
        at: t(0),
        invite_id: None,
    };
    given_nothing::<Account>()
        .when(with_name(" ".into()))
        .then_err(AccountError::Invalid {
            field: "name",
            reason: ValueError::Blank.to_string(),
        });
    given_nothing::<Account>()
        .when(with_name("n".repeat(201)))
        .then_err(AccountError::Invalid {
            field: "name",
            reason: ValueError::TooLong { max: 200, len: 201 }.to_string(),
        });
}

#[test]
fn register_twice_is_refused() {
    given::<Account>([registered(Role::Citizen, None)])
        .when(register(Role::Citizen, None))
        .then_err(AccountError::AlreadyExists);
}

#[test]
fn commands_on_a_missing_account_are_not_found() {
    for cmd in [
        AccountCommand::ChangeRole {
            role: Role::Admin,
            station_id: None,
            at: t(1),
        },
        AccountCommand::Deactivate { at: t(1) },
        AccountCommand::Reactivate { at: t(1) },
    ] {
        given_nothing::<Account>()
            .when(cmd)
            .then_err(AccountError::NotFound);
    }
}

#[test]
fn change_role_sets_role_and_station() {
    let account = given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::ChangeRole {
            role: Role::Patrol,
            station_id: Some(station()),
            at: t(1),
        })
        .then_events(vec![AccountRoleChanged {
            role: Role::Patrol,
            station_id: Some(station()),
            at: t(1),
        }
        .into()]);
    assert_eq!(
        (account.role, account.station_id),
        (Role::Patrol, Some(station()))
    );
}

#[test]
fn change_role_to_the_same_role_and_station_is_a_no_op() {
    given::<Account>([registered(Role::Patrol, Some(station()))])
        .when(AccountCommand::ChangeRole {
            role: Role::Patrol,
            station_id: Some(station()),
            at: t(1),
        })
        .then_no_events();
}

#[test]
fn change_role_enforces_the_role_station_rule() {
    given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::ChangeRole {
            role: Role::Supervisor,
            station_id: None,
            at: t(1),
        })
        .then_err(AccountError::StationRequired {
            role: Role::Supervisor,
        });
    given::<Account>([registered(Role::Patrol, Some(station()))])
        .when(AccountCommand::ChangeRole {
            role: Role::Admin,
            station_id: Some(station()),
            at: t(1),
        })
        .then_err(AccountError::StationNotAllowed { role: Role::Admin });
}

#[test]
fn deactivate_and_reactivate() {
    let account = given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::Deactivate { at: t(1) })
        .then_events(vec![AccountDeactivated { at: t(1) }.into()]);
    assert!(!account.active);
    let history = vec![
        registered(Role::Citizen, None),
        AccountDeactivated { at: t(1) }.into(),
    ];
    given::<Account>(history.clone())
        .when(AccountCommand::Deactivate { at: t(2) })
        .then_no_events();
    let account = given::<Account>(history)
        .when(AccountCommand::Reactivate { at: t(2) })
        .then_events(vec![AccountReactivated { at: t(2) }.into()]);
    assert!(account.active);
    given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::Reactivate { at: t(2) })
        .then_no_events();
}

#[test]
fn rename_records_the_trimmed_name_and_refuses_a_blank_one() {
    let account = given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::Rename {
            name: "  Maria S. Santos ".into(),
            at: t(1),
        })
        .then_events(vec![AccountRenamed {
            name: Some("Maria S. Santos".into()),
            at: t(1),
        }
        .into()]);
    assert_eq!(account.name, "Maria S. Santos");
    given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::Rename {
            name: "Maria Santos".into(),
            at: t(1),
        })
        .then_no_events();
    given::<Account>([registered(Role::Citizen, None)])
        .when(AccountCommand::Rename {
            name: "   ".into(),
            at: t(1),
        })
        .then_err(AccountError::Invalid {
            field: "name",
            reason: "must not be blank".into(),
        });
    given_nothing::<Account>()
        .when(AccountCommand::Rename {
            name: "Ana".into(),
            at: t(1),
        })
        .then_err(AccountError::NotFound);
}

#[test]
fn a_password_change_is_always_recorded_and_replaces_the_hash() {
    let new_hash = PasswordHash::parse("$argon2id$new").expect("valid");
    let by = AccountId::new(uuid(31));
    let change = AccountCommand::ChangePassword {
        password_hash: new_hash.clone(),
        changed_by: by,
        at: t(1),
    };
    let account = given::<Account>([registered(Role::Citizen, None)])
        .when(change.clone())
        .then_events(vec![AccountPasswordChanged {
            password_hash: new_hash.clone(),
            changed_by: by,
            at: t(1),
        }
        .into()]);
    assert_eq!(account.password_hash, Some(new_hash.clone()));
    // The same hash again is still a change: it revokes the tokens issued before it.
    given::<Account>([
        registered(Role::Citizen, None),
        AccountPasswordChanged {
            password_hash: new_hash.clone(),
            changed_by: by,
            at: t(1),
        }
        .into(),
    ])
    .when(change.clone())
    .then_events(vec![AccountPasswordChanged {
        password_hash: new_hash,
        changed_by: by,
        at: t(1),
    }
    .into()]);
    given_nothing::<Account>()
        .when(change)
        .then_err(AccountError::NotFound);
}

#[test]
fn account_errors_sort_into_kinds() {
    assert_eq!(AccountError::NotFound.kind(), ErrorKind::NotFound);
    assert_eq!(AccountError::AlreadyExists.kind(), ErrorKind::Conflict);
    let e = AccountError::StationRequired { role: Role::Patrol };
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::Invalid, Some("station_id"))
    );
    assert_eq!(e.to_string(), "role PATROL requires a station");
    assert_eq!(Account::TYPE, "account");
}

#[test]
fn password_hashes_do_not_print() {
    let account = given::<Account>([registered(Role::Citizen, None)])
        .state()
        .clone();
    let debug = format!("{account:?}");
    assert!(!debug.contains("argon2"), "{debug}");
}

// ----- e-mail reservation ----------------------------------------------------------

#[test]
fn reserve_claims_a_free_address() {
    let reservation = given_nothing::<EmailReservation>()
        .when(EmailCommand::Reserve {
            account_id: account_id(),
            at: t(0),
        })
        .then_events(vec![EmailReserved {
            account_id: account_id(),
            at: t(0),
        }
        .into()]);
    assert!(reservation.version_exists());
    assert_eq!(reservation.account_id, Some(account_id()));
}

#[test]
fn reserve_of_a_taken_address_is_refused() {
    let taken = EmailReserved {
        account_id: account_id(),
        at: t(0),
    };
    for claimant in [account_id(), AccountId::new(uuid(99))] {
        given::<EmailReservation>([taken.clone().into()])
            .when(EmailCommand::Reserve {
                account_id: claimant,
                at: t(1),
            })
            .then_err(EmailError::EmailTaken);
    }
    assert_eq!(EmailError::EmailTaken.kind(), ErrorKind::Conflict);
    // A conflict names no field (`DomainError::field`'s default: the API's problem
    // carries no `field` for it).
    assert_eq!(EmailError::EmailTaken.field(), None);
    assert_eq!(EmailReservation::TYPE, "email");
}

#[test]
fn an_address_held_by_an_erased_account_is_reclaimed_and_any_other_holder_keeps_it() {
    let erased = account_id();
    let claimant = AccountId::new(uuid(99));
    let held = EmailReserved {
        account_id: erased,
        at: t(0),
    };
    let reservation = given::<EmailReservation>([held.clone().into()])
        .when(EmailCommand::Reclaim {
            account_id: claimant,
            erased_holder: erased,
            at: t(1),
        })
        .then_events(vec![
            EmailReleased {
                account_id: erased,
                at: t(1),
            }
            .into(),
            EmailReserved {
                account_id: claimant,
                at: t(1),
            }
            .into(),
        ]);
    assert_eq!(reservation.account_id, Some(claimant));
    // Someone else holds it (the erased account's claim is stale): refused.
    given::<EmailReservation>([held.into()])
        .when(EmailCommand::Reclaim {
            account_id: claimant,
            erased_holder: AccountId::new(uuid(77)),
            at: t(1),
        })
        .then_err(EmailError::EmailTaken);
    // Nobody holds it: a plain reservation.
    given_nothing::<EmailReservation>()
        .when(EmailCommand::Reclaim {
            account_id: claimant,
            erased_holder: erased,
            at: t(1),
        })
        .then_events(vec![EmailReserved {
            account_id: claimant,
            at: t(1),
        }
        .into()]);
}

#[test]
fn email_stream_ids_are_stable_and_case_insensitive() {
    let a = email_stream_id(&Email::parse("maria.santos@example.org").expect("valid"));
    let b = email_stream_id(&Email::parse("  MARIA.Santos@EXAMPLE.org ").expect("valid"));
    let c = email_stream_id(&Email::parse("other@example.org").expect("valid"));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.get_version_num(), 5);
    assert_eq!(
        a,
        uuid::Uuid::new_v5(&EMAIL_NAMESPACE, b"maria.santos@example.org")
    );
}

#[test]
fn keyed_email_stream_ids_come_from_the_digest_alone() {
    let digest = [7u8; 32];
    let a = keyed_email_stream_id(&digest);
    assert_eq!(a, keyed_email_stream_id(&digest));
    assert_eq!(a.get_version_num(), 8);
    let mut other = digest;
    other[15] ^= 1;
    assert_ne!(a, keyed_email_stream_id(&other));
    // Only the first 128 bits (less the version and variant bits) count.
    let mut tail = digest;
    tail[31] ^= 1;
    assert_eq!(a, keyed_email_stream_id(&tail));
}

#[test]
fn an_account_is_its_own_data_subject_and_reads_erased_fields_as_gone() {
    assert_eq!(given_nothing::<Account>().state().data_subject(), None);
    let g = given::<Account>([registered(Role::Citizen, None)]);
    assert_eq!(g.state().data_subject(), Some(account_id().as_uuid()));
    assert_eq!(
        precinct_domain::subject::personal_fields("AccountRegistered"),
        ["email", "name"]
    );
    // As the log reads it once the key is destroyed: the opened fields are null.
    let erased = AccountEvent::from_parts(
        "AccountRegistered",
        serde_json::json!({
            "account_id": account_id(), "email": null, "name": null, "role": "CITIZEN",
            "station_id": null, "password_hash": password_hash().as_str(),
            "at": t(0),
        }),
    )
    .expect("an erased registration decodes");
    let account = given::<Account>([erased]).state().clone();
    assert!(account.version_exists() && account.active);
    assert_eq!((account.email, account.name.as_str()), (None, ""));
}

// ----- invite -----------------------------------------------------------------------

const CODE_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn invite_id() -> InviteId {
    InviteId::new(uuid(60))
}
fn admin() -> AccountId {
    AccountId::new(uuid(1))
}

fn create(role: Role, station_id: Option<StationId>) -> InviteCommand {
    InviteCommand::Create {
        invite_id: invite_id(),
        code_hash: TokenHash::parse(CODE_HASH).expect("valid"),
        email: email(),
        role,
        station_id,
        expires_at: t(60),
        created_by: admin(),
        at: t(0),
    }
}

fn created() -> InviteEvent {
    InviteCreated {
        invite_id: invite_id(),
        code_hash: TokenHash::parse(CODE_HASH).expect("valid"),
        email: Some(email()),
        role: Role::Patrol,
        station_id: Some(station()),
        expires_at: t(60),
        created_by: admin(),
        at: t(0),
    }
    .into()
}

#[test]
fn create_records_a_staff_invitation() {
    let invite = given_nothing::<Invite>()
        .when(create(Role::Patrol, Some(station())))
        .then_events(vec![created()]);
    assert!(invite.version_exists());
    assert!(invite.is_redeemable(t(59)));
    assert!(!invite.is_redeemable(t(60)));
    given_nothing::<Invite>()
        .when(create(Role::Admin, None))
        .events();
}

#[test]
fn create_refuses_citizens_and_the_wrong_station() {
    given_nothing::<Invite>()
        .when(create(Role::Citizen, None))
        .then_err(InviteError::RoleNotInvitable {
            role: Role::Citizen,
        });
    given_nothing::<Invite>()
        .when(create(Role::Dispatcher, None))
        .then_err(InviteError::StationRequired {
            role: Role::Dispatcher,
        });
    given_nothing::<Invite>()
        .when(create(Role::Admin, Some(station())))
        .then_err(InviteError::StationNotAllowed { role: Role::Admin });
}

#[test]
fn create_refuses_an_expiry_that_is_not_in_the_future() {
    given_nothing::<Invite>()
        .when(InviteCommand::Create {
            invite_id: invite_id(),
            code_hash: TokenHash::parse(CODE_HASH).expect("valid"),
            email: email(),
            role: Role::Patrol,
            station_id: Some(station()),
            expires_at: t(0),
            created_by: admin(),
            at: t(0),
        })
        .then_err(InviteError::Invalid {
            field: "expires_at",
            reason: "must be later than the invite's creation".into(),
        });
}

#[test]
fn create_twice_is_refused() {
    given::<Invite>([created()])
        .when(create(Role::Patrol, Some(station())))
        .then_err(InviteError::AlreadyExists);
}

#[test]
fn accept_redeems_the_invite_once() {
    let newcomer = AccountId::new(uuid(33));
    let invite = given::<Invite>([created()])
        .when(InviteCommand::Accept {
            account_id: newcomer,
            at: t(59),
        })
        .then_events(vec![InviteAccepted {
            account_id: newcomer,
            at: t(59),
        }
        .into()]);
    assert_eq!(invite.accepted_by, Some(newcomer));
    given::<Invite>([
        created(),
        InviteAccepted {
            account_id: newcomer,
            at: t(59),
        }
        .into(),
    ])
    .when(InviteCommand::Accept {
        account_id: AccountId::new(uuid(34)),
        at: t(59),
    })
    .then_err(InviteError::AlreadyUsed);
}

#[test]
fn accept_at_or_after_expiry_is_refused() {
    for minute in [60, 61] {
        given::<Invite>([created()])
            .when(InviteCommand::Accept {
                account_id: AccountId::new(uuid(33)),
                at: t(minute),
            })
            .then_err(InviteError::Expired);
    }
}

#[test]
fn accept_of_a_missing_invite_is_not_found() {
    given_nothing::<Invite>()
        .when(InviteCommand::Accept {
            account_id: AccountId::new(uuid(33)),
            at: t(1),
        })
        .then_err(InviteError::NotFound);
}

#[test]
fn invite_ids_derive_from_code_hashes() {
    let hash = TokenHash::parse(CODE_HASH).expect("valid");
    assert_eq!(
        invite_id_for_code_hash(&hash),
        invite_id_for_code_hash(&hash)
    );
    assert_ne!(
        invite_id_for_code_hash(&hash),
        invite_id_for_code_hash(&TokenHash::parse(&"0".repeat(64)).expect("valid"))
    );
    assert_eq!(InviteError::Expired.kind(), ErrorKind::Conflict);
    assert_eq!(
        InviteError::RoleNotInvitable {
            role: Role::Citizen
        }
        .field(),
        Some("role")
    );
    assert_eq!(Invite::TYPE, "invite");
}

// ----- mutation-testing survivors (docs/reliability.md) ------------------------------

#[test]
fn moving_to_another_station_in_the_same_role_is_a_change() {
    let other = StationId::new(uuid(11));
    given::<Account>([registered(Role::Patrol, Some(station()))])
        .when(AccountCommand::ChangeRole {
            role: Role::Patrol,
            station_id: Some(other),
            at: t(1),
        })
        .then_events(vec![AccountRoleChanged {
            role: Role::Patrol,
            station_id: Some(other),
            at: t(1),
        }
        .into()]);
    // And another role at the same station.
    given::<Account>([registered(Role::Patrol, Some(station()))])
        .when(AccountCommand::ChangeRole {
            role: Role::Dispatcher,
            station_id: Some(station()),
            at: t(1),
        })
        .then_events(vec![AccountRoleChanged {
            role: Role::Dispatcher,
            station_id: Some(station()),
            at: t(1),
        }
        .into()]);
}

#[test]
fn account_and_invite_refusals_name_their_field() {
    let invalid = AccountError::Invalid {
        field: "name",
        reason: "must not be blank".into(),
    };
    assert_eq!(invalid.field(), Some("name"));
    assert_eq!(AccountError::NotFound.field(), None);
    assert_eq!(
        AccountError::StationNotAllowed { role: Role::Admin }.field(),
        Some("station_id")
    );
    let invalid = InviteError::Invalid {
        field: "expires_at",
        reason: "must be later".into(),
    };
    assert_eq!(invalid.field(), Some("expires_at"));
    assert_eq!(
        InviteError::RoleNotInvitable {
            role: Role::Citizen
        }
        .field(),
        Some("role")
    );
    for e in [
        InviteError::StationRequired {
            role: Role::Dispatcher,
        },
        InviteError::StationNotAllowed { role: Role::Admin },
    ] {
        assert_eq!(e.field(), Some("station_id"), "{e}");
    }
    assert_eq!(InviteError::Expired.field(), None);
}

#[test]
fn an_account_or_a_reservation_exists_only_once_recorded() {
    assert!(!Account::default().version_exists());
    assert!(given::<Account>([registered(Role::Citizen, None)])
        .state()
        .version_exists());
    assert!(!EmailReservation::default().version_exists());
    assert!(given::<EmailReservation>([EmailReserved {
        account_id: account_id(),
        at: t(0),
    }
    .into()])
    .state()
    .version_exists());
}

#[test]
fn an_invite_exists_once_created_and_seals_under_its_own_key() {
    let none = Invite::default();
    assert!(!none.version_exists());
    assert_eq!(none.data_subject(), None);
    let invite = given::<Invite>([created()]).state().clone();
    assert!(invite.version_exists());
    assert_eq!(invite.data_subject(), Some(invite_id().as_uuid()));
    assert_ne!(invite_id().as_uuid(), uuid::Uuid::nil());
}
