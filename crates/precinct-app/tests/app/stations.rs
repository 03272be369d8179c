//! Editing stations, given/when/then without servers (issue 16 item 7): only an ADMIN
//! edits; a deactivation is decided on the open reports the port finds and refused,
//! naming them, while there are any; an inactive station receives no new report, and a
//! reactivated one does again; refusals append nothing.

use crate::common::{events, World};
use precinct_app::commands::report::submit;
use precinct_app::commands::station_edit::{self, Activation, StationEdit};
use precinct_app::ports::StationReports;
use precinct_app::{AppError, Denied, Unavailable};
use precinct_domain::ids::{ReportId, StationId};
use precinct_domain::report::{ReportLocation, Reporter};
use precinct_domain::station::{
    Edit, OpenReports, Station, StationChanges, StationError, StationEvent, StationField,
};
use precinct_domain::values::{GeoPoint, PhoneNumber};
use uuid::Uuid;

/// The open-reports port: what a test says the reports read model holds (None: behind).
struct Open(Option<Vec<ReportId>>);

impl StationReports for Open {
    async fn open_reports(
        &self,
        _station: StationId,
        limit: u32,
    ) -> Result<Option<OpenReports>, AppError> {
        Ok(self.0.as_ref().map(|ids| OpenReports {
            ids: ids.iter().copied().take(limit as usize).collect(),
            total: ids.len() as u64,
        }))
    }
}

fn none_open() -> Open {
    Open(Some(vec![]))
}

fn deactivate() -> StationEdit {
    StationEdit {
        activation: Activation::Deactivate,
        ..Default::default()
    }
}

async fn submit_here(w: &World) -> StationId {
    let new = submit::NewReport {
        title: "Bag snatched".into(),
        description: "Near the market".into(),
        crime_types: vec!["Theft".into()],
        location: ReportLocation::new(
            GeoPoint::parse(crate::common::LAT, crate::common::LON).expect("point"),
            None,
            None,
        ),
        street: None,
        occurred_at: None,
        media_urls: vec![],
        contact: None,
        notify_email: None,
    };
    let reporter = Reporter::User {
        account_id: w.citizen.id,
    };
    submit::submit(&w.app, &w.meta(&w.citizen), reporter, new, &w.facts())
        .await
        .expect("submit")
        .report
        .station_id
}

#[tokio::test]
async fn an_admin_edits_a_station_in_one_event() {
    let w = World::new().await;
    let mark = w.mark();
    let edit = StationEdit {
        changes: StationChanges {
            name: Some("Central".into()),
            contact_phone: Edit::Set(PhoneNumber::parse("117").expect("phone")),
            ..Default::default()
        },
        activation: Activation::Keep,
    };
    let out = station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &none_open(),
        w.station,
        edit,
    )
    .await
    .expect("edit");
    assert_eq!(out.station.name, "Central");
    assert_eq!(
        w.appended_since(mark),
        events(&[("station", "StationUpdated")])
    );
    match w
        .events_since::<Station>(w.station.as_uuid(), mark)
        .as_slice()
    {
        [StationEvent::StationUpdated(e)] => {
            assert_eq!(
                e.changed,
                vec![StationField::Name, StationField::ContactPhone]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn only_an_admin_edits_and_an_unknown_station_is_not_found() {
    let w = World::new().await;
    let mark = w.mark();
    for by in [w.supervisor, w.dispatcher, w.officer, w.citizen] {
        let err = station_edit::edit(
            &w.app,
            &by,
            &w.meta(&by),
            &none_open(),
            w.station,
            deactivate(),
        )
        .await
        .expect_err("not an ADMIN");
        assert!(matches!(err, AppError::Forbidden(Denied::Role)), "{err:?}");
    }
    let unknown = StationId::new(Uuid::new_v4());
    let err = station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &none_open(),
        unknown,
        deactivate(),
    )
    .await
    .expect_err("no such station");
    assert_eq!(
        err.domain_error::<StationError>(),
        Some(&StationError::NotFound)
    );
    assert_eq!(w.mark(), mark, "a refusal appended");
}

#[tokio::test]
async fn a_station_with_open_reports_stays_active_and_one_without_receives_no_new_report() {
    let w = World::new().await;
    let open = w.given_report().await;
    let mark = w.mark();
    let err = station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &Open(Some(vec![open])),
        w.station,
        deactivate(),
    )
    .await
    .expect_err("open reports");
    assert_eq!(
        err.domain_error::<StationError>(),
        Some(&StationError::HasOpenReports(OpenReports {
            ids: vec![open],
            total: 1
        }))
    );
    assert!(
        err.to_string().contains(&open.as_uuid().to_string()),
        "{err}"
    );
    let err = station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &Open(None),
        w.station,
        deactivate(),
    )
    .await
    .expect_err("the reports read model is behind");
    assert!(
        matches!(err, AppError::Unavailable(Unavailable::Reports)),
        "{err:?}"
    );
    assert_eq!(w.mark(), mark, "a refusal appended");

    assert_eq!(submit_here(&w).await, w.station);
    let out = station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &none_open(),
        w.station,
        deactivate(),
    )
    .await
    .expect("deactivate");
    assert!(!out.station.active);
    assert_eq!(
        submit_here(&w).await,
        w.other_station,
        "an inactive station takes none"
    );

    let activate = StationEdit {
        activation: Activation::Activate,
        ..Default::default()
    };
    let mark = w.mark();
    station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &none_open(),
        w.station,
        activate,
    )
    .await
    .expect("reactivate");
    assert_eq!(
        w.appended_since(mark),
        events(&[("station", "StationReactivated")])
    );
    assert_eq!(submit_here(&w).await, w.station);
}

#[tokio::test]
async fn an_edit_and_a_deactivation_land_together_or_not_at_all() {
    let w = World::new().await;
    let open = w.given_report().await;
    let mark = w.mark();
    let both = StationEdit {
        changes: StationChanges {
            name: Some("Closing down".into()),
            ..Default::default()
        },
        activation: Activation::Deactivate,
    };
    station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &Open(Some(vec![open])),
        w.station,
        both.clone(),
    )
    .await
    .expect_err("open reports");
    assert_eq!(w.mark(), mark, "the rename landed without the deactivation");
    station_edit::edit(
        &w.app,
        &w.admin,
        &w.meta(&w.admin),
        &none_open(),
        w.station,
        both,
    )
    .await
    .expect("both");
    assert_eq!(
        w.appended_since(mark),
        events(&[
            ("station", "StationUpdated"),
            ("station", "StationDeactivated")
        ])
    );
}
