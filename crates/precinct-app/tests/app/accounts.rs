//! Accounts, invites, patrol crews and erasure, given/when/then without servers: a
//! role change takes the officer out of every crew they can no longer serve in (same
//! append), an address is reserved with its account, invites are used up by the
//! account they create, crews are checked against the accounts as they are now, and
//! erasure destroys the keys before recording itself.

use crate::common::{events, Behind, Hasher, Keys, Meanwhile, World};
use chrono::Utc;
use precinct_app::commands::{account, invite, patrol, subject};
use precinct_app::{AppError, Denied, Principal, Refusal, Unavailable};
use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::ids::{AccountId, PatrolId, StationId};
use precinct_domain::invite::InviteError;
use precinct_domain::patrol::{Patrol, PatrolEvent};
use precinct_domain::subject::{DataSubject, SubjectCommand};
use precinct_domain::values::{Email, PatrolStatus, Role, TokenHash};
use precinct_eventlog::{Actor, CommandMeta};
use uuid::Uuid;

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn anonymous() -> CommandMeta {
    CommandMeta::new(Uuid::new_v4(), Actor::Anonymous)
}

#[tokio::test]
async fn a_role_change_takes_the_officer_out_of_the_crews_they_can_no_longer_serve_in() {
    let w = World::new().await;
    let second = PatrolId::new(Uuid::new_v4());
    w.given_patrol(second, w.station, &[w.officer.id]).await;
    let mark = w.mark();

    let out = account::change_role(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id,
        Role::Dispatcher,
        Some(w.station),
        &w.facts(),
    )
    .await
    .expect("role change");

    assert_eq!(out.account.role, Role::Dispatcher);
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountRoleChanged"),
            ("patrol", "PatrolUpdated"),
            ("patrol", "PatrolUpdated"),
        ])
    );
    for p in [w.patrol, second] {
        let patrol: Patrol = w.state(p.as_uuid()).await;
        assert!(!patrol.is_member(w.officer.id), "{p}");
    }
    let crew: Patrol = w.state(w.patrol.as_uuid()).await;
    assert!(crew.is_member(w.partner.id), "the partner stays");
}

#[tokio::test]
async fn a_patrol_moved_to_another_station_leaves_the_old_crews_only() {
    let w = World::new().await;
    let there = PatrolId::new(Uuid::new_v4());
    w.given_patrol(there, w.other_station, &[w.officer.id])
        .await;
    let mark = w.mark();
    account::change_role(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id,
        Role::Patrol,
        Some(w.other_station),
        &w.facts(),
    )
    .await
    .expect("move");
    let here: Patrol = w.state(w.patrol.as_uuid()).await;
    let there: Patrol = w.state(there.as_uuid()).await;
    assert!(!here.is_member(w.officer.id));
    assert!(there.is_member(w.officer.id), "they serve there now");
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountRoleChanged"),
            ("patrol", "PatrolUpdated")
        ])
    );
}

#[tokio::test]
async fn role_changes_are_the_admins_and_wait_for_the_roster() {
    let w = World::new().await;
    let change = |by: Principal, facts: crate::common::LogFacts| {
        let w = &w;
        async move {
            account::change_role(
                &w.app,
                &by,
                &w.meta(&by),
                w.officer.id,
                Role::Citizen,
                None,
                &facts,
            )
            .await
        }
    };
    let err = change(w.supervisor, w.facts())
        .await
        .expect_err("not an admin");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    let mark = w.mark();
    let err = change(w.admin, w.facts().behind(Behind::Roster))
        .await
        .expect_err("roster behind");
    assert!(
        matches!(err, AppError::Unavailable(Unavailable::Roster)),
        "{err:?}"
    );
    assert_eq!(w.mark(), mark);
    let err = account::change_role(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.officer.id,
        Role::Patrol,
        Some(StationId::new(Uuid::new_v4())),
        &w.facts(),
    )
    .await
    .expect_err("no such station");
    assert!(
        matches!(err, AppError::Refused(Refusal::NoSuchStation)),
        "{err:?}"
    );
}

