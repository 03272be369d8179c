//! The crime-type catalogue (`GET /crime-types`, ADR 0026): public data, no personal
//! field. The built-in `OTHER` is not a row of `crime_types`; every query here adds it
//! (active, name "Other", priority `MEDIUM`, no keywords), so that readers see one
//! catalogue.

use chrono::{DateTime, Utc};
use precinct_domain::crime_type::{CrimeTypeCode, CrimeTypeFacts};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::{Page, PageRequest};
use crate::error::QueryError;

/// The catalogue with the built-in `OTHER` (no creation time: it always existed).
const CATALOGUE: &str = "(SELECT code, names, default_priority, keywords, service_code,
        group_name, active, created_at, updated_at FROM crime_types
    UNION ALL
    SELECT 'OTHER', '{\"en\": \"Other\"}'::jsonb, 'MEDIUM', '{}'::text[], NULL, NULL, true,
        NULL::timestamptz, NULL::timestamptz
    WHERE NOT EXISTS (SELECT 1 FROM crime_types WHERE code = 'OTHER')) AS catalogue";

/// One crime type as everyone may read it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CrimeTypeRow {
    pub code: String,
    /// Language tag → name (always `en`).
    pub names: sqlx::types::Json<serde_json::Map<String, serde_json::Value>>,
    /// `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub default_priority: String,
    /// Lower-case; a text containing one resolves to this type.
    pub keywords: Vec<String>,
    /// Open311 `service_code`.
    pub service_code: Option<String>,
    /// Open311 `group`.
    #[sqlx(rename = "group_name")]
    pub group: Option<String>,
    /// False once retired: no new text resolves to it.
    pub active: bool,
    /// Null for the built-in `OTHER`.
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Types by code; retired ones only with `include_retired`.
pub async fn list_crime_types(
    pool: &PgPool,
    include_retired: bool,
    page: &PageRequest,
) -> Result<Page<CrimeTypeRow>, QueryError> {
    let mut qb = QueryBuilder::<Postgres>::new(format!("SELECT * FROM {CATALOGUE} WHERE true"));
    if !include_retired {
        qb.push(" AND active");
    }
    if let Some((code,)) = page.key::<(String,)>()? {
        qb.push(" AND code > ").push_bind(code);
    }
    qb.push(" ORDER BY code LIMIT ").push_bind(page.fetch());
    let rows: Vec<CrimeTypeRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, page, |r| (r.code.clone(),)))
}

/// One type, active or retired (None: no such code).
pub async fn get_crime_type(pool: &PgPool, code: &str) -> Result<Option<CrimeTypeRow>, QueryError> {
    let row = sqlx::query_as(&format!("SELECT * FROM {CATALOGUE} WHERE code = $1"))
        .bind(code)
        .fetch_optional(pool)
        .await?;
    Ok(row)
}

/// Every stored type (without the built-in `OTHER`, which resolution adds itself), as
/// resolution (`precinct_domain::crime_type::resolve`) takes them, by code.
pub async fn crime_type_facts(pool: &PgPool) -> Result<Vec<CrimeTypeFacts>, QueryError> {
    let rows: Vec<CrimeTypeRow> = sqlx::query_as(&format!(
        "SELECT * FROM {CATALOGUE} WHERE code <> 'OTHER' ORDER BY code"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let code = CrimeTypeCode::parse(&r.code).map_err(|e| QueryError::Unreadable {
                what: "crime type code",
                reason: e.to_string(),
            })?;
            Ok(CrimeTypeFacts {
                code,
                names: r
                    .names
                    .0
                    .values()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                keywords: r.keywords,
                active: r.active,
            })
        })
        .collect()
}
