//! The read API: typed queries over the read models, for the HTTP layer and the SLA
//! worker.
//!
//! No query authorises anything: the caller passes the scoping filters (station,
//! reporter, patrols) that the caller's role allows. Every list is keyset-paginated
//! ([`PageRequest`] in, [`Page`] out): the cursor is the opaque, URL-safe base64 of the
//! last item's sort key, so pages neither skip nor repeat rows while rows are added.
//!
//! - [`reports`]: report lists and views, the open-report queue, an officer's inbox.
//! - [`duplicates`]: possible duplicates of a report (same type, near in space and
//!   time).
//! - [`patrols`]: the roster, workloads, and the snapshot automatic assignment reads.
//! - [`sla`]: overdue reports and SLA breach candidates.
//! - [`operations`]: whole-system counts for the operator's metrics.
//! - [`directory`]: stations and accounts.
//! - [`crime_types`]: the crime-type catalogue (with the built-in `OTHER`).
//! - [`stations`]: what station management reads of the reports.
//! - [`audit`](mod@audit): the audit trail and the request log.
//! - [`analytics`]: the funnel, service levels, workload, volume and heatmap
//!   (ADR 0027).
//! - [`webhooks`]: webhook subscriptions and their delivery ledger.

pub mod analytics;
pub mod audit;
pub mod crime_types;
pub mod directory;
pub mod duplicates;
pub mod operations;
pub mod patrols;
pub mod reports;
pub mod sla;
pub mod stations;
pub mod webhooks;

pub use analytics::{analytics_cell, Bbox, Bucket, Scope, SlaDeadlines};
pub use audit::{audit, request_log, AuditFilter, AuditRow, RequestFilter, RequestRow};
pub use crime_types::{crime_type_facts, get_crime_type, list_crime_types, CrimeTypeRow};
pub use directory::{
    active_admins, get_account, get_account_by_email, get_station, list_accounts, list_stations,
    station_facts, AccountFilter, AccountRow, StationRow,
};
pub use duplicates::{possible_duplicates, Candidate, DuplicateSearch};
pub use operations::{operator_counts, OperatorCounts};
pub use patrols::{
    get_patrol, list_patrols, patrols_listing, workload_rows, workload_snapshot, workloads,
    PatrolRow, Workload, WorkloadSnapshot,
};
pub use reports::{
    assigned_patrol, explain_list_reports, geo_cell, get_public_report, get_report,
    list_public_reports, list_reports, near_cells, officer_inbox, public_cell, report_queue,
    report_station, reporter_of, tracking_token_hash_of, Coordinates, Near, PublicReport,
    QueueFilter, ReportFilter, ReportRow, COLUMNS as REPORT_COLUMNS, NEAR_MAX_CELLS,
};
pub use sla::{
    sla_breach_candidates, sla_escalation_candidates, sla_overdue, sla_warning_candidates,
    station_supervisors, EscalationDue, OverdueReport, SlaDue,
};
pub use stations::{latest_routed_reports, open_reports_of_station, RoutedReport};
pub use webhooks::{
    active_webhooks, get_webhook, list_deliveries, list_webhooks, DeliveryRow, WebhookRow,
};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::QueryError;

/// Items per page when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most items per page.
pub const MAX_LIMIT: u32 = 100;
/// Rows per query of an export ([`PageRequest::export_chunk`]): an export walks the
/// same keyset pages as the JSON list, larger ones, so that it holds one chunk in
/// memory and no connection or transaction between chunks.
pub const EXPORT_CHUNK: u32 = 1_000;

/// Which page to answer: `limit` (default 20, capped at 100) items after `cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
    /// A chunk of an export: `limit` may reach [`EXPORT_CHUNK`] instead of
    /// [`MAX_LIMIT`]. Never set from a request.
    #[serde(skip)]
    pub export: bool,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            cursor: None,
            export: false,
        }
    }

    pub fn after(limit: u32, cursor: Option<String>) -> Self {
        Self {
            limit: Some(limit),
            cursor,
            export: false,
        }
    }

    /// The next chunk of an export: up to `limit` (at most [`EXPORT_CHUNK`]) rows after
    /// `cursor`.
    pub fn export_chunk(limit: u32, cursor: Option<String>) -> Self {
        Self {
            limit: Some(limit),
            cursor,
            export: true,
        }
    }

    /// The effective limit: 1..=100, 20 by default (an export chunk: up to 1,000).
    pub fn limit(&self) -> u32 {
        let max = if self.export { EXPORT_CHUNK } else { MAX_LIMIT };
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, max)
    }

    /// The decoded sort key of the cursor, if any.
    pub(crate) fn key<K: DeserializeOwned>(&self) -> Result<Option<K>, QueryError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()
    }

    /// `LIMIT` for SQL: one more than the page, to know whether another page follows.
    pub(crate) fn fetch(&self) -> i64 {
        i64::from(self.limit()) + 1
    }
}

/// One page of a list: `{"items": [...], "next_cursor": string|null}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows, the cursor from the last kept row.
    pub(crate) fn from_rows<K: Serialize>(
        mut rows: Vec<T>,
        page: &PageRequest,
        key: impl Fn(&T) -> K,
    ) -> Self {
        let limit = page.limit() as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn encode_cursor<K: Serialize>(key: &K) -> String {
    // A sort key is a tuple of plain values: serialising cannot fail.
    let json = serde_json::to_vec(key).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor into its sort key. A cursor is the caller's input: besides its
/// shape, whatever it carries must be something PostgreSQL can compare — times are
/// [`precinct_domain::values::Timestamp`]s in the key types (a year of -262143 is not a
/// time PostgreSQL holds), and no string may hold U+0000 (which PostgreSQL refuses).
fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, QueryError> {
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| QueryError::BadCursor)?;
    if json.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Err(QueryError::BadCursor);
    }
    serde_json::from_slice(&json).map_err(|_| QueryError::BadCursor)
}

/// Escapes `%`, `_` and `\` so that `prefix` matches literally in `LIKE prefix || '%'`.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_20_and_are_capped_at_100() {
        assert_eq!(PageRequest::default().limit(), DEFAULT_LIMIT);
        assert_eq!(PageRequest::first(0).limit(), 1);
        assert_eq!(PageRequest::first(1000).limit(), MAX_LIMIT);
        assert_eq!(PageRequest::first(37).fetch(), 38);
    }

    #[test]
    fn a_cursor_round_trips_its_sort_key_and_refuses_anything_else() {
        let key = ("2025-03-01T08:00:00Z".to_string(), 42i64);
        let page = Page::from_rows(vec![1, 2, 3], &PageRequest::first(2), |_| key.clone());
        assert_eq!(page.items, vec![1, 2]);
        let next = PageRequest::after(2, page.next_cursor);
        assert_eq!(next.key::<(String, i64)>().ok().flatten(), Some(key));
        let bad = PageRequest::after(2, Some("%%%".into()));
        assert!(matches!(
            bad.key::<(String, i64)>(),
            Err(QueryError::BadCursor)
        ));
        let wrong_shape = PageRequest::after(2, Some(encode_cursor(&"text")));
        assert!(matches!(
            wrong_shape.key::<(String, i64)>(),
            Err(QueryError::BadCursor)
        ));
        let last = Page::from_rows(vec![1, 2], &PageRequest::first(2), |x| *x);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn like_prefixes_match_literally() {
        assert_eq!(like_prefix("/crimes"), "/crimes%");
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