#[tokio::test]
async fn registration_reserves_the_address_with_the_account_and_a_replay_is_the_original() {
    let w = World::new().await;
    let new = account::NewAccount {
        email: email("ana@example.com"),
        password: "correct horse battery".into(),
        name: "Ana".into(),
        role: Role::Citizen,
        station: None,
    };
    let meta = anonymous();
    let mark = w.mark();
    let out = account::register(&w.app, None, &meta, new.clone(), &Hasher)
        .await
        .expect("register");
    assert_eq!(out.account.id, account::account_id(&meta));
    assert_eq!(out.account.role, Role::Citizen);
    assert_eq!(
        w.appended_since(mark),
        events(&[("email", "EmailReserved"), ("account", "AccountRegistered")])
    );
    let head = w.mark();
    let again = account::register(&w.app, None, &meta, new.clone(), &Hasher)
        .await
        .expect("a retry of the same registration");
    assert_eq!(
        (again.account.id, again.position),
        (out.account.id, out.position)
    );
    assert_eq!(w.mark(), head);

    let err = account::register(&w.app, None, &anonymous(), new, &Hasher)
        .await
        .expect_err("the address is taken");
    assert!(
        matches!(err, AppError::Refused(Refusal::EmailTaken)),
        "{err:?}"
    );
    assert_eq!(w.mark(), head);
}

#[tokio::test]
async fn only_an_admin_registers_staff() {
    let w = World::new().await;
    let staff = account::NewAccount {
        email: email("bo@example.com"),
        password: "correct horse battery".into(),
        name: "Bo".into(),
        role: Role::Dispatcher,
        station: Some(w.station),
    };
    let err = account::register(&w.app, None, &anonymous(), staff.clone(), &Hasher)
        .await
        .expect_err("anonymous");
    assert!(
        matches!(err, AppError::Forbidden(Denied::RoleOrStation)),
        "{err:?}"
    );
    let err = account::register(
        &w.app,
        Some(&w.supervisor),
        &w.meta(&w.supervisor),
        staff.clone(),
        &Hasher,
    )
    .await
    .expect_err("a supervisor");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    // A role without a station, or a station for a CITIZEN, is not self-registration
    // either (mutation testing: `&&` → `||` in `may_register` went unnoticed).
    for (role, station) in [(Role::Admin, None), (Role::Citizen, Some(w.station))] {
        let mut asked = staff.clone();
        asked.role = role;
        asked.station = station;
        let err = account::register(&w.app, None, &anonymous(), asked, &Hasher)
            .await
            .expect_err("anonymous");
        assert!(
            matches!(err, AppError::Forbidden(Denied::RoleOrStation)),
            "{role:?} {station:?}: {err:?}"
        );
    }
    let out = account::register(&w.app, Some(&w.admin), &w.meta(&w.admin), staff, &Hasher)
        .await
        .expect("an admin");
    assert_eq!(
        (out.account.role, out.account.station_id),
        (Role::Dispatcher, Some(w.station))
    );
}

#[tokio::test]
async fn an_invite_creates_its_account_and_is_used_up_in_the_same_append() {
    let w = World::new().await;
    let code_hash = TokenHash::parse(&"cd".repeat(32)).expect("hash");
    let new = invite::NewInvite {
        email: email("cy@example.com"),
        role: Role::Patrol,
        station: Some(w.station),
        code_hash: code_hash.clone(),
        valid_for: chrono::Duration::days(7),
    };
    // A supervisor invites officers of their own station only.
    let err = invite::create_invite(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        invite::NewInvite {
            role: Role::Supervisor,
            ..new.clone()
        },
    )
    .await
    .expect_err("a supervisor invites no supervisor");
    assert!(
        matches!(err, AppError::Forbidden(Denied::InviteRole)),
        "{err:?}"
    );
    let err = invite::create_invite(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        invite::NewInvite {
            station: Some(w.other_station),
            ..new.clone()
        },
    )
    .await
    .expect_err("nor to another station");
    assert!(
        matches!(err, AppError::Forbidden(Denied::InviteStation)),
        "{err:?}"
    );
    invite::create_invite(&w.app, &w.supervisor, &w.meta(&w.supervisor), new)
        .await
        .expect("invite");

    let mark = w.mark();
    let out = invite::accept_invite(
        &w.app,
        &anonymous(),
        &code_hash,
        "Cy".into(),
        "correct horse battery".into(),
        &Hasher,
    )
    .await
    .expect("accept");
    assert_eq!(
        (out.account.role, out.account.station_id),
        (Role::Patrol, Some(w.station))
    );
    assert!(out.account.invite_id.is_some());
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("invite", "InviteAccepted"),
            ("email", "EmailReserved"),
            ("account", "AccountRegistered"),
        ])
    );
    let err = invite::accept_invite(
        &w.app,
        &anonymous(),
        &code_hash,
        "Cy again".into(),
        "correct horse battery".into(),
        &Hasher,
    )
    .await
    .expect_err("used");
    assert!(err.domain_error::<InviteError>().is_some(), "{err:?}");
    let unknown = TokenHash::parse(&"ef".repeat(32)).expect("hash");
    let err = invite::accept_invite(
        &w.app,
        &anonymous(),
        &unknown,
        "Dee".into(),
        "correct horse battery".into(),
        &Hasher,
    )
    .await
    .expect_err("unknown code");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
}

