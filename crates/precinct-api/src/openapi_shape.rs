//! The last pass over the OpenAPI document, on its JSON: shapes that `utoipa` cannot
//! express from the annotations, made so that generated clients work and every error
//! status shows its own example (issue 20; ADR 0023). Each rule is one function, and the
//! document keeps saying the same thing about the server:
//!
//! - [`optional_bodies`]: a body a command may leave out (`Option<NoBody>`) is an
//!   optional `NoBody`, not `oneOf [NoBody, null]` (a generator cannot omit the latter).
//! - [`written_report`]: the answer of a report command is one of two objects (the
//!   staff view or the reporter view, each with `position`), not `allOf` over a `oneOf`
//!   (generators refuse `allOf` of a non-object and drop the answer).
//! - [`optional_security`]: an operation open to anonymous callers that also takes a
//!   token (`security: [{}, {bearer: []}]`) declares `security: []` and names the
//!   optional token in `x-security-optional`, so that generated code accepts a client
//!   without a token; a token sent is used as before.
//! - [`error_examples`]: each problem+json response carries an example of its own status.
//! - [`closed_sets`]: filter parameters that take a closed set (`status`, `overdue`) list
//!   it (`enum`).
//! - [`csv_exports`]: a list that takes `format` also answers `text/csv` (ADR 0030).
//! - [`live_streams`]: the SSE endpoints name their events (`position`, `status`,
//!   `assignment`), the id formats (`p<seq>`, `e<position>`) and each event's `data`
//!   schema (`LivePosition`, `LiveStatus`, `LiveAssignment`, under `x-sse-events` of
//!   the 200 answer; a test checks real frames against them).

use serde_json::{json, Value};

/// The document with every rule applied; the input unchanged if it does not round-trip
/// (a test keeps it round-tripping).
pub fn shape(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut v) = serde_json::to_value(&doc) else {
        return doc;
    };
    apply(&mut v);
    serde_json::from_value(v).unwrap_or(doc)
}

/// Every rule, on the document's JSON.
pub fn apply(v: &mut Value) {
    for op in operations(v) {
        optional_bodies(op);
        optional_security(op);
        closed_sets(op);
        csv_exports(op);
    }
    written_report(v);
    error_examples(v);
    live_streams(v);
}

/// A list with the `format` parameter answers `text/csv` beside its JSON page.
fn csv_exports(op: &mut Value) {
    let exports = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.get("name") == Some(&json!("format")) && p.get("in") == Some(&json!("query"))
            })
        });
    if !exports {
        return;
    }
    if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
        responses
            .entry("429")
            .or_insert_with(|| json!({ "$ref": "#/components/responses/TooManyRequests" }));
    }
    if let Some(content) = op
        .pointer_mut("/responses/200/content")
        .and_then(Value::as_object_mut)
    {
        content.insert(
            "text/csv".into(),
            json!({
                "schema": {
                    "type": "string",
                    "description": "With `format=csv` or `Accept: text/csv`: every row of the list (after `cursor`; at most `limit` if given) as RFC 4180 CSV in UTF-8 with a header row, streamed. The columns are the JSON view's fields, nested objects flattened with dots (`location.latitude`), arrays and free-form objects as JSON text, null as an empty cell. A text cell starting with `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`. Each export counts in a per-caller budget (429 beyond it)."
                }
            }),
        );
    }
}

/// The SSE endpoints and the events each sends.
const STREAMS: &[(&str, &[&str])] = &[
    ("/patrols/stream", &["position", "status"]),
    ("/me/assignments/stream", &["assignment"]),
    ("/queues/reports/stream", &["report"]),
    ("/me/crimes/stream", &["report_status", "public_update"]),
    ("/crimes/{id}/stream", &["report_status", "public_update"]),
];

