//! Who may see and change what. Visibility failures are 404 (the caller learns nothing
//! about resources it may not see); a visible resource the caller may not change is 403.

use precinct_domain::ids::StationId;
use precinct_domain::patrol::Patrol;
use precinct_domain::report::Report;
use precinct_domain::values::{Role, TokenHash};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::problem::ApiError;

/// Roles that run the dispatch desk.
pub const DESK: &[Role] = &[Role::Dispatcher, Role::Supervisor, Role::Admin];
/// Roles that review closures.
pub const REVIEWERS: &[Role] = &[Role::Supervisor, Role::Admin];

/// The hex SHA-256 of a token (tracking tokens and invite codes are stored hashed).
pub fn token_hash(token: &str) -> Option<TokenHash> {
    TokenHash::parse(&hex::encode(Sha256::digest(token.as_bytes()))).ok()
}

/// May the caller (or the holder of a tracking token) see this report in full?
pub fn can_view_report(caller: Option<&Caller>, tracking: Option<&TokenHash>, r: &Report) -> bool {
    if !precinct_domain::Aggregate::version_exists(r) {
        return false;
    }
    if let Some(c) = caller {
        if c.is_staff_of(r.station_id) || r.is_reported_by(c.id) {
            return true;
        }
    }
    tracking.is_some_and(|t| r.has_tracking_token_hash(t))
}

/// 404 unless the caller may see the report.
pub fn require_visible(
    caller: Option<&Caller>,
    tracking: Option<&TokenHash>,
    r: &Report,
) -> Result<(), ApiError> {
    if can_view_report(caller, tracking, r) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// Desk staff of the report's station (or ADMIN).
pub fn require_desk_of(c: &Caller, station: StationId) -> Result<(), ApiError> {
    c.require(DESK)?;
    if c.is_staff_of(station) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// A serving member of the patrol assigned to the report: in its crew, and a PATROL of
/// its station as the account is now (a crew list can trail a role or station change).
pub fn require_member(c: &Caller, patrol: Option<&Patrol>) -> Result<(), ApiError> {
    match patrol {
        Some(p) if p.is_serving_member(c.id, c.role, c.station_id) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "only a member of the assigned patrol may do this".into(),
        )),
    }
}

/// May the caller see this patrol? Staff of its station, or ADMIN.
pub fn require_patrol_visible(c: &Caller, p: &Patrol) -> Result<(), ApiError> {
    if precinct_domain::Aggregate::version_exists(p) && c.is_staff_of(p.station_id) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}
