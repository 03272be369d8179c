//! User management without servers: who may change an account and how (name, role,
//! standing, password), the rules that span accounts (nobody deactivates themselves, the
//! last active ADMIN stays), and the fixes of the attack review: an invite is honoured
//! only while its author could still create it (N3), an erased account's address can be
//! registered again (N8), and a deactivated or erased officer leaves every crew (N9).

use crate::common::{events, Behind, Hasher, Keys, World};
use chrono::Utc;
use precinct_app::commands::user::{self, Placement, UserUpdate};
use precinct_app::commands::{account, invite, subject};
use precinct_app::{AppError, Denied, Principal, Refusal, Unavailable};
use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::ids::{AccountId, PatrolId};
use precinct_domain::patrol::Patrol;
use precinct_domain::subject::{DataSubject, SubjectCommand};
use precinct_domain::values::{Email, Role, TokenHash};
use precinct_eventlog::{Actor, CommandMeta};
use uuid::Uuid;

fn anonymous() -> CommandMeta {
    CommandMeta::new(Uuid::new_v4(), Actor::Anonymous)
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

#[tokio::test]
async fn nobody_deactivates_themselves_nor_the_last_active_admin_and_nothing_is_appended() {
    let w = World::new().await;
    let mark = w.mark();
    let err = user::deactivate(&w.app, &w.admin, &w.meta(&w.admin), w.admin.id, &w.facts())
        .await
        .expect_err("oneself");
    assert!(
        matches!(err, AppError::Refused(Refusal::DeactivateSelf)),
        "{err:?}"
    );
    // A second ADMIN tries to deactivate the first, who is then the only other one.
    let second = Principal {
        id: AccountId::new(Uuid::new_v4()),
        role: Role::Admin,
        station_id: None,
    };
    w.given_account(second).await;
    let mark = mark.max(w.mark());
    user::deactivate(&w.app, &second, &w.meta(&second), w.admin.id, &w.facts())
        .await
        .expect("two admins: one may go");
    let err = user::deactivate(&w.app, &w.admin, &w.meta(&w.admin), second.id, &w.facts())
        .await
        .expect_err("the first is inactive: the second is the last");
    assert!(
        matches!(err, AppError::Refused(Refusal::LastAdmin)),
        "{err:?}"
    );
    // Nor demoted.
    let err = account::change_role(
        &w.app,
        &second,
        &w.meta(&second),
        second.id,
        Role::Citizen,
        None,
        &w.facts(),
    )
    .await
    .expect_err("the last admin keeps the role");
    assert!(
        matches!(err, AppError::Refused(Refusal::LastAdmin)),
        "{err:?}"
    );
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountDeactivated"),
            ("admin_guard", "AdminLeft")
        ]),
        "only the allowed deactivation was appended, with the ADMIN guard's record"
    );
    // A view that did not catch up decides nothing.
    w.given::<Account>(
        w.admin.id.as_uuid(),
        AccountCommand::Reactivate { at: Utc::now() },
    )
    .await;
    let err = user::deactivate(
        &w.app,
        &second,
        &w.meta(&second),
        w.admin.id,
        &w.facts().behind(Behind::Accounts),
    )
    .await
    .expect_err("behind");
    assert!(
        matches!(err, AppError::Unavailable(Unavailable::Accounts)),
        "{err:?}"
    );
}

#[tokio::test]
async fn deactivation_is_the_admins_and_takes_the_officer_out_of_every_crew() {
    let w = World::new().await;
    let second = PatrolId::new(Uuid::new_v4());
    w.given_patrol(second, w.station, &[w.officer.id]).await;
    for by in [w.supervisor, w.dispatcher, w.officer] {
        let err = user::deactivate(&w.app, &by, &w.meta(&by), w.partner.id, &w.facts())
            .await
            .expect_err("not an admin");
        assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    }
    let mark = w.mark();
    let out = user::deactivate(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id,
        &w.facts(),
    )
    .await
    .expect("deactivate");
    assert!(!out.account.active);
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountDeactivated"),
            ("patrol", "PatrolUpdated"),
            ("patrol", "PatrolUpdated"),
        ])
    );
    for p in [w.patrol, second] {
        let patrol: Patrol = w.state(p.as_uuid()).await;
        assert!(!patrol.is_member(w.officer.id), "{p}");
    }
    // Reactivation brings the account back, not its crews.
    let out = user::reactivate(&w.app, &w.admin, &w.meta(&w.admin), w.officer.id)
        .await
        .expect("reactivate");
    assert!(out.account.active);
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert!(!patrol.is_member(w.officer.id));
}

#[tokio::test]
async fn an_erased_officer_leaves_every_crew_in_the_erasure_append() {
    let w = World::new().await;
    let mark = w.mark();
    subject::erase(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id.as_uuid(),
        Some(&Keys::default()),
        &w.facts(),
    )
    .await
    .expect("erase");
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("subject", "DataSubjectErased"),
            ("patrol", "PatrolUpdated")
        ])
    );
    let patrol: Patrol = w.state(w.patrol.as_uuid()).await;
    assert!(!patrol.is_member(w.officer.id));
    assert!(patrol.is_member(w.partner.id));
}