/// The `data` schema of each live event, by event name.
fn live_schemas() -> Vec<(&'static str, &'static str, Value)> {
    let uuid = json!({ "type": "string", "format": "uuid" });
    let time = json!({ "type": "string", "format": "date-time" });
    vec![
        (
            "position",
            "LivePosition",
            json!({
                "type": "object",
                "description": "SSE event `position` (id `p<seq>`): a patrol's GPS fix, for its station's staff. The snapshot at connect sends each patrol's last one.",
                "required": ["position", "patrol_id", "station_id", "latitude", "longitude", "recorded_at"],
                "properties": {
                    "position": { "type": "integer", "minimum": 1, "description": "The positions-stream sequence (the id without `p`)." },
                    "patrol_id": uuid, "station_id": uuid,
                    "latitude": { "type": "number", "minimum": -90, "maximum": 90 },
                    "longitude": { "type": "number", "minimum": -180, "maximum": 180 },
                    "heading": { "type": "number", "minimum": 0, "maximum": 360 },
                    "speed_mps": { "type": "number", "minimum": 0 },
                    "recorded_at": time
                }
            }),
        ),
        (
            "status",
            "LiveStatus",
            json!({
                "type": "object",
                "description": "SSE event `status` (id `e<position>`): a patrol's status changed, for its station's staff.",
                "required": ["position", "patrol_id", "station_id", "status", "cause", "at"],
                "properties": {
                    "position": { "type": "integer", "minimum": 1, "description": "The event's log position (the id without `e`)." },
                    "patrol_id": uuid, "station_id": uuid,
                    "status": { "$ref": "#/components/schemas/PatrolStatus" },
                    "cause": { "type": "string", "enum": ["MANUAL", "DISPATCHED", "RELEASED"] },
                    "at": time
                }
            }),
        ),
        (
            "assignment",
            "LiveAssignment",
            json!({
                "type": "object",
                "description": "SSE event `assignment` (id `e<position>`): an assignment of the officer's patrol opened or closed, or its report changed; fetch the report for its state.",
                "required": ["position", "type", "report_id", "patrol_id", "occurred_at"],
                "properties": {
                    "position": { "type": "integer", "minimum": 1, "description": "The event's log position (the id without `e`)." },
                    "type": { "type": "string", "description": "The event type (`PatrolAssignmentOpened`, `PatrolAssignmentClosed`, `ReportAccepted`, ...; schemas/events/)." },
                    "report_id": uuid, "patrol_id": uuid,
                    "occurred_at": time
                }
            }),
        ),
        (
            "report",
            "LiveReportChange",
            json!({
                "type": "object",
                "description": "SSE event `report` (id `e<position>`): a report of the station changed (or was transferred away from it); read the queue or the report with `X-Min-Position` for its state.",
                "required": ["position", "type", "report_id", "station_id", "occurred_at"],
                "additionalProperties": false,
                "properties": {
                    "position": { "type": "integer", "minimum": 1, "description": "The event's log position (the id without `e`)." },
                    "type": { "type": "string", "description": "The event type (`ReportSubmitted`, `ReportTriaged`, `ReportAssigned`, `ReportTransferred`, ...; schemas/events/)." },
                    "report_id": uuid,
                    "station_id": { "type": "string", "format": "uuid", "description": "The report's station after the change (for a transfer: the station it went to)." },
                    "occurred_at": time
                }
            }),
        ),
        (
            "report_status",
            "ReporterLiveStatus",
            json!({
                "type": "object",
                "description": "SSE event `report_status` (id `e<position>`): the reporter's report changed status (the reporter view: no notes, patrol or officer). `rejection_reason` only for `REJECTED`, `duplicate_of` only when closed as a duplicate.",
                "required": ["position", "report_id", "status", "at"],
                "additionalProperties": false,
                "properties": {
                    "position": { "type": "integer", "minimum": 1, "description": "The event's log position (the id without `e`)." },
                    "report_id": uuid,
                    "status": { "$ref": "#/components/schemas/ReportStatus" },
                    "at": time,
                    "rejection_reason": { "type": "string", "description": "The public reason of a rejection, or the neutral default." },
                    "duplicate_of": { "type": "string", "format": "uuid", "description": "The report this one was closed into as a duplicate." }
                }
            }),
        ),
        (
            "public_update",
            "ReporterLiveUpdate",
            json!({
                "type": "object",
                "description": "SSE event `public_update` (id `e<position>`): staff wrote an update for the reporter (its id, message and time, not who wrote it).",
                "required": ["position", "report_id", "public_update"],
                "additionalProperties": false,
                "properties": {
                    "position": { "type": "integer", "minimum": 1, "description": "The event's log position (the id without `e`)." },
                    "report_id": uuid,
                    "public_update": {
                        "type": "object",
                        "required": ["id", "message", "at"],
                        "additionalProperties": false,
                        "properties": { "id": uuid, "message": { "type": "string" }, "at": time }
                    }
                }
            }),
        ),
    ]
}