/// Two registrations of one address at once both find it free before hashing their
/// passwords; the reservation made in the command itself lets one of them through.
#[tokio::test]
async fn two_registrations_of_one_address_at_once_make_one_account() {
    let w = World::new().await;
    let new = account::NewAccount {
        email: email("twice@example.com"),
        password: "correct horse battery".into(),
        name: "Tia".into(),
        role: Role::Citizen,
        station: None,
    };
    let mark = w.mark();
    let (one, other) = (anonymous(), anonymous());
    // As slow as a real hasher: each hash lets the runtime run the other command first.
    let slow = Meanwhile(|| async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Ok(())
    });
    let (a, b) = tokio::join!(
        account::register(&w.app, None, &one, new.clone(), &slow),
        account::register(&w.app, None, &other, new.clone(), &slow),
    );
    let refused = match (&a, &b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        _ => panic!("one registration must win: {a:?} / {b:?}"),
    };
    assert!(
        matches!(refused, AppError::Refused(Refusal::EmailTaken)),
        "{refused:?}"
    );
    assert_eq!(
        w.appended_since(mark),
        events(&[("email", "EmailReserved"), ("account", "AccountRegistered")])
    );
}

/// The review of issue 13's fixes, N1: accepting an invite hashed the password (slow
/// and memory-hard on purpose) before finding the invite used or its address taken.
#[tokio::test]
async fn a_used_invite_or_a_taken_address_is_refused_before_the_password_is_hashed() {
    let w = World::new().await;
    let invite_for = |address: &str, code: &str| invite::NewInvite {
        email: email(address),
        role: Role::Patrol,
        station: Some(w.station),
        code_hash: TokenHash::parse(&code.repeat(32)).expect("hash"),
        valid_for: chrono::Duration::days(7),
    };
    let used = invite_for("ed@example.com", "a1");
    invite::create_invite(&w.app, &w.admin, &w.meta(&w.admin), used.clone())
        .await
        .expect("invite");
    let first = anonymous();
    // Counts the passwords it hashes.
    let count = std::sync::atomic::AtomicUsize::new(0);
    let hashed = || count.load(std::sync::atomic::Ordering::SeqCst);
    let hasher = Meanwhile(|| async {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    });
    let accept = async |meta: &CommandMeta, code: &TokenHash| {
        invite::accept_invite(
            &w.app,
            meta,
            code,
            "Ed".into(),
            "correct horse battery".into(),
            &hasher,
        )
        .await
    };
    let original = accept(&first, &used.code_hash).await.expect("accept");
    assert_eq!(hashed(), 1);

    let err = accept(&anonymous(), &used.code_hash)
        .await
        .expect_err("used");
    assert_eq!(
        err.domain_error::<InviteError>(),
        Some(&InviteError::AlreadyUsed),
        "{err:?}"
    );
    assert_eq!(hashed(), 1, "a used invite hashed the password");
    // A retry of the command that used it gets its original answer.
    let retry = accept(&first, &used.code_hash).await.expect("retry");
    assert_eq!(retry.account.id, original.account.id);

    let taken = invite_for("fi@example.com", "b2");
    invite::create_invite(&w.app, &w.admin, &w.meta(&w.admin), taken.clone())
        .await
        .expect("invite");
    account::register(
        &w.app,
        None,
        &anonymous(),
        account::NewAccount {
            email: email("fi@example.com"),
            password: "correct horse battery".into(),
            name: "Fi".into(),
            role: Role::Citizen,
            station: None,
        },
        &Hasher,
    )
    .await
    .expect("register");
    let before = hashed();
    let err = accept(&anonymous(), &taken.code_hash)
        .await
        .expect_err("taken");
    assert!(
        matches!(err, AppError::Refused(Refusal::EmailTaken)),
        "{err:?}"
    );
    assert_eq!(hashed(), before, "a taken address hashed the password");
}

