//! CSV export of the list endpoints (ADR 0030).
//!
//! A list answers CSV instead of a JSON page when asked with `?format=csv` or an
//! `Accept` that prefers `text/csv`. The export has the same authorization, filters,
//! scoping and views as the JSON list — the handler builds the same query and the
//! same view per row, only the rendering differs — and:
//!
//! - **every row, streamed**: the export walks the list's keyset pages in chunks of
//!   [`EXPORT_CHUNK`] rows, one query per chunk, rendering each before the next is read,
//!   so its memory is one chunk whatever the row count, and it holds no connection or
//!   transaction between chunks; `cursor` starts it after that row, `limit` caps it;
//! - **RFC 4180**: UTF-8, CRLF line ends, a header row, fields quoted when they hold a
//!   comma, quote or line break (the `csv` crate writes the records);
//! - **the view's fields as columns**: the columns are the properties of the view's
//!   schema in the OpenAPI document, nested objects flattened with dots
//!   (`location.latitude`); arrays and free-form objects are one cell of JSON text;
//!   null is an empty cell;
//! - **safe in a spreadsheet**: a text cell that starts with `=`, `+`, `-`, `@`, tab or
//!   carriage return is prefixed with `'` (OWASP's advice on CSV injection), since
//!   citizens write report titles; numbers are written as numbers;
//! - **budgeted**: each export counts in a per-caller budget (429 with `Retry-After`
//!   beyond it), by account or, for anonymous callers, by client address.
//!
//! A chunk that fails after the first one was sent cannot change the status any more:
//! the body is cut off (the chunked transfer does not end cleanly), so a client never
//! takes a truncated export for a whole one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use precinct_readmodel::queries::{Page, PageRequest, EXPORT_CHUNK};
use precinct_readmodel::QueryError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::problem::{ApiError, ApiResult};

/// How a list answers: a JSON page (the default) or a CSV export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

/// The `format` query parameter of the lists that export CSV.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatParam {
    /// `csv`: every row of the list (from `cursor`, at most `limit` if given) as RFC 4180
    /// CSV, streamed, instead of one JSON page; the same as `Accept: text/csv`.
    #[serde(default)]
    #[param(inline)]
    #[allow(dead_code)] // read by the extractor below; here for the OpenAPI document
    format: Option<Format>,
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let asked: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?;
        let mut named = asked.iter().filter(|(k, _)| k == "format");
        if let Some((_, v)) = named.next() {
            if named.next().is_some() {
                return Err(ApiError::invalid("format", "given more than once"));
            }
            return match v.as_str() {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                _ => Err(ApiError::invalid("format", "expected json or csv")),
            };
        }
        Ok(accepts(parts.headers.get(header::ACCEPT)))
    }
}

/// CSV when the `Accept` header names `text/csv` with a weight above zero and above
/// that of any JSON type it names; JSON otherwise (also when it names neither).
fn accepts(accept: Option<&HeaderValue>) -> Format {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Format::Json;
    };
    let (mut csv, mut json) = (None::<f32>, None::<f32>);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/csv" => csv = Some(csv.map_or(q, |c| c.max(q))),
            "application/json" | "application/problem+json" | "application/*" => {
                json = Some(json.map_or(q, |j| j.max(q)))
            }
            _ => {}
        }
    }
    match (csv, json) {
        (Some(c), Some(j)) if c > 0.0 && c > j => Format::Csv,
        (Some(c), None) if c > 0.0 => Format::Csv,
        _ => Format::Json,
    }
}

/// The columns of a view: the properties of its schema in the OpenAPI document, in
/// its order, nested objects (also optional ones) flattened with dots.
pub fn columns(schema: &str) -> &'static [String] {
    static DOC: LazyLock<Value> =
        LazyLock::new(|| serde_json::from_str(&crate::openapi::spec_json()).unwrap_or(Value::Null));
    static COLUMNS: LazyLock<std::sync::Mutex<HashMap<String, &'static [String]>>> =
        LazyLock::new(Default::default);
    let mut known = COLUMNS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = known.get(schema) {
        return c;
    }
    let mut out = Vec::new();
    flatten(&DOC, &component(&DOC, schema), "", &mut out, 0);
    let leaked: &'static [String] = Box::leak(out.into_boxed_slice());
    known.insert(schema.to_string(), leaked);
    leaked
}