/// Names the events, ids and payloads of each SSE endpoint's 200 answer.
pub fn live_streams(v: &mut Value) {
    // Inline under `x-sse-events`, not components: OpenAPI 3.1 has no place for the
    // schema of one SSE event, so nothing standard would reference them.
    let schemas = live_schemas();
    for (path, events) in STREAMS {
        let pointer = format!("/paths/{}/get/responses/200", path.replace('/', "~1"));
        let Some(ok) = v.pointer_mut(&pointer) else {
            continue;
        };
        let mut listed = serde_json::Map::new();
        let mut lines = Vec::new();
        for event in *events {
            if let Some((_, name, schema)) = schemas.iter().find(|(e, _, _)| e == event) {
                let mut schema = schema.clone();
                schema["title"] = json!(name);
                listed.insert((*event).into(), schema);
                let id = if *event == "position" {
                    "p<seq>"
                } else {
                    "e<position>"
                };
                lines.push(format!("`{event}` (id `{id}`, data `{name}`)"));
            }
        }
        ok["description"] = json!(format!(
            "An event stream (`text/event-stream`): {}. `Last-Event-ID` takes the last id \
             received; a `:` comment line is a keep-alive.",
            lines.join(", ")
        ));
        ok["x-sse-events"] = Value::Object(listed);
        if let Some(media) = ok.pointer_mut("/content/text~1event-stream") {
            let example = if events.contains(&"report_status") {
                "id: e23\nevent: report_status\ndata: {\"position\":23,\"report_id\":\"0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\",\"status\":\"ASSIGNED\",\"at\":\"2026-11-29T10:00:00Z\"}\n\n"
            } else if events.contains(&"position") {
                "id: p42\nevent: position\ndata: {\"position\":42,\"patrol_id\":\"7d0e3c1a-5b7e-4c58-9f0e-2a1d3b4c5d6e\",\"station_id\":\"1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d\",\"latitude\":7.07,\"longitude\":125.61,\"recorded_at\":\"2026-11-29T10:00:00Z\"}\n\n"
            } else if events.contains(&"report") {
                "id: e18\nevent: report\ndata: {\"position\":18,\"type\":\"ReportTriaged\",\"report_id\":\"0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\",\"station_id\":\"1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d\",\"occurred_at\":\"2026-11-29T10:00:00Z\"}\n\n"
            } else {
                "id: e17\nevent: assignment\ndata: {\"position\":17,\"type\":\"PatrolAssignmentOpened\",\"report_id\":\"0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f\",\"patrol_id\":\"7d0e3c1a-5b7e-4c58-9f0e-2a1d3b4c5d6e\",\"occurred_at\":\"2026-11-29T10:00:00Z\"}\n\n"
            };
            media["example"] = json!(example);
        }
    }
}

fn operations(v: &mut Value) -> Vec<&mut Value> {
    let Some(paths) = v.get_mut("paths").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| {
            item.iter_mut()
                .filter(|(k, _)| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(|(_, op)| op)
        })
        .collect()
}

const NO_BODY: &str = "#/components/schemas/NoBody";

/// `oneOf [NoBody, null]` → `NoBody`, body not required.
pub fn optional_bodies(op: &mut Value) {
    let Some(body) = op.get_mut("requestBody") else {
        return;
    };
    let Some(schema) = body.pointer_mut("/content/application~1json/schema") else {
        return;
    };
    let is_optional_no_body = schema
        .get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|alts| {
            alts.len() == 2
                && alts.iter().any(|a| a["$ref"] == NO_BODY)
                && alts.iter().any(|a| a["type"] == "null")
        });
    if is_optional_no_body {
        *schema = json!({ "$ref": NO_BODY });
        body["required"] = json!(false);
    }
}