#[tokio::test]
async fn the_admin_bootstrap_is_one_account_however_often_it_runs() {
    let w = World::new().await;
    let first = account::ensure_admin(&w.app, email("root@example.com"), "x".repeat(12), &Hasher)
        .await
        .expect("bootstrap");
    let account::Bootstrap::Created { id, .. } = first else {
        panic!("{first:?}");
    };
    let again = account::ensure_admin(&w.app, email("root@example.com"), "x".repeat(12), &Hasher)
        .await
        .expect("again");
    assert_eq!(
        again,
        account::Bootstrap::AlreadyExists {
            id,
            role: Role::Admin
        }
    );
}

#[tokio::test]
async fn crews_are_active_patrol_officers_of_the_station_as_their_accounts_are_now() {
    let w = World::new().await;
    let new = |officers: Vec<AccountId>| patrol::NewPatrol {
        call_sign: "BRAVO-2".into(),
        station: w.station,
        officers,
    };
    let err = patrol::register(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        new(vec![w.dispatcher.id]),
        &w.facts(),
    )
    .await
    .expect_err("a dispatcher is no officer");
    assert!(
        matches!(err, AppError::Refused(Refusal::NotAnOfficer { officer, .. }) if officer == w.dispatcher.id.as_uuid()),
        "{err:?}"
    );
    // Deactivated since: refused too.
    w.given::<Account>(
        w.other_officer.id.as_uuid(),
        AccountCommand::Deactivate { at: Utc::now() },
    )
    .await;
    let err = patrol::register(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        new(vec![w.other_officer.id]),
        &w.facts(),
    )
    .await
    .expect_err("inactive");
    assert!(
        matches!(err, AppError::Refused(Refusal::NotAnOfficer { .. })),
        "{err:?}"
    );
    let err = patrol::register(
        &w.app,
        &w.other_dispatcher,
        &w.meta(&w.other_dispatcher),
        new(vec![w.officer.id]),
        &w.facts(),
    )
    .await
    .expect_err("another station's desk");
    assert!(
        matches!(err, AppError::Forbidden(Denied::PatrolOfAnotherStation)),
        "{err:?}"
    );
    let meta = w.meta(&w.dispatcher);
    let out = patrol::register(
        &w.app,
        &w.dispatcher,
        &meta,
        new(vec![w.officer.id]),
        &w.facts(),
    )
    .await
    .expect("register");
    assert_eq!(
        out.patrol.id.as_uuid(),
        precinct_app::ids::derived_id(meta.command_id, "patrol")
    );
    assert_eq!(out.patrol.status, PatrolStatus::Available);
}

#[tokio::test]
async fn a_patrols_status_is_set_by_a_serving_member_or_the_desk() {
    let w = World::new().await;
    let set = |by: Principal, status| {
        let w = &w;
        async move { patrol::set_status(&w.app, &by, &w.meta(&by), w.patrol, status).await }
    };
    set(w.officer, PatrolStatus::OffDuty)
        .await
        .expect("a member");
    set(w.dispatcher, PatrolStatus::Available)
        .await
        .expect("the desk");
    let err = set(w.other_officer, PatrolStatus::Busy)
        .await
        .expect_err("not in the crew");
    assert!(
        matches!(err, AppError::Forbidden(Denied::PatrolStatus)),
        "{err:?}"
    );
    let err = set(w.other_dispatcher, PatrolStatus::Busy)
        .await
        .expect_err("another station");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
    let err = set(w.citizen, PatrolStatus::Busy)
        .await
        .expect_err("a citizen");
    assert!(matches!(err, AppError::NotFound), "{err:?}");
}