#[tokio::test]
async fn names_are_changed_by_their_account_or_an_admin_placements_by_an_admin_only() {
    let w = World::new().await;
    let rename = |name: &str| UserUpdate {
        name: Some(name.into()),
        placement: None,
    };
    let out = user::update(
        &w.app,
        &w.citizen,
        &w.meta(&w.citizen),
        w.citizen.id,
        rename("Ana Cruz"),
        &w.facts(),
    )
    .await
    .expect("own name");
    assert_eq!(out.account.name, "Ana Cruz");
    // A supervisor sees the staff of their station, but changes nothing of theirs.
    let err = user::update(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        w.officer.id,
        rename("X"),
        &w.facts(),
    )
    .await
    .expect_err("supervisor");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    // Nor sees a citizen, or staff of another station.
    for id in [w.citizen.id, w.other_dispatcher.id] {
        let err = user::update(
            &w.app,
            &w.supervisor,
            &w.meta(&w.supervisor),
            id,
            rename("X"),
            &w.facts(),
        )
        .await
        .expect_err("not theirs");
        assert!(matches!(err, AppError::NotFound), "{err:?}");
    }
    let err = user::update(
        &w.app,
        &w.officer,
        &w.meta(&w.officer),
        w.officer.id,
        UserUpdate {
            name: None,
            placement: Some(Placement::Station(w.other_station)),
        },
        &w.facts(),
    )
    .await
    .expect_err("own station");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    // An ADMIN moves the officer (same role) and renames them in one append.
    let mark = w.mark();
    let out = user::update(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id,
        UserUpdate {
            name: Some("Officer Reyes".into()),
            placement: Some(Placement::Station(w.other_station)),
        },
        &w.facts(),
    )
    .await
    .expect("admin");
    assert_eq!(
        (
            out.account.role,
            out.account.station_id,
            out.account.name.as_str()
        ),
        (Role::Patrol, Some(w.other_station), "Officer Reyes")
    );
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountRenamed"),
            ("account", "AccountRoleChanged"),
            ("patrol", "PatrolUpdated"),
        ])
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_an_admin_resets_any() {
    let w = World::new().await;
    let citizen = account::register(
        &w.app,
        None,
        &anonymous(),
        account::NewAccount {
            email: email("pat@example.com"),
            password: "first password".into(),
            name: "Pat".into(),
            role: Role::Citizen,
            station: None,
        },
        &Hasher,
    )
    .await
    .expect("register")
    .account;
    let me = Principal {
        id: citizen.id,
        role: Role::Citizen,
        station_id: None,
    };
    let mark = w.mark();
    let err = user::change_password(
        &w.app,
        &me,
        &w.meta(&me),
        "wrong password".into(),
        "second password".into(),
        &Hasher,
    )
    .await
    .expect_err("wrong");
    assert!(
        matches!(err, AppError::Refused(Refusal::WrongPassword)),
        "{err:?}"
    );
    assert!(w.appended_since(mark).is_empty());
    let meta = w.meta(&me);
    let out = user::change_password(
        &w.app,
        &me,
        &meta,
        "first password".into(),
        "second password".into(),
        &Hasher,
    )
    .await
    .expect("change");
    assert_eq!(
        out.account.password_hash.map(|h| h.as_str().to_string()),
        Some("hashed:second password".into())
    );
    // A retry gets the original answer, though the password it names is no longer current.
    let again = user::change_password(
        &w.app,
        &me,
        &meta,
        "first password".into(),
        "second password".into(),
        &Hasher,
    )
    .await
    .expect("retry");
    assert_eq!(again.position, out.position);
    let err = user::reset_password(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        citizen.id,
        "third password".into(),
        &Hasher,
    )
    .await
    .expect_err("not an admin");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    user::reset_password(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        citizen.id,
        "third password".into(),
        &Hasher,
    )
    .await
    .expect("reset");
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountPasswordChanged"),
            ("account", "AccountPasswordChanged"),
        ])
    );
}