/// `[{}, {bearer: []}]` → `[]` and `x-security-optional: [{bearer: []}]`.
pub fn optional_security(op: &mut Value) {
    let Some(reqs) = op.get("security").and_then(Value::as_array) else {
        return;
    };
    let anonymous = reqs
        .iter()
        .any(|r| r.as_object().is_some_and(|o| o.is_empty()));
    let tokens: Vec<Value> = reqs
        .iter()
        .filter(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        .cloned()
        .collect();
    if anonymous && !tokens.is_empty() {
        op["security"] = json!([]);
        op["x-security-optional"] = Value::Array(tokens);
    }
}

/// Closed sets of query parameters, by name.
pub fn closed_sets(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for p in params {
        if p["in"] != "query" {
            continue;
        }
        match p["name"].as_str() {
            // Comma-separated statuses: `?status=NEW,ASSIGNED`.
            Some("status") if p["schema"]["type"] == "string" => {
                p["schema"] = json!({
                    "type": "array",
                    "items": { "$ref": "#/components/schemas/ReportStatus" },
                    // No `uniqueItems`: the server reads the list as a set, so a
                    // repeated status is accepted (and the schema must not call it
                    // invalid: schemathesis' negative-data check holds it to that).
                    "minItems": 1
                });
                p["style"] = json!("form");
                p["explode"] = json!(false);
                p["example"] = json!(["NEW", "ASSIGNED"]);
            }
            Some("overdue") => {
                p["schema"] = json!({ "type": "string", "enum": ["accept", "respond"] });
            }
            _ => {}
        }
    }
}

/// `WrittenReport` as `oneOf` two objects, each a view with the command's position.
pub fn written_report(v: &mut Value) {
    let Some(schemas) = v
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let Some(written) = schemas.get("WrittenReport").cloned() else {
        return;
    };
    let Some(position) = written["allOf"]
        .as_array()
        .and_then(|parts| {
            parts
                .iter()
                .find(|p| p["properties"].get("position").is_some())
        })
        .cloned()
    else {
        return;
    };
    for (name, view) in [
        ("WrittenStaffReport", "ReportView"),
        ("WrittenReporterReport", "ReporterReportView"),
    ] {
        schemas.insert(
            name.into(),
            json!({
                "description": format!("`{view}` and the log position of the command's last event."),
                "allOf": [ { "$ref": format!("#/components/schemas/{view}") }, position ]
            }),
        );
    }
    let mut one_of = json!({
        "oneOf": [
            { "$ref": "#/components/schemas/WrittenStaffReport" },
            { "$ref": "#/components/schemas/WrittenReporterReport" }
        ]
    });
    if let Some(d) = written.get("description") {
        one_of["description"] = d.clone();
    }
    schemas.insert("WrittenReport".into(), one_of);
}

/// (response component, status, problem slug, title, detail) of each problem answer.
const EXAMPLES: &[(&str, u16, &str, &str, &str)] = &[
    (
        "BadRequest",
        400,
        "bad-request",
        "Malformed request",
        "X-Min-Position must be an integer",
    ),
    (
        "Unauthorized",
        401,
        "unauthorized",
        "Authentication required",
        "the token has expired",
    ),
    (
        "Forbidden",
        403,
        "forbidden",
        "Forbidden",
        "only a DISPATCHER or SUPERVISOR of the report's station may do this",
    ),
    ("NotFound", 404, "not-found", "Not found", "no such report"),
    (
        "Conflict",
        409,
        "conflict",
        "Conflict",
        "the report is RESOLVED: it cannot be accepted",
    ),
    (
        "PayloadTooLarge",
        413,
        "payload-too-large",
        "Payload too large",
        "the body is over 1048576 bytes",
    ),
    (
        "TooManyRequests",
        429,
        "too-many-requests",
        "Too many requests",
        "too many attempts; retry after 30 s",
    ),
    (
        "InternalError",
        500,
        "internal",
        "Internal error",
        "an unexpected error; quote the error_id when reporting it",
    ),
    (
        "Unavailable",
        503,
        "unavailable",
        "Service unavailable",
        "read models have not reached position 42 yet; retry later",
    ),
];

/// One example per problem answer, with its own status (the `Problem` schema's field
/// examples are a 422's).
pub fn error_examples(v: &mut Value) {
    let Some(responses) = v
        .pointer_mut("/components/responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, status, slug, title, detail) in EXAMPLES {
        let Some(media) = responses
            .get_mut(*name)
            .and_then(|r| r.pointer_mut("/content/application~1problem+json"))
        else {
            continue;
        };
        let mut example = json!({
            "type": format!("/problems/{slug}"),
            "title": title,
            "status": status,
            "detail": detail,
        });
        if *status == 500 {
            example["error_id"] = json!("0b9c6a4e-3f1d-4c8e-9a57-2d8e1f0c7b35");
        }
        media["example"] = example;
    }
    if let Some(media) = responses
        .get_mut("ValidationFailed")
        .and_then(|r| r.pointer_mut("/content/application~1problem+json"))
    {
        media["example"] = json!({
            "type": "/problems/validation",
            "title": "Invalid request fields",
            "status": 422,
            "detail": "location.latitude: must be between -90 and 90",
            "errors": [{ "field": "location.latitude", "reason": "must be between -90 and 90" }]
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_empty_body_becomes_an_omittable_no_body() {
        let mut op = json!({"requestBody": {"content": {"application/json": {"schema":
            {"oneOf": [{"$ref": NO_BODY}, {"type": "null"}]}}}}});
        optional_bodies(&mut op);
        assert_eq!(
            op["requestBody"],
            json!({"content": {"application/json": {"schema": {"$ref": NO_BODY}}}, "required": false})
        );
    }

    #[test]
    fn an_optional_token_moves_to_the_extension_and_a_required_one_stays() {
        let mut open = json!({"security": [{}, {"bearer": []}]});
        optional_security(&mut open);
        assert_eq!(open["security"], json!([]));
        assert_eq!(open["x-security-optional"], json!([{"bearer": []}]));
        let mut closed = json!({"security": [{"bearer": []}]});
        optional_security(&mut closed);
        assert_eq!(closed, json!({"security": [{"bearer": []}]}));
    }

    #[test]
    fn each_error_answer_of_the_document_shows_its_own_status() {
        let doc: Value = serde_json::from_str(&crate::openapi::spec_json()).expect("JSON");
        let responses = doc["components"]["responses"]
            .as_object()
            .expect("responses");
        let mut seen = std::collections::BTreeSet::new();
        for (name, r) in responses {
            let Some(example) = r.pointer("/content/application~1problem+json/example") else {
                panic!("{name} has no example");
            };
            let status = example["status"].as_u64().expect("status");
            assert!(seen.insert(status), "two answers show status {status}");
            assert!(example["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("/problems/")));
        }
        assert!(seen.len() >= 10, "{seen:?}");
    }

    /// Real frames of the live hub validate against the documented payloads.
    #[test]
    fn live_frames_match_their_documented_schemas() {
        use precinct_eventlog::positions::{PatrolMoved, RecordedMove};
        let doc: Value = serde_json::from_str(&crate::openapi::spec_json()).expect("JSON");
        let mut schema = doc["paths"]["/patrols/stream"]["get"]["responses"]["200"]["x-sse-events"]
            ["position"]
            .clone();
        // Resolve against the whole document.
        schema["components"] = doc["components"].clone();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema");
        let now = chrono::Utc::now();
        let moved = RecordedMove {
            seq: 7,
            stored_at: now,
            moved: PatrolMoved {
                patrol_id: uuid::Uuid::new_v4(),
                station_id: uuid::Uuid::new_v4(),
                officer_id: uuid::Uuid::new_v4(),
                latitude: 7.07,
                longitude: 125.61,
                heading: Some(90.0),
                speed_mps: None,
                recorded_at: now,
                received_at: now,
            },
        };
        let frame = crate::live::frames::position_frame(&moved);
        assert_eq!((frame.event, frame.id()), ("position", "p7".to_string()));
        let data: Value = serde_json::from_str(&frame.data).expect("JSON data");
        let errors: Vec<String> = validator
            .iter_errors(&data)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{data}: {errors:?}");
        let mut bad = data.clone();
        bad["latitude"] = json!(91.0);
        assert!(!validator.is_valid(&bad));
        // Every stream names its events.
        for (path, events) in STREAMS {
            let ok = &doc["paths"][*path]["get"]["responses"]["200"];
            for e in *events {
                assert!(ok["x-sse-events"][*e]["required"].is_array(), "{path}: {e}");
            }
        }
    }

    #[test]
    fn the_document_round_trips_through_utoipa_with_every_rule_applied() {
        let shaped = serde_json::to_value(crate::openapi::spec()).expect("JSON");
        let mut again = shaped.clone();
        apply(&mut again);
        assert_eq!(shaped, again, "shaping twice changed the document");
        assert!(shaped.to_string().contains("x-security-optional"));
    }
}