#[tokio::test]
async fn erasure_destroys_the_keys_then_records_itself_once() {
    let w = World::new().await;
    let keys = Keys::default();
    let meta = w.meta(&w.admin);
    let mark = w.mark();
    let out = subject::erase(
        &w.app,
        &w.admin,
        &meta,
        w.citizen.id.as_uuid(),
        Some(&keys),
        &w.facts(),
    )
    .await
    .expect("erase");
    assert!(out.erased_at.is_some());
    assert_eq!(
        *keys.erased.lock().expect("lock"),
        vec![w.citizen.id.as_uuid()]
    );
    assert_eq!(
        w.appended_since(mark),
        events(&[("subject", "DataSubjectErased")])
    );
    // A retry completes nothing more in the log (the key is erased again: a no-op).
    let again = subject::erase(
        &w.app,
        &w.admin,
        &meta,
        w.citizen.id.as_uuid(),
        Some(&keys),
        &w.facts(),
    )
    .await
    .expect("retry");
    assert_eq!(again.position, out.position);
    assert_eq!(w.appended_since(mark).len(), 1);
    // An anonymous report is a subject of its own.
    let report = w.given_anonymous_report().await;
    subject::erase(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        report.as_uuid(),
        Some(&keys),
        &w.facts(),
    )
    .await
    .expect("an anonymous report");
    let s: DataSubject = w.state(report.as_uuid()).await;
    assert!(s.erased_at.is_some());
}

#[tokio::test]
async fn erasing_an_invited_account_destroys_the_invites_key_too() {
    let w = World::new().await;
    let code_hash = TokenHash::parse(&"cd".repeat(32)).expect("hash");
    invite::create_invite(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        invite::NewInvite {
            email: email("dee@example.com"),
            role: Role::Dispatcher,
            station: Some(w.station),
            code_hash: code_hash.clone(),
            valid_for: chrono::Duration::days(1),
        },
    )
    .await
    .expect("invite");
    let dee = invite::accept_invite(
        &w.app,
        &anonymous(),
        &code_hash,
        "Dee".into(),
        "correct horse battery".into(),
        &Hasher,
    )
    .await
    .expect("accept")
    .account;
    let keys = Keys::default();
    subject::erase(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        dee.id.as_uuid(),
        Some(&keys),
        &w.facts(),
    )
    .await
    .expect("erase");
    let invite = dee.invite_id.expect("invited").as_uuid();
    assert_eq!(
        *keys.erased.lock().expect("lock"),
        vec![invite, dee.id.as_uuid()]
    );
}

#[tokio::test]
async fn erasure_is_the_admins_of_subjects_that_exist_with_a_key_store() {
    let w = World::new().await;
    let keys = Keys::default();
    let err = subject::erase(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        w.citizen.id.as_uuid(),
        Some(&keys),
        &w.facts(),
    )
    .await
    .expect_err("not an admin");
    assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    // A signed-in citizen's report is not a subject of its own (its reporter is).
    let report = w.given_report().await;
    for id in [Uuid::new_v4(), report.as_uuid()] {
        let err = subject::erase(
            &w.app,
            &w.admin,
            &w.meta(&w.admin),
            id,
            Some(&keys),
            &w.facts(),
        )
        .await
        .expect_err("no such subject");
        assert!(matches!(err, AppError::NotFound), "{err:?}");
    }
    let err = subject::erase(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        w.citizen.id.as_uuid(),
        None::<&Keys>,
        &w.facts(),
    )
    .await
    .expect_err("no key store");
    assert!(
        matches!(err, AppError::Unavailable(Unavailable::NoKeyStore)),
        "{err:?}"
    );
    assert!(
        keys.erased.lock().expect("lock").is_empty(),
        "no key destroyed"
    );
}

