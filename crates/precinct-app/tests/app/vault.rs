//! Rules that need the vault (real NATS: its key bucket, as in `as_of`): an address
//! reserved under its old, unkeyed stream id still belongs to its account when a new
//! registration reserves it under the keyed id; the key store's erase destroys the
//! subject's key.

use precinct_app::commands::account::{self, NewAccount};
use precinct_app::ports::KeyStore;
use precinct_app::{AppError, Refusal};
use precinct_domain::email::{email_stream_id, EmailCommand, EmailReservation};
use precinct_domain::ids::AccountId;
use precinct_domain::values::{Email, Role};
use precinct_eventlog::{Actor, CommandMeta};
use precinct_vault::{Opened, Vault};
use uuid::Uuid;

use crate::as_of::app_and_raw_log;
use crate::common::Meanwhile;

#[tokio::test]
async fn an_address_held_under_its_old_stream_id_is_not_reserved_again_under_the_keyed_one() {
    let (app, _) = app_and_raw_log().await;
    let email = Email::parse("old@example.com").expect("email");
    let streams = app.email_streams(&email).await.expect("streams");
    assert_ne!(
        streams.keyed,
        Some(streams.legacy),
        "a keyed id with a vault"
    );
    // The address is free when the registration looks, and taken under the old id
    // while the password is hashed:
    // Another account takes the address under its old, unkeyed stream id while the
    // password is hashed (as an account made before ids were keyed holds it).
    let legacy = email_stream_id(&email);
    let hasher = Meanwhile(|| async {
        let holder = AccountId::new(Uuid::new_v4());
        app.run::<EmailReservation>(
            &CommandMeta::new(Uuid::new_v4(), Actor::System),
            legacy,
            async move |uow| {
                let at = uow.now();
                uow.execute::<EmailReservation>(
                    legacy,
                    EmailCommand::Reserve {
                        account_id: holder,
                        at,
                    },
                )
                .await?;
                Ok(())
            },
        )
        .await?;
        Ok(())
    });
    let err = account::register(
        &app,
        None,
        &CommandMeta::new(Uuid::new_v4(), Actor::Anonymous),
        NewAccount {
            email: email.clone(),
            password: "correct horse battery".into(),
            name: "Ola".into(),
            role: Role::Citizen,
            station: None,
        },
        &hasher,
    )
    .await
    .expect_err("the address is taken");
    assert!(
        matches!(err, AppError::Refused(Refusal::EmailTaken)),
        "{err:?}"
    );
    let (keyed, _) = app
        .load::<EmailReservation>(streams.for_new_reservation())
        .await
        .expect("load");
    assert_eq!(
        keyed.account_id, None,
        "nothing reserved under the keyed id"
    );
}

#[tokio::test]
async fn the_key_stores_erase_destroys_the_subjects_key() {
    let (app, _) = app_and_raw_log().await;
    let vault: &Vault = app.vault().expect("a vault");
    let subject = Uuid::new_v4();
    let sealed = vault
        .seal(subject, &serde_json::json!("Taken from the rack"))
        .await
        .expect("seal");
    assert_eq!(
        vault.open_value(&sealed).await.expect("open"),
        Opened::Plain(serde_json::json!("Taken from the rack"))
    );
    KeyStore::erase(vault, subject).await.expect("erase");
    assert_eq!(
        vault.open_value(&sealed).await.expect("open"),
        Opened::Erased
    );
}

#[tokio::test]
async fn a_personal_field_left_empty_is_stored_empty_and_a_given_one_sealed() {
    use precinct_domain::ids::EvidenceId;
    use precinct_domain::report::{Report, ReportCommand};
    use precinct_domain::values::MediaType;
    use precinct_eventlog::StreamId;

    let (app, raw) = app_and_raw_log().await;
    let id = crate::as_of::report_with_notes(&app, 0).await.as_uuid();
    // Assigned and accepted (evidence comes from the crew).
    let patrol = precinct_domain::ids::PatrolId::new(Uuid::new_v4());
    app.run::<Report>(
        &CommandMeta::new(Uuid::new_v4(), Actor::System),
        id,
        async |uow| {
            let at = uow.now();
            uow.execute::<Report>(
                id,
                ReportCommand::Assign {
                    patrol_id: patrol,
                    decision: None,
                    at,
                },
            )
            .await?;
            uow.execute::<Report>(id, ReportCommand::Accept { at })
                .await?;
            Ok(())
        },
    )
    .await
    .expect("assign and accept");
    for description in [None, Some("Blue frame, scratched")] {
        crate::as_of::run_report(&app, id, |at| ReportCommand::AttachEvidence {
            evidence_id: EvidenceId::new(Uuid::new_v4()),
            url: "https://evidence.example.com/1.jpg".into(),
            media_type: MediaType::Photo,
            captured_at: None,
            description: description.map(str::to_owned),
            author_id: AccountId::new(Uuid::new_v4()),
            at,
        })
        .await;
    }
    let stored = raw
        .read(&StreamId::new("report", id))
        .await
        .expect("raw read");
    let (empty, given) = (
        &stored[3].data["description"],
        &stored[4].data["description"],
    );
    assert_eq!(stored[3].envelope.event_type, "EvidenceAttached");
    assert!(empty.is_null(), "{empty}");
    assert!(Vault::is_sealed(given), "{given}");
}
