//! Stations (`GET /stations`) and accounts (admin views). No credential is stored in
//! the read models, so none can leak from here.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use precinct_domain::ids::StationId;
use precinct_domain::routing::StationFacts;
use precinct_domain::values::{GeoPoint, Polygon, StationKind, ValueError};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::error::QueryError;

const STATION_COLUMNS: &str =
    "id, name, kind, latitude, longitude, area, crime_types, created_at, \
     contact_phone, active, updated_at";
const ACCOUNT_COLUMNS: &str =
    "id, email, name, role, station_id, active, created_at, updated_at, personal_erased";

/// A precinct or division.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StationRow {
    pub id: Uuid,
    pub name: String,
    /// `PRECINCT` or `DIVISION`.
    pub kind: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// GeoJSON `Polygon` geometry object.
    pub area: Option<serde_json::Value>,
    /// A division's routing keywords.
    pub crime_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The station's public contact number.
    pub contact_phone: Option<String>,
    /// Takes new reports (an inactive station is skipped by routing).
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

/// An account, without any credential.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    /// Normalised (lower-case); `None` once the account's personal data was erased.
    pub email: Option<String>,
    /// `None` once the account's personal data was erased.
    pub name: Option<String>,
    pub role: String,
    pub station_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub personal_erased: bool,
}

/// Filters of [`list_accounts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub station_id: Option<Uuid>,
    pub role: Option<String>,
    pub active: Option<bool>,
    /// Staff only: any role but `CITIZEN`.
    pub staff_only: bool,
    /// A case-insensitive substring of the name, or of the e-mail address too when
    /// `text_in_email` (erased accounts have neither, so never match).
    pub text: Option<String>,
    /// Whether `text` searches e-mail addresses (only for callers who may see them).
    pub text_in_email: bool,
}

/// Escapes `%`, `_` and `\` for a `LIKE` pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Stations by name, then id.
#[tracing::instrument(skip(pool))]
pub async fn list_stations(
    pool: &PgPool,
    page: &PageRequest,
) -> Result<Page<StationRow>, QueryError> {
    let mut qb =
        QueryBuilder::<Postgres>::new(format!("SELECT {STATION_COLUMNS} FROM stations WHERE true"));
    if let Some((name, id)) = page.key::<(String, Uuid)>()? {
        qb.push(" AND (name, id) > (")
            .push_bind(name)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY name, id LIMIT ").push_bind(page.fetch());
    let rows: Vec<StationRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.name.clone(), r.id)))
}

/// Every active station, as routing (`precinct_domain::routing::route`) takes them.
/// There are few; routing reads them all. An inactive station receives no new report.
#[tracing::instrument(skip(pool))]
pub async fn station_facts(pool: &PgPool) -> Result<Vec<StationFacts>, QueryError> {
    let rows: Vec<StationRow> = sqlx::query_as(&format!(
        "SELECT {STATION_COLUMNS} FROM stations WHERE active ORDER BY id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(StationRow::to_facts).collect()
}

impl StationRow {
    pub fn to_facts(self) -> Result<StationFacts, QueryError> {
        let unreadable = |what, e: ValueError| QueryError::Unreadable {
            what,
            reason: e.to_string(),
        };
        let kind = StationKind::from_str(&self.kind).map_err(|e| unreadable("station kind", e))?;
        let point = match (self.latitude, self.longitude) {
            (Some(lat), Some(lon)) => {
                Some(GeoPoint::parse(lat, lon).map_err(|e| unreadable("station point", e))?)
            }
            _ => None,
        };
        let area = self
            .area
            .as_ref()
            .map(Polygon::parse_geojson)
            .transpose()
            .map_err(|e| unreadable("station area", e))?;
        Ok(StationFacts {
            station_id: StationId::new(self.id),
            kind,
            point,
            area,
            crime_types: self.crime_types,
        })
    }
}

#[tracing::instrument(skip(pool))]
pub async fn get_station(pool: &PgPool, id: Uuid) -> Result<Option<StationRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {STATION_COLUMNS} FROM stations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Accounts in the order they registered (then id), filtered.
#[tracing::instrument(skip(pool))]
pub async fn list_accounts(
    pool: &PgPool,
    filter: &AccountFilter,
    page: &PageRequest,
) -> Result<Page<AccountRow>, QueryError> {
    let mut qb =
        QueryBuilder::<Postgres>::new(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE true"));
    if let Some(station) = filter.station_id {
        qb.push(" AND station_id = ").push_bind(station);
    }
    if let Some(role) = &filter.role {
        qb.push(" AND role = ").push_bind(role.clone());
    }
    if let Some(active) = filter.active {
        qb.push(" AND active = ").push_bind(active);
    }
    if filter.staff_only {
        qb.push(" AND role <> 'CITIZEN'");
    }
    if let Some(text) = &filter.text {
        let pattern = like_pattern(text);
        qb.push(" AND (name ILIKE ").push_bind(pattern.clone());
        if filter.text_in_email {
            qb.push(" OR email ILIKE ").push_bind(pattern);
        }
        qb.push(")");
    }
    // Keyed by registration time, never by a personal field: the cursor goes to callers
    // who may not see e-mail addresses.
    if let Some((created_at, id)) = page.key::<(DateTime<Utc>, Uuid)>()? {
        qb.push(" AND (created_at, id) > (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(page.fetch());
    let rows: Vec<AccountRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.created_at, r.id)))
}

/// The active ADMIN accounts whose personal data was not erased (at most `limit`).
#[tracing::instrument(skip(pool))]
pub async fn active_admins(pool: &PgPool, limit: u32) -> Result<Vec<Uuid>, QueryError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM accounts WHERE role = 'ADMIN' AND active AND NOT personal_erased
         ORDER BY id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

#[tracing::instrument(skip(pool))]
pub async fn get_account(pool: &PgPool, id: Uuid) -> Result<Option<AccountRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The account with this (normalised, lower-case) e-mail address, if any.
#[tracing::instrument(skip(pool))]
pub async fn get_account_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<AccountRow>, QueryError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = lower($1) ORDER BY id LIMIT 1"
    ))
    .bind(email.trim())
    .fetch_optional(pool)
    .await?)
}
