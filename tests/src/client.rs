//! The typed HTTP client of Precinct's API that the e2e suite, the chaos campaign and the
//! bench share: [`Call`] says what to send (one constructor per endpoint they use),
//! [`Client`] sends it and answers a [`Res`] (status, headers, JSON body) for status
//! assertions, or the 2xx body for set-up steps that must succeed.
//!
//! A `Call` is plain data on purpose: the chaos campaign sends the same calls through its
//! own retrying, recording loop (`chaos::workload`), the bench through its load loops.

use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

/// Half the side of the square area of every precinct the client creates, in degrees.
pub const PRECINCT_HALF: f64 = 0.05;

/// A response: status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Res {
    pub fn position(&self) -> u64 {
        self.body["position"].as_u64().unwrap_or(0)
    }
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_default().to_string()
    }
    /// The body of a 2xx answer; otherwise an error naming `what`, the status and body.
    pub fn ok(self, what: &str) -> anyhow::Result<Value> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            bail!("{what}: HTTP {} {}", self.status, self.body)
        }
    }
}

/// A signed-in account: its id and bearer token.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub token: String,
}

/// The roles an account can be registered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Citizen,
    Patrol,
    Dispatcher,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "CITIZEN",
            Role::Patrol => "PATROL",
            Role::Dispatcher => "DISPATCHER",
            Role::Supervisor => "SUPERVISOR",
            Role::Admin => "ADMIN",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Role::Citizen,
            Role::Patrol,
            Role::Dispatcher,
            Role::Supervisor,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// `POST /users/register`: a citizen registers itself; staff are registered by an ADMIN
/// with a role (and a station).
#[derive(Debug, Clone, Serialize)]
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station_id: Option<&'a str>,
}

/// Where a report happened.
#[derive(Debug, Clone, Serialize)]
pub struct Place<'a> {
    pub latitude: f64,
    pub longitude: f64,
    pub street: &'a str,
    pub city: &'a str,
}

/// `POST /crimes`.
#[derive(Debug, Clone, Serialize)]
pub struct NewReport<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub crime_types: &'a [&'a str],
    pub location: Place<'a>,
    pub contact: &'a str,
}

impl<'a> NewReport<'a> {
    /// A stolen bike at (lat, lon) on 1 Main St, Davao, with a contact number.
    pub fn bike(lat: f64, lon: f64) -> Self {
        Self {
            title: "Bike stolen",
            description: "My blue bike was taken from the rack",
            crime_types: &["Theft"],
            location: Place {
                latitude: lat,
                longitude: lon,
                street: "1 Main St",
                city: "Davao",
            },
            contact: "+63 900 000 0000",
        }
    }
}

/// `PUT /patrols/{id}/location`: one position fix.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "micros_opt")]
    pub recorded_at: Option<DateTime<Utc>>,
}

fn micros_opt<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        None => s.serialize_none(),
    }
}

/// One request: method, path (with its query), JSON body, extra headers, and a timeout
/// that overrides the client's.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    pub timeout: Option<Duration>,
}

