//! Stations: an ADMIN creates a precinct (a point and/or an area) or a division (the
//! crime types it receives). Its id derives from the command id.

use precinct_domain::ids::StationId;
use precinct_domain::station::{Station, StationCommand};
use precinct_domain::values::{GeoPoint, Polygon, Role, StationKind};
use precinct_eventlog::{CommandMeta, EventStore};

use crate::policy::Principal;
use crate::{ids, App, AppError};

/// A station to create.
#[derive(Debug, Clone)]
pub struct NewStation {
    pub name: String,
    pub kind: StationKind,
    pub point: Option<GeoPoint>,
    pub area: Option<Polygon>,
    pub crime_types: Vec<String>,
}

/// A station after its creation.
#[derive(Debug)]
pub struct StationWritten {
    pub id: StationId,
    pub station: Station,
    pub position: u64,
}

/// Only an ADMIN creates stations (checked before the request's fields are parsed).
pub fn may_create(by: &Principal) -> Result<(), AppError> {
    by.require(&[Role::Admin])
}

pub async fn create<S: EventStore>(
    app: &App<S>,
    by: &Principal,
    meta: &CommandMeta,
    new: NewStation,
) -> Result<StationWritten, AppError> {
    may_create(by)?;
    let id = ids::derived_id(meta.command_id, "station");
    let out = app
        .run::<Station>(meta, id, async move |uow| {
            let at = uow.now();
            uow.execute::<Station>(
                id,
                StationCommand::Create {
                    station_id: StationId::new(id),
                    name: new.name.clone(),
                    kind: new.kind,
                    point: new.point,
                    area: new.area.clone(),
                    crime_types: new.crime_types.clone(),
                    at,
                },
            )
            .await?;
            Ok(())
        })
        .await?;
    let station = out
        .state::<Station>(id)
        .cloned()
        .ok_or(AppError::NotFound)?;
    Ok(StationWritten {
        id: StationId::new(id),
        station,
        position: out.position,
    })
}