#[tokio::test]
async fn an_erased_officer_can_no_longer_join_a_crew() {
    let w = World::new().await;
    w.given::<DataSubject>(
        w.other_officer.id.as_uuid(),
        SubjectCommand::Erase {
            subject_id: w.other_officer.id.as_uuid(),
            erased_by: w.admin.id,
            at: Utc::now(),
        },
    )
    .await;
    let err = patrol::update(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        w.patrol,
        patrol::PatrolUpdate {
            call_sign: None,
            officers: Some(vec![w.officer.id, w.other_officer.id]),
        },
        &w.facts(),
    )
    .await
    .expect_err("erased");
    assert!(
        matches!(err, AppError::Refused(Refusal::NotAnOfficer { .. })),
        "{err:?}"
    );
    let mark = w.mark();
    patrol::update(
        &w.app,
        &w.dispatcher,
        &w.meta(&w.dispatcher),
        w.patrol,
        patrol::PatrolUpdate {
            call_sign: Some("ALPHA-9".into()),
            officers: None,
        },
        &w.facts(),
    )
    .await
    .expect("a new call sign");
    assert!(matches!(
        w.events_since::<Patrol>(w.patrol.as_uuid(), mark).as_slice(),
        [PatrolEvent::PatrolUpdated(u)] if u.call_sign.as_deref() == Some("ALPHA-9")
    ));
}

/// The bound on the crews one officer is looked up in (mutation testing: its edges
/// were untested): listed in 100 patrols, a role change takes them out of all 100 in
/// one append; in 101, it is refused and nothing is appended.
#[tokio::test]
async fn an_officer_in_at_most_a_hundred_crews_is_moved_and_one_in_more_is_refused() {
    use precinct_app::commands::account::MAX_PATROLS_PER_OFFICER;
    let w = World::new().await;
    // The world's patrol lists the officer already: 99 more make 100.
    for _ in 1..MAX_PATROLS_PER_OFFICER {
        w.given_patrol(PatrolId::new(Uuid::new_v4()), w.station, &[w.officer.id])
            .await;
    }
    let change = |officer: AccountId| {
        let w = &w;
        async move {
            account::change_role(
                &w.app,
                &w.admin,
                &w.meta(&w.admin),
                officer,
                Role::Citizen,
                None,
                &w.facts(),
            )
            .await
        }
    };
    let mark = w.mark();
    change(w.officer.id).await.expect("100 crews");
    assert_eq!(
        w.appended_since(mark).len(),
        1 + MAX_PATROLS_PER_OFFICER as usize,
        "the role change and one crew change per patrol"
    );
    for _ in 0..=MAX_PATROLS_PER_OFFICER {
        w.given_patrol(PatrolId::new(Uuid::new_v4()), w.station, &[w.partner.id])
            .await;
    }
    let mark = w.mark();
    let err = change(w.partner.id).await.expect_err("101 crews");
    assert!(
        matches!(err, AppError::Refused(Refusal::TooManyPatrols(100))),
        "{err:?}"
    );
    assert_eq!(w.mark(), mark, "nothing appended");
}

#[tokio::test]
async fn an_active_admin_is_deactivated_before_it_is_erased_and_no_key_is_destroyed_first() {
    let w = World::new().await;
    let keys = Keys::default();
    let second = Principal {
        id: AccountId::new(Uuid::new_v4()),
        role: Role::Admin,
        station_id: None,
    };
    w.given_account(second).await;
    let mark = w.mark();
    // Neither another ADMIN nor the last ADMIN itself erases an active ADMIN.
    for (by, whom) in [(w.admin, second.id), (w.admin, w.admin.id)] {
        let err = subject::erase(
            &w.app,
            &by,
            &w.meta(&by),
            whom.as_uuid(),
            Some(&keys),
            &w.facts(),
        )
        .await
        .expect_err("an active admin");
        assert!(
            matches!(err, AppError::Refused(Refusal::EraseActiveAdmin)),
            "{err:?}"
        );
    }
    assert!(
        keys.erased.lock().expect("lock").is_empty(),
        "no key destroyed"
    );
    assert!(w.appended_since(mark).is_empty(), "nothing appended");
    // Deactivated first (through the ADMIN guard), it is erased.
    precinct_app::commands::user::deactivate(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        second.id,
        &w.facts(),
    )
    .await
    .expect("another admin remains");
    subject::erase(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        second.id.as_uuid(),
        Some(&keys),
        &w.facts(),
    )
    .await
    .expect("an inactive admin is erased");
    assert_eq!(
        *keys.erased.lock().expect("lock"),
        vec![second.id.as_uuid()]
    );
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("account", "AccountDeactivated"),
            ("admin_guard", "AdminLeft"),
            ("subject", "DataSubjectErased"),
            // The erasure of an ADMIN account goes through the guard too (ERASED).
            ("admin_guard", "AdminLeft"),
        ])
    );
}