fn to_json(v: &impl Serialize) -> Value {
    // Serialising these plain structs cannot fail (string keys, finite or null numbers).
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
            headers: Vec::new(),
            timeout: None,
        }
    }
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, None)
    }
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path, Some(body))
    }
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
    /// Answer only once the read models include `position` (the server waits up to 5 s).
    pub fn min_position(self, position: u64) -> Self {
        self.header("X-Min-Position", position.to_string())
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    // ------------------------------------------------------------ accounts and places

    pub fn login(email: &str, password: &str) -> Self {
        Self::post(
            "/users/login",
            json!({"email": email, "password": password}),
        )
    }
    pub fn register(account: &NewAccount<'_>) -> Self {
        Self::post("/users/register", to_json(account))
    }
    /// A precinct covering a square around (lat, lon) of ±[`PRECINCT_HALF`]°.
    pub fn precinct(name: &str, lat: f64, lon: f64) -> Self {
        let d = PRECINCT_HALF;
        let ring = json!([
            [lon - d, lat - d],
            [lon + d, lat - d],
            [lon + d, lat + d],
            [lon - d, lat + d],
            [lon - d, lat - d]
        ]);
        Self::post(
            "/stations",
            json!({"name": name, "kind": "PRECINCT", "latitude": lat, "longitude": lon,
                   "area": {"type": "Polygon", "coordinates": [ring]}}),
        )
    }
    /// A division taking reports of `crime_types` wherever they are.
    pub fn division(name: &str, crime_types: &[&str]) -> Self {
        Self::post(
            "/stations",
            json!({"name": name, "kind": "DIVISION", "crime_types": crime_types}),
        )
    }
    /// `GET /stations/{id}`.
    pub fn station(id: &str) -> Self {
        Self::get(format!("/stations/{id}"))
    }
    /// `PATCH /stations/{id}` with `changes` (a field left out is kept, `null` removes).
    pub fn edit_station(id: &str, changes: Value) -> Self {
        Self::new(Method::PATCH, format!("/stations/{id}"), Some(changes))
    }
    /// `POST /stations/{id}/area-preview`: which of the latest `limit` reports `area`
    /// would route elsewhere.
    pub fn preview_area(id: &str, area: Value, limit: Option<u32>) -> Self {
        let mut body = json!({ "area": area });
        if let Some(limit) = limit {
            body["limit"] = json!(limit);
        }
        Self::post(format!("/stations/{id}/area-preview"), body)
    }
    /// A GeoJSON square of ±`half`° around (lat, lon).
    pub fn square_area(lat: f64, lon: f64, half: f64) -> Value {
        json!({"type": "Polygon", "coordinates": [[
            [lon - half, lat - half],
            [lon + half, lat - half],
            [lon + half, lat + half],
            [lon - half, lat + half],
            [lon - half, lat - half]
        ]]})
    }
    pub fn stations() -> Self {
        Self::get("/stations?limit=1")
    }
    /// `GET /users?{query}` (query without the `?`, may be empty).
    pub fn users(query: &str) -> Self {
        Self::get(format!("/users?{query}"))
    }
    /// `GET /users/{id}`.
    pub fn user(id: &str) -> Self {
        Self::get(format!("/users/{id}"))
    }
    /// `PATCH /users/{id}` with `changes` (`name`, `role`, `station_id`).
    pub fn update_user(id: &str, changes: Value) -> Self {
        Self::new(Method::PATCH, format!("/users/{id}"), Some(changes))
    }
    /// `POST /users/{id}/deactivate`.
    pub fn deactivate(id: &str) -> Self {
        Self::post(format!("/users/{id}/deactivate"), json!({}))
    }
    /// `POST /users/{id}/reactivate`.
    pub fn reactivate(id: &str) -> Self {
        Self::post(format!("/users/{id}/reactivate"), json!({}))
    }
    /// `POST /users/{id}/password`: an ADMIN's reset.
    pub fn reset_password(id: &str, new: &str) -> Self {
        Self::post(
            format!("/users/{id}/password"),
            json!({"new_password": new}),
        )
    }
    /// `GET /me`.
    pub fn me() -> Self {
        Self::get("/me")
    }
    /// `POST /me/password`.
    pub fn change_password(current: &str, new: &str) -> Self {
        Self::post(
            "/me/password",
            json!({"current_password": current, "new_password": new}),
        )
    }
    pub fn register_patrol(call_sign: &str, station: &str, officers: &[&str]) -> Self {
        Self::post(
            "/patrols/register",
            json!({"call_sign": call_sign, "station_id": station, "officer_ids": officers}),
        )
    }
    pub fn location(patrol: &str, fix: &Fix) -> Self {
        Self::new(
            Method::PUT,
            format!("/patrols/{patrol}/location"),
            Some(to_json(fix)),
        )
    }
    /// `POST /patrols/{id}/locations`: several fixes, oldest first.
    pub fn locations(patrol: &str, fixes: &[Fix]) -> Self {
        Self::post(
            format!("/patrols/{patrol}/locations"),
            json!({ "fixes": to_json(&fixes) }),
        )
    }

    // ------------------------------------------------------------ a report's lifecycle

    pub fn submit(report: &NewReport<'_>) -> Self {
        Self::post("/crimes", to_json(report))
    }
    /// `patrol` None: the server picks one (auto-assignment).
    pub fn dispatch(report: &str, patrol: Option<&str>) -> Self {
        let mut body = json!({"crime_id": report});
        if let Some(p) = patrol {
            body["patrol_id"] = json!(p);
        }
        Self::post("/dispatch", body)
    }
    pub fn triage(report: &str, priority: &str) -> Self {
        Self::post(
            format!("/crimes/{report}/triage"),
            json!({"priority": priority}),
        )
    }
    pub fn accept(report: &str) -> Self {
        Self::post(format!("/crimes/{report}/accept"), json!({}))
    }
    pub fn decline(report: &str, reason: &str) -> Self {
        Self::post(
            format!("/crimes/{report}/decline"),
            json!({"reason": reason}),
        )
    }
    pub fn respond(report: &str) -> Self {
        Self::post(format!("/crimes/{report}/respond"), json!({}))
    }
    pub fn resolve(report: &str, notes: &str) -> Self {
        Self::post(
            format!("/crimes/{report}/resolve"),
            json!({"resolution_notes": notes}),
        )
    }
    pub fn note(report: &str, note: &str) -> Self {
        Self::post(format!("/crimes/{report}/notes"), json!({"note": note}))
    }
    /// `media_type`: PHOTO, VIDEO, AUDIO or DOCUMENT.
    pub fn evidence(report: &str, url: &str, media_type: &str) -> Self {
        Self::post(
            format!("/crimes/{report}/evidence"),
            json!({"url": url, "media_type": media_type}),
        )
    }
    pub fn approve_closure(report: &str) -> Self {
        Self::post(format!("/crimes/{report}/closure/approve"), json!({}))
    }
    pub fn reject_closure(report: &str, reason: &str) -> Self {
        Self::post(
            format!("/crimes/{report}/closure/reject"),
            json!({"reason": reason}),
        )
    }
    /// Rejects a report as invalid.
    pub fn reject(report: &str, justification: &str) -> Self {
        Self::post(
            format!("/crimes/{report}/reject"),
            json!({"justification": justification}),
        )
    }
    pub fn withdraw(report: &str, reason: Option<&str>) -> Self {
        let body = reason.map(|r| json!({"reason": r}));
        Self::new(Method::DELETE, format!("/crimes/{report}"), body)
    }

    // ------------------------------------------------------------ reads

    pub fn report(report: &str) -> Self {
        Self::get(format!("/crimes/{report}"))
    }
    /// The report as it was at `at`.
    pub fn report_as_of(report: &str, at: DateTime<Utc>) -> Self {
        let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        Self::get(format!("/crimes/{report}?{}", query(&[("as_of", &at)])))
    }
    pub fn history(report: &str) -> Self {
        Self::get(format!("/crimes/{report}/history"))
    }
    /// The public list of reports within `radius_m` of (lat, lon).
    pub fn near(lat: f64, lon: f64, radius_m: u32) -> Self {
        Self::get(format!("/crimes?near={lat},{lon}&radius_m={radius_m}"))
    }
    /// The station's queue of reports.
    pub fn queue() -> Self {
        Self::get("/queues/reports")
    }
    /// One page of patrol workloads (`cursor`: the previous page's `next_cursor`).
    pub fn workloads(limit: Option<u32>, cursor: Option<&str>) -> Self {
        let limit = limit.map(|l| l.to_string());
        let mut pairs = Vec::new();
        if let Some(l) = &limit {
            pairs.push(("limit", l.as_str()));
        }
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        if pairs.is_empty() {
            Self::get("/workloads")
        } else {
            Self::get(format!("/workloads?{}", query(&pairs)))
        }
    }
}