fn component(doc: &Value, name: &str) -> Value {
    doc.pointer(&format!("/components/schemas/{name}"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The object schema `s` stands for, following a `$ref` and a `oneOf` of one object and
/// `null` (an optional nested object); `None` for anything else (a leaf).
fn object_of(doc: &Value, s: &Value) -> Option<Value> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/components/schemas/")?;
        return object_of(doc, &component(doc, name));
    }
    if let Some(variants) = s.get("oneOf").and_then(Value::as_array) {
        let objects: Vec<Value> = variants
            .iter()
            .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
            .filter_map(|v| object_of(doc, v))
            .collect();
        let nulls = variants.len() - objects.len();
        return match (objects.as_slice(), nulls) {
            ([only], 1) => Some(only.clone()),
            _ => None,
        };
    }
    s.get("properties").is_some().then(|| s.clone())
}

fn flatten(doc: &Value, s: &Value, prefix: &str, out: &mut Vec<String>, depth: usize) {
    let Some(object) = object_of(doc, s) else {
        return;
    };
    let Some(props) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        let path = format!("{prefix}{name}");
        match object_of(doc, prop) {
            Some(_) if depth < 4 => flatten(doc, prop, &format!("{path}."), out, depth + 1),
            _ => out.push(path),
        }
    }
}

/// One cell: text neutralised for spreadsheets, numbers and booleans as written,
/// arrays and objects as JSON text, null and absent as empty.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => neutralised(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => neutralised(&other.to_string()),
    }
}

/// A text cell a spreadsheet will not read as a formula: OWASP's list of leading
/// characters (`=`, `+`, `-`, `@`, tab, carriage return) gets a `'` in front, also
/// after leading spaces, line feeds or a byte-order mark (which some importers trim).
pub fn neutralised(s: &str) -> String {
    let first = s.trim_start_matches([' ', '\n', '\u{feff}']).chars().next();
    match first {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

fn value_at<'a>(row: &'a Value, column: &str) -> Option<&'a Value> {
    column.split('.').try_fold(row, |v, key| v.get(key))
}

/// Renders rows (each a view serialized to JSON) as CSV records.
struct Records {
    columns: &'static [String],
}

impl Records {
    fn header(&self) -> Result<Bytes, csv::Error> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(self.columns.iter())?;
        Ok(Bytes::from(w.into_inner().map_err(|e| e.into_error())?))
    }

    fn rows<T: Serialize>(&self, rows: &[T]) -> Result<Bytes, csv::Error> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(rows.len() * 256));
        for row in rows {
            let json = serde_json::to_value(row).map_err(|e| {
                csv::Error::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            })?;
            w.write_record(self.columns.iter().map(|c| cell(value_at(&json, c))))?;
        }
        Ok(Bytes::from(w.into_inner().map_err(|e| e.into_error())?))
    }
}

fn response(name: &str, body: Body) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

fn internal(e: csv::Error) -> ApiError {
    ApiError::Internal(format!("csv: {e}"))
}

/// An export of rows already in memory (a bounded list, e.g. a report's history).
pub fn rows<T: Serialize>(name: &str, schema: &str, rows: &[T]) -> ApiResult<Response> {
    let records = Records {
        columns: columns(schema),
    };
    let mut body = records.header().map_err(internal)?.to_vec();
    body.extend_from_slice(&records.rows(rows).map_err(internal)?);
    Ok(response(name, Body::from(body)))
}

/// An export of a keyset-paginated list, streamed chunk by chunk: `fetch` answers the
/// page for a [`PageRequest`] (the list's own query), `view` turns a row into what the
/// JSON list would show. Starts after `cursor`; at most `max_rows` rows if given. The
/// first chunk is read before answering, so that its errors are answered as problems.
pub async fn pages<R, V, F, Fut, M>(
    name: &str,
    schema: &str,
    cursor: Option<String>,
    max_rows: Option<u32>,
    mut fetch: F,
    view: M,
) -> ApiResult<Response>
where
    R: Send + 'static,
    V: Serialize,
    F: FnMut(PageRequest) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<R>, QueryError>> + Send + 'static,
    M: Fn(R) -> ApiResult<V> + Send + Sync + 'static,
{
    let records = Records {
        columns: columns(schema),
    };
    let chunk =
        |left: Option<u64>| left.map_or(EXPORT_CHUNK, |l| l.min(u64::from(EXPORT_CHUNK)) as u32);
    let left = max_rows.map(u64::from);
    let first = fetch(PageRequest::export_chunk(chunk(left), cursor)).await?;
    let left = left.map(|l| l - first.items.len() as u64);
    let next = first.next_cursor.filter(|_| left != Some(0));
    let views = first
        .items
        .into_iter()
        .map(&view)
        .collect::<ApiResult<Vec<V>>>()?;
    let mut head = records.header().map_err(internal)?.to_vec();
    head.extend_from_slice(&records.rows(&views).map_err(internal)?);

    struct State<F, M> {
        fetch: F,
        view: M,
        records: Records,
        next: Option<String>,
        left: Option<u64>,
    }
    let state = State {
        fetch,
        view,
        records,
        next,
        left,
    };
    let rest = futures::stream::unfold(state, move |mut s| async move {
        let cursor = s.next.take()?;
        let page = match (s.fetch)(PageRequest::export_chunk(chunk(s.left), Some(cursor))).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "an export stopped part-way: the body is cut off");
                return Some((Err(std::io::Error::other("export stopped")), s));
            }
        };
        s.left = s.left.map(|l| l - page.items.len() as u64);
        s.next = page.next_cursor.filter(|_| s.left != Some(0));
        let views = match page
            .items
            .into_iter()
            .map(&s.view)
            .collect::<ApiResult<Vec<V>>>()
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = ?e, "an export stopped part-way: the body is cut off");
                s.next = None;
                return Some((Err(std::io::Error::other("export stopped")), s));
            }
        };
        let bytes = match s.records.rows(&views) {
            Ok(b) => b,
            Err(e) => {
                s.next = None;
                return Some((Err(std::io::Error::other(e.to_string())), s));
            }
        };
        Some((Ok::<_, std::io::Error>(bytes), s))
    });
    let stream = futures::stream::once(async move { Ok(Bytes::from(head)) }).chain(rest);
    Ok(response(name, Body::from_stream(stream)))
}