/// N3: an invite outlived its author — accepted after the inviter was demoted,
/// deactivated or erased.
#[tokio::test]
async fn an_invite_is_honoured_only_while_its_author_could_still_create_it() {
    type Change = fn(&World) -> AccountCommand;
    let demote: Change = |_| AccountCommand::ChangeRole {
        role: Role::Dispatcher,
        station_id: None,
        at: Utc::now(),
    };
    let deactivate: Change = |_| AccountCommand::Deactivate { at: Utc::now() };
    for (n, change) in [Some(demote), Some(deactivate), None]
        .into_iter()
        .enumerate()
    {
        let w = World::new().await;
        let code_hash = TokenHash::parse(&format!("{n}d").repeat(32)).expect("hash");
        invite::create_invite(
            &w.app,
            &w.supervisor,
            &w.meta(&w.supervisor),
            invite::NewInvite {
                email: email("cy@example.com"),
                role: Role::Patrol,
                station: Some(w.station),
                code_hash: code_hash.clone(),
                valid_for: chrono::Duration::days(7),
            },
        )
        .await
        .expect("invite");
        let sup = w.supervisor.id.as_uuid();
        match change {
            Some(change) => {
                let mut cmd = change(&w);
                if let AccountCommand::ChangeRole { station_id, .. } = &mut cmd {
                    *station_id = Some(w.station);
                }
                w.given::<Account>(sup, cmd).await;
            }
            None => {
                w.given::<DataSubject>(
                    sup,
                    SubjectCommand::Erase {
                        subject_id: sup,
                        erased_by: w.admin.id,
                        at: Utc::now(),
                    },
                )
                .await
            }
        }
        let mark = w.mark();
        let err = invite::accept_invite(
            &w.app,
            &anonymous(),
            &code_hash,
            "Cy".into(),
            "correct horse battery".into(),
            &Hasher,
        )
        .await
        .expect_err("the inviter may no longer invite");
        assert!(
            matches!(err, AppError::Refused(Refusal::InviterNoLongerEntitled)),
            "case {n}: {err:?}"
        );
        assert!(w.appended_since(mark).is_empty(), "case {n}");
    }
}

/// N8: an erased account's address stayed reserved forever.
#[tokio::test]
async fn an_erased_accounts_address_can_register_again() {
    let w = World::new().await;
    let new = || account::NewAccount {
        email: email("gone@example.com"),
        password: "a long password".into(),
        name: "Gone".into(),
        role: Role::Citizen,
        station: None,
    };
    let first = account::register(&w.app, None, &anonymous(), new(), &Hasher)
        .await
        .expect("register")
        .account;
    let err = account::register(&w.app, None, &anonymous(), new(), &Hasher)
        .await
        .expect_err("taken");
    assert!(
        matches!(err, AppError::Refused(Refusal::EmailTaken)),
        "{err:?}"
    );
    subject::erase(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        first.id.as_uuid(),
        Some(&Keys::default()),
        &w.facts(),
    )
    .await
    .expect("erase");
    assert_eq!(
        w.app
            .email_owner(&email("gone@example.com"))
            .await
            .expect("owner"),
        None
    );
    let mark = w.mark();
    let second = account::register(&w.app, None, &anonymous(), new(), &Hasher)
        .await
        .expect("the address is free again")
        .account;
    assert_ne!(second.id, first.id);
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("email", "EmailReleased"),
            ("email", "EmailReserved"),
            ("account", "AccountRegistered"),
        ])
    );
    assert_eq!(
        w.app
            .email_owner(&email("gone@example.com"))
            .await
            .expect("owner"),
        Some(second.id)
    );
    // And it is taken again.
    let err = account::register(&w.app, None, &anonymous(), new(), &Hasher)
        .await
        .expect_err("taken by the new account");
    assert!(
        matches!(err, AppError::Refused(Refusal::EmailTaken)),
        "{err:?}"
    );
}

/// Survivors of mutation testing (2026-11-30): who sees an account's e-mail address,
/// who lists accounts, and that an ADMIN with another active ADMIN beside them may be
/// demoted (only the last one keeps the role).
#[tokio::test]
async fn the_address_is_for_admins_and_the_account_itself_and_only_the_last_admin_keeps_the_role() {
    let w = World::new().await;
    let officer = w.officer.id;
    assert_eq!(user::audience(&w.admin, officer), user::Audience::Full);
    assert_eq!(user::audience(&w.officer, officer), user::Audience::Full);
    assert_eq!(
        user::audience(&w.supervisor, officer),
        user::Audience::Staff
    );
    assert_eq!(
        user::audience(&w.supervisor, w.supervisor.id),
        user::Audience::Full
    );
    for by in [w.admin, w.supervisor] {
        user::may_list(&by).expect("lists accounts");
    }
    for by in [w.citizen, w.officer, w.dispatcher] {
        let err = user::may_list(&by).expect_err("does not list accounts");
        assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    }
    let second = Principal {
        id: AccountId::new(Uuid::new_v4()),
        role: Role::Admin,
        station_id: None,
    };
    w.given_account(second).await;
    let out = account::change_role(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        second.id,
        Role::Citizen,
        None,
        &w.facts(),
    )
    .await
    .expect("another active ADMIN remains");
    assert_eq!(out.account.role, Role::Citizen);
    // Moving an account that is not an ADMIN needs no list of ADMINs: a lagging
    // accounts view does not hold it up.
    let out = account::change_role(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id,
        Role::Dispatcher,
        Some(w.station),
        &w.facts().behind(Behind::Accounts),
    )
    .await
    .expect("no ADMIN list needed");
    assert_eq!(out.account.role, Role::Dispatcher);
}
