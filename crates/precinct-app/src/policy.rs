//! Who runs a command ([`Principal`]) and who may see and change what. A resource the
//! principal may not see is [`AppError::NotFound`] (they learn nothing about it); one
//! they see but may not change is [`AppError::Forbidden`].

use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::patrol::Patrol;
use precinct_domain::report::Report;
use precinct_domain::values::{Role, TokenHash};
use precinct_domain::Aggregate;
use precinct_eventlog::Actor;

use crate::error::{AppError, Denied};

/// Roles that run the dispatch desk.
pub const DESK: &[Role] = &[Role::Dispatcher, Role::Supervisor, Role::Admin];
/// Roles that review closures.
pub const REVIEWERS: &[Role] = &[Role::Supervisor, Role::Admin];

/// The account a command runs for, as the account is **now** (its current role and
/// station, never those a token remembers: ADR 0011).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub id: AccountId,
    pub role: Role,
    pub station_id: Option<StationId>,
}

impl Principal {
    /// Who the command's events name as their actor.
    pub fn actor(&self) -> Actor {
        Actor::User {
            id: self.id.as_uuid(),
            role: self.role.as_str().to_string(),
        }
    }

    pub fn is(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }

    /// Refuses ([`Denied::Role`]) unless the principal has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if self.is(roles) {
            Ok(())
        } else {
            Err(Denied::Role.into())
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Staff of `station` (ADMIN: every station).
    pub fn is_staff_of(&self, station: StationId) -> bool {
        self.is_admin() || (self.role.is_staff() && self.station_id == Some(station))
    }
}

/// May the principal (or the holder of a tracking token) see this report in full?
pub fn can_view_report(by: Option<&Principal>, tracking: Option<&TokenHash>, r: &Report) -> bool {
    if !r.version_exists() {
        return false;
    }
    if let Some(p) = by {
        if p.is_staff_of(r.station_id) || r.is_reported_by(p.id) {
            return true;
        }
    }
    tracking.is_some_and(|t| r.has_tracking_token_hash(t))
}

/// [`AppError::NotFound`] unless the principal may see the report.
pub fn require_visible(
    by: Option<&Principal>,
    tracking: Option<&TokenHash>,
    r: &Report,
) -> Result<(), AppError> {
    if can_view_report(by, tracking, r) {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// Desk staff of the report's station (or ADMIN): another role is [`Denied::Role`],
/// desk staff of another station do not see it.
pub fn require_desk_of(by: &Principal, station: StationId) -> Result<(), AppError> {
    by.require(DESK)?;
    if by.is_staff_of(station) {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// A serving member of the patrol assigned to the report: in its crew, and a PATROL of
/// its station as the account is now (a crew list can trail a role or station change).
pub fn require_member(by: &Principal, patrol: Option<&Patrol>) -> Result<(), AppError> {
    match patrol {
        Some(p) if p.is_serving_member(by.id, by.role, by.station_id) => Ok(()),
        _ => Err(Denied::NotAMember.into()),
    }
}

/// May the principal see this patrol? Staff of its station, or ADMIN.
pub fn require_patrol_visible(by: &Principal, p: &Patrol) -> Result<(), AppError> {
    if p.version_exists() && by.is_staff_of(p.station_id) {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}