#[tokio::test]
async fn who_may_still_invite_to_which_role_and_station() {
    let w = World::new().await;
    let sup: Account = w.state(w.supervisor.id.as_uuid()).await;
    let admin: Account = w.state(w.admin.id.as_uuid()).await;
    let desk: Account = w.state(w.dispatcher.id.as_uuid()).await;
    let (mine, theirs) = (Some(w.station), Some(w.other_station));
    // A SUPERVISOR: officers and dispatchers of their own station, nothing else;
    assert!(invite::may_invite_to(&sup, false, Role::Patrol, mine));
    assert!(invite::may_invite_to(&sup, false, Role::Dispatcher, mine));
    assert!(!invite::may_invite_to(&sup, false, Role::Supervisor, mine));
    assert!(!invite::may_invite_to(&sup, false, Role::Patrol, theirs));
    assert!(!invite::may_invite_to(&sup, false, Role::Patrol, None));
    // and no longer once erased.
    assert!(!invite::may_invite_to(&sup, true, Role::Patrol, mine));
    // An ADMIN: anyone anywhere; the desk: nobody.
    assert!(invite::may_invite_to(
        &admin,
        false,
        Role::Supervisor,
        theirs
    ));
    assert!(!invite::may_invite_to(&desk, false, Role::Patrol, mine));
    // Nobody deactivated, nobody who never existed.
    w.given::<Account>(
        w.supervisor.id.as_uuid(),
        AccountCommand::Deactivate { at: Utc::now() },
    )
    .await;
    let gone: Account = w.state(w.supervisor.id.as_uuid()).await;
    assert!(!invite::may_invite_to(&gone, false, Role::Patrol, mine));
    assert!(!invite::may_invite_to(
        &Account::default(),
        false,
        Role::Patrol,
        mine
    ));
}

#[tokio::test]
async fn an_invite_whose_author_was_deactivated_while_it_was_accepted_makes_no_account() {
    let w = World::new().await;
    let code_hash = TokenHash::parse(&"cd".repeat(32)).expect("hash");
    invite::create_invite(
        &w.app,
        &w.supervisor,
        &w.meta(&w.supervisor),
        invite::NewInvite {
            email: email("di@example.com"),
            role: Role::Patrol,
            station: Some(w.station),
            code_hash: code_hash.clone(),
            valid_for: chrono::Duration::days(7),
        },
    )
    .await
    .expect("invite");
    // The inviter is deactivated while the password is hashed (another request).
    let inviter = w.supervisor.id.as_uuid();
    let hasher = Meanwhile(|| async {
        w.app
            .run::<Account>(
                &CommandMeta::new(Uuid::new_v4(), Actor::System),
                inviter,
                async move |uow| {
                    let at = uow.now();
                    uow.execute::<Account>(inviter, AccountCommand::Deactivate { at })
                        .await?;
                    Ok(())
                },
            )
            .await?;
        Ok(())
    });
    let mark = w.mark();
    let err = invite::accept_invite(
        &w.app,
        &anonymous(),
        &code_hash,
        "Di".into(),
        "correct horse battery".into(),
        &hasher,
    )
    .await
    .expect_err("the inviter left while the password was hashed");
    assert!(
        matches!(err, AppError::Refused(Refusal::InviterNoLongerEntitled)),
        "{err:?}"
    );
    assert_eq!(
        w.appended_since(mark),
        events(&[("account", "AccountDeactivated")]),
        "only the deactivation"
    );
}