/// A base URL and the HTTP client that sends to it.
#[derive(Clone, Debug)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl From<&Client> for Client {
    fn from(c: &Client) -> Self {
        c.clone()
    }
}

impl Client {
    pub fn new(base: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            http,
            base: base.into(),
        }
    }

    fn request(&self, call: &Call, token: Option<&str>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in &call.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        if let Some(t) = call.timeout {
            req = req.timeout(t);
        }
        req
    }

    /// Sends `call`; an error only when no complete answer arrived (connection, timeout,
    /// body cut off).
    pub async fn send(&self, call: &Call, token: Option<&str>) -> Result<Res, reqwest::Error> {
        let res = self.request(call, token).send().await?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await?;
        Ok(Res {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// Sends `call` and reads the whole answer, but only for its status (load loops: no
    /// JSON parsing on the client's side).
    pub async fn status(
        &self,
        call: &Call,
        token: Option<&str>,
    ) -> Result<StatusCode, reqwest::Error> {
        let res = self.request(call, token).send().await?;
        let status = res.status();
        res.bytes().await?;
        Ok(status)
    }

    /// [`Client::send`] with the call named in the error.
    pub async fn call(&self, call: &Call, token: Option<&str>) -> anyhow::Result<Res> {
        self.send(call, token)
            .await
            .with_context(|| format!("{} {}", call.method, call.path))
    }

    /// Sends a call that must succeed: its 2xx body, or an error with status and body.
    pub async fn run(&self, call: &Call, token: Option<&str>) -> anyhow::Result<Value> {
        self.call(call, token)
            .await?
            .ok(&format!("{} {}", call.method, call.path))
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Session> {
        let body = self
            .call(&Call::login(email, password), None)
            .await?
            .ok(&format!("login {email}"))?;
        Ok(Session {
            id: body["user"]["id"].as_str().unwrap_or_default().to_string(),
            token: body["access_token"]
                .as_str()
                .context("login without access_token")?
                .to_string(),
        })
    }

    /// Waits (up to `bound`) until the read models include `position`, through
    /// `X-Min-Position` (the server waits up to 5 s per request and answers 503 before).
    pub async fn caught_up(&self, position: u64, bound: Duration) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + bound;
        loop {
            let r = self
                .call(&Call::stations().min_position(position), None)
                .await;
            match r {
                Ok(r) if r.status.is_success() => return Ok(()),
                Ok(r) if r.status != StatusCode::SERVICE_UNAVAILABLE => {
                    bail!(
                        "waiting for position {position}: HTTP {} {}",
                        r.status,
                        r.body
                    )
                }
                _ if std::time::Instant::now() > deadline => {
                    bail!("the read models did not reach position {position} within {bound:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every call the client can build is an operation of the API's OpenAPI document, and
    //! its body is one the documented request schema accepts.

    use super::*;

    fn spec() -> Value {
        serde_json::from_str(&precinct_api::openapi::spec_json()).expect("the spec is JSON")
    }

    /// The documented path template that `path` (without its query) is an instance of.
    fn template<'a>(spec: &'a Value, path: &str) -> Option<&'a str> {
        let path = path.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.split('/').collect();
        spec["paths"].as_object()?.keys().find_map(|t| {
            let tp: Vec<&str> = t.split('/').collect();
            let same = tp.len() == parts.len()
                && tp
                    .iter()
                    .zip(&parts)
                    .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()));
            same.then_some(t.as_str())
        })
    }

    fn check(spec: &Value, call: &Call) -> Result<(), String> {
        let what = format!("{} {}", call.method, call.path);
        let t = template(spec, &call.path).ok_or(format!("{what}: no such path"))?;
        let op = &spec["paths"][t][call.method.as_str().to_lowercase()];
        if !op.is_object() {
            return Err(format!("{what}: {} {t} is not documented", call.method));
        }
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        match (&call.body, schema.as_object()) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(format!("{what}: sends a body the operation does not take")),
            (Some(body), Some(schema)) => {
                // The schema with the document's components beside it, for its `$ref`s.
                let mut root = schema.clone();
                root.insert("components".into(), spec["components"].clone());
                let v = jsonschema::draft202012::options()
                    .should_validate_formats(true)
                    .build(&Value::Object(root))
                    .map_err(|e| format!("{what}: schema: {e}"))?;
                let errors: Vec<String> = v.iter_errors(body).map(|e| e.to_string()).collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{what}: {body} does not match: {errors:?}"))
                }
            }
        }
    }

    #[test]
    fn every_call_is_a_documented_operation_with_a_valid_body() {
        let spec = spec();
        let id = "8c1f6f5e-55a4-4d39-9a55-6a4f1d1c2b3a";
        let account = NewAccount {
            email: "d@precinct.test",
            password: "s3cret-passw0rd",
            name: "D".into(),
            role: Some(Role::Dispatcher.as_str()),
            station_id: Some(id),
        };
        let fix = Fix {
            latitude: 7.07,
            longitude: 125.61,
            heading: Some(90.0),
            speed_mps: Some(8.5),
            recorded_at: Some(Utc::now()),
        };
        let calls = [
            Call::login("a@precinct.test", "pw"),
            Call::register(&account),
            Call::register(&NewAccount {
                role: None,
                station_id: None,
                ..account.clone()
            }),
            Call::precinct("PS1", 7.07, 125.61),
            Call::division("Cyber", &["Fraud"]),
            Call::stations(),
            Call::register_patrol("ALPHA-1", id, &[id]),
            Call::location(id, &fix),
            Call::submit(&NewReport::bike(7.07, 125.61)),
            Call::dispatch(id, Some(id)),
            Call::dispatch(id, None),
            Call::triage(id, "HIGH"),
            Call::accept(id),
            Call::decline(id, "Out of fuel"),
            Call::respond(id),
            Call::resolve(id, "Recovered"),
            Call::note(id, "Witness called back"),
            Call::evidence(id, "https://media.precinct.test/1.jpg", "PHOTO"),
            Call::approve_closure(id),
            Call::reject_closure(id, "Need the serial number"),
            Call::reject(id, "Duplicate of another report"),
            Call::withdraw(id, Some("Found it")),
            Call::withdraw(id, None),
            Call::report(id),
            Call::report_as_of(id, Utc::now()),
            Call::history(id),
            Call::near(7.07, 125.61, 500),
            Call::queue(),
            Call::workloads(Some(100), Some("abc+/=")),
            Call::workloads(None, None),
        ];
        let wrong: Vec<String> = calls.iter().filter_map(|c| check(&spec, c).err()).collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn a_call_the_api_does_not_document_is_caught() {
        let spec = spec();
        let id = "8c1f6f5e-55a4-4d39-9a55-6a4f1d1c2b3a";
        for bad in [
            Call::post(format!("/crimes/{id}/resolve"), json!({"notes": "x"})),
            Call::post(format!("/crimes/{id}/close"), json!({})),
            Call::new(Method::PATCH, "/dispatch", Some(json!({}))),
        ] {
            assert!(check(&spec, &bad).is_err(), "{} {}", bad.method, bad.path);
        }
    }

    #[test]
    fn roles_parse_back() {
        for r in [
            Role::Citizen,
            Role::Patrol,
            Role::Dispatcher,
            Role::Supervisor,
            Role::Admin,
        ] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("SHERIFF".parse::<Role>().is_err());
    }
}