/// The fetch of [`pages`] from a list query that takes the pool, a filter and the page.
pub fn query<Fi, Fut, R>(
    pool: &precinct_readmodel::PgPool,
    filter: Fi,
    q: impl Fn(precinct_readmodel::PgPool, Fi, PageRequest) -> Fut + Send + 'static,
) -> impl FnMut(PageRequest) -> Fut + Send + 'static
where
    Fi: Clone + Send + 'static,
    Fut: Future<Output = Result<Page<R>, QueryError>> + Send + 'static,
{
    let pool = pool.clone();
    move |pg| q(pool.clone(), filter.clone(), pg)
}

use futures::StreamExt as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_plain_text_is_kept() {
        for s in [
            "=1+1",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"x\")",
        ] {
            assert_eq!(neutralised(s), format!("'{s}"), "{s:?}");
        }
        for s in [" =x", "\n=x", "\u{feff}=x", "  @x"] {
            assert_eq!(neutralised(s), format!("'{s}"), "{s:?}");
        }
        for s in ["theft", "", "1-2", "a=b", " x", "'quoted"] {
            assert_eq!(neutralised(s), s, "{s:?}");
        }
    }

    #[test]
    fn numbers_stay_numbers_and_arrays_are_json_text() {
        assert_eq!(cell(Some(&serde_json::json!(-7.25))), "-7.25");
        assert_eq!(cell(Some(&serde_json::json!(true))), "true");
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(&serde_json::json!(["a", "b"]))), "[\"a\",\"b\"]");
        assert_eq!(cell(Some(&serde_json::json!("-x"))), "'-x");
    }

    #[test]
    fn accept_chooses_csv_only_when_preferred() {
        let f = |s: &str| accepts(Some(&HeaderValue::from_str(s).expect("a header value")));
        assert_eq!(accepts(None), Format::Json);
        assert_eq!(f("text/csv"), Format::Csv);
        assert_eq!(f("text/csv;q=0.5, application/json"), Format::Json);
        assert_eq!(f("application/json;q=0.2, text/csv"), Format::Csv);
        assert_eq!(f("text/csv;q=0"), Format::Json);
        assert_eq!(f("*/*"), Format::Json);
        assert_eq!(f("TEXT/CSV; charset=utf-8"), Format::Csv);
    }

    #[test]
    fn columns_are_the_views_properties_with_nested_objects_flattened() {
        let c = columns("ReportView");
        assert!(c.iter().any(|c| c == "id"));
        assert!(c.iter().any(|c| c == "location.latitude"));
        assert!(c.iter().any(|c| c == "location.longitude"));
        assert!(!c.iter().any(|c| c == "location"));
        // Arrays and free-form JSON stay one column.
        assert!(c.iter().any(|c| c == "crime_type_codes"));
        assert!(c.iter().any(|c| c == "evidence"));
        // The reporter's view flattens its optional nested object too.
        let r = columns("ReporterReportView");
        assert!(r.iter().any(|c| c == "duplicate_of.id"), "{r:?}");
        // The public view has no personal column.
        let p = columns("PublicReportView");
        for personal in ["contact", "reporter_id", "description", "title", "notes"] {
            assert!(!p.iter().any(|c| c == personal), "{personal} in {p:?}");
        }
    }

    #[test]
    fn a_record_quotes_what_rfc_4180_quotes() {
        let records = Records {
            columns: Box::leak(vec!["a".to_string(), "b.c".to_string()].into_boxed_slice()),
        };
        let row = serde_json::json!({"a": "x,\"y\"\nz", "b": {"c": "=cmd"}});
        let out = records.rows(&[row]).expect("a record");
        assert_eq!(&out[..], b"\"x,\"\"y\"\"\nz\",'=cmd\r\n");
        assert_eq!(&records.header().expect("a header")[..], b"a,b.c\r\n");
    }
}
