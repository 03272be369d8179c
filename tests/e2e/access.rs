//! Authorization follows the account as it is now, not as its token remembers it: role
//! and station changes, deactivation and erasure reach tokens already issued (in every
//! API process, within a second), open SSE streams and patrol membership; a SUPERVISOR's
//! audit trail is their station's; one account holds a bounded number of SSE streams;
//! an erased account's e-mail and name are gone from the log. Real NATS and PostgreSQL.

use std::time::{Duration, Instant};

use precinct_domain::account::{Account, AccountCommand};
use precinct_domain::email::{email_stream_id, EmailCommand, EmailReservation};
use precinct_domain::ids::{AccountId, StationId};
use precinct_domain::values::{Email, PasswordHash, Role};
use precinct_eventlog::{Actor, CommandMeta, StreamId};
use precinct_tests::app::{Options, Res, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
const LAT_B: f64 = 9.0;
const LON_B: f64 = 127.0;
/// The bound on how long a change to an account may take to reach every API process.
const PROPAGATION_BOUND: Duration = Duration::from_secs(1);

fn ok(r: &Res) {
    assert!(
        r.status.is_success(),
        "expected success, got {}: {}",
        r.status,
        r.body
    );
}

fn problem(r: &Res, expected: StatusCode) {
    assert_eq!(r.status, expected, "body: {}", r.body);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(r.body["status"], expected.as_u16());
}

/// Two precincts, a dispatcher and a supervisor of A, an officer of A in patrol
/// ALPHA-1, and a citizen.
struct World {
    app: TestApp,
    admin: String,
    station_a: String,
    station_b: String,
    dispatcher_id: String,
    dispatcher: String,
    supervisor: String,
    officer_id: String,
    officer: String,
    patrol: String,
    citizen_id: String,
    citizen: String,
}

async fn world_with(opts: Options) -> World {
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    let admin = app.admin().await;
    let station_a = app.precinct(&admin, "PS-A", LAT, LON).await;
    let station_b = app.precinct(&admin, "PS-B", LAT_B, LON_B).await;
    let (dispatcher_id, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station_a)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station_a)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station_a)).await;
    let patrol = app
        .patrol(&dispatcher, &station_a, "ALPHA-1", &[&officer_id])
        .await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    World {
        app,
        admin,
        station_a,
        station_b,
        dispatcher_id,
        dispatcher,
        supervisor,
        officer_id,
        officer,
        patrol,
        citizen_id,
        citizen,
    }
}

async fn world() -> World {
    world_with(Options::default()).await
}

async fn change_role(w: &World, account: &str, role: &str, station: Option<&str>) -> Res {
    let mut body = json!({ "role": role });
    if let Some(s) = station {
        body["station_id"] = json!(s);
    }
    let r = w
        .app
        .patch(
            &format!("/admin/users/{account}/role"),
            Some(&w.admin),
            body,
        )
        .await;
    ok(&r);
    r
}

/// A citizen's report at station A, assigned to ALPHA-1.
async fn assigned_report(w: &World) -> String {
    assigned_report_at(w).await.0
}

/// A report dispatched to ALPHA-1, and the log position of the dispatch (what a reader
/// other than the dispatcher waits for).
async fn assigned_report_at(w: &World) -> (String, u64) {
    let id = w
        .app
        .report(Some(&w.citizen), LAT, LON, &["Theft"])
        .await
        .id();
    let dispatched = w
        .app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol}),
        )
        .await;
    ok(&dispatched);
    (id, dispatched.position())
}

fn uuid(s: &str) -> uuid::Uuid {
    s.parse().expect("uuid")
}

/// Runs an account command straight through the application layer, as the code before
/// this change did (or as a route that does not exist yet would): e.g. a role change
/// that leaves the officer in their patrols, or a deactivation.
async fn account_command(app: &TestApp, id: &str, cmd: AccountCommand) -> u64 {
    let app_layer = precinct_app::App::new(app.log.clone());
    let meta = CommandMeta::new(uuid::Uuid::new_v4(), Actor::System);
    let id = uuid(id);
    let out = app_layer
        .run::<Account>(&meta, id, async |uow| {
            uow.execute::<Account>(id, cmd.clone()).await?;
            Ok(())
        })
        .await
        .expect("account command");
    out.position
}

/// The address of account `id`, as an ADMIN reads it.
async fn email_of(w: &World, id: &str) -> String {
    w.app
        .get(&format!("/users/{id}"), Some(&w.admin))
        .await
        .body["email"]
        .as_str()
        .expect("email")
        .to_string()
}

/// Polls `probe` every 10 ms until it answers `expected`. Answers the time after the
/// start from which the change held: when the last probe that did *not* get `expected`
/// was sent (zero if the first probe already got it); `None` if it never did. The
/// property under test is about requests that start after the change, so send times are
/// what count — on a loaded machine a request may take a while to answer, and when its
/// answer arrives says nothing about when it was decided.
async fn time_until(
    bound: Duration,
    expected: StatusCode,
    mut probe: impl AsyncFnMut() -> StatusCode,
) -> Option<Duration> {
    let started = Instant::now();
    let mut held_from = Duration::ZERO;
    while started.elapsed() < bound * 3 {
        let sent = started.elapsed();
        if probe().await == expected {
            return Some(held_from);
        }
        held_from = sent;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

// ---------------------------------------------------------------------------------------
// Item 5: tokens, patrols and streams follow the account.

#[tokio::test]
async fn an_officer_moved_to_another_station_loses_the_old_station_and_its_patrols() {
    let w = world().await;
    let app = &w.app;
    let (id, dispatched) = assigned_report_at(&w).await;
    ok(&app
        .get_at(&format!("/crimes/{id}"), Some(&w.officer), dispatched)
        .await);

    let moved = change_role(&w, &w.officer_id, "PATROL", Some(&w.station_b)).await;
    assert_eq!(moved.body["station_id"], w.station_b.as_str());

    // The token issued at station A no longer opens station A's report, nor accepts it.
    let head = app.log.head().await.expect("head");
    let r = app
        .post(&format!("/crimes/{id}/accept"), Some(&w.officer), json!({}))
        .await;
    assert!(
        matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "a station-A report accepted by an officer of station B: {} {}",
        r.status,
        r.body
    );
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    problem(
        &app.get(&format!("/crimes/{id}"), Some(&w.officer)).await,
        StatusCode::NOT_FOUND,
    );

    // The officer left ALPHA-1 in the same append as the station change.
    let events = app
        .log
        .read(&StreamId::new("patrol", uuid(&w.patrol)))
        .await
        .expect("read");
    let update = events
        .iter()
        .rev()
        .find(|e| e.envelope.event_type == "PatrolUpdated")
        .expect("the patrol was updated");
    assert_eq!(update.data["officer_ids"], json!([]), "{:?}", update.data);
    let change = app
        .log
        .read(&StreamId::new("account", uuid(&w.officer_id)))
        .await
        .expect("read")
        .into_iter()
        .find(|e| e.envelope.event_type == "AccountRoleChanged")
        .expect("role changed");
    assert_eq!(
        update.envelope.command_id, change.envelope.command_id,
        "one command"
    );
    let row = app
        .get_at(
            &format!("/patrols/{}", w.patrol),
            Some(&w.dispatcher),
            moved.position(),
        )
        .await;
    ok(&row);
    assert_eq!(row.body["officer_ids"], json!([]), "{}", row.body);
    // No position may be pushed for the old patrol.
    let r = app
        .put(
            &format!("/patrols/{}/location", w.patrol),
            Some(&w.officer),
            json!({"latitude": LAT, "longitude": LON}),
        )
        .await;
    assert!(
        matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{} {}",
        r.status,
        r.body
    );
}

#[tokio::test]
async fn a_demoted_officer_still_listed_in_a_patrol_can_do_nothing_as_its_member() {
    // Membership left behind by a role change made before patrols were cleaned up (the
    // command below does not touch patrols): the current role decides, not the list.
    let w = world().await;
    let app = &w.app;
    let id = assigned_report(&w).await;
    let fix = json!({"latitude": LAT, "longitude": LON});
    assert_eq!(
        app.put(
            &format!("/patrols/{}/location", w.patrol),
            Some(&w.officer),
            fix.clone()
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    let at = chrono::Utc::now();
    account_command(
        app,
        &w.officer_id,
        AccountCommand::ChangeRole {
            role: Role::Dispatcher,
            station_id: Some(StationId::new(uuid(&w.station_a))),
            at,
        },
    )
    .await;
    let started = Instant::now();
    let refused = time_until(PROPAGATION_BOUND, StatusCode::FORBIDDEN, async || {
        app.put(
            &format!("/patrols/{}/location", w.patrol),
            Some(&w.officer),
            fix.clone(),
        )
        .await
        .status
    })
    .await;
    assert!(
        refused.is_some_and(|t| t < PROPAGATION_BOUND),
        "a demoted officer still pushes positions after {:?}",
        started.elapsed()
    );
    for action in ["accept", "respond", "decline", "resolve"] {
        let body = json!({"reason": "gone", "resolution_notes": "done"});
        let body = match action {
            "decline" => json!({"reason": body["reason"]}),
            "resolve" => json!({"resolution_notes": body["resolution_notes"]}),
            _ => json!({}),
        };
        let r = app
            .post(&format!("/crimes/{id}/{action}"), Some(&w.officer), body)
            .await;
        problem(&r, StatusCode::FORBIDDEN);
    }
    let r = app
        .post(
            &format!("/crimes/{id}/evidence"),
            Some(&w.officer),
            json!({"url": "https://evidence.example/1.jpg", "media_type": "PHOTO"}),
        )
        .await;
    problem(&r, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_officer_moved_while_still_listed_in_a_patrol_sees_nothing_of_it() {
    // As above, a crew entry left behind by a move to another station (station B,
    // still PATROL): the old patrol's work is neither listed nor streamed to them.
    let w = world().await;
    let app = &w.app;
    let id = assigned_report(&w).await;
    let listed = |r: &Res| {
        r.body["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["id"] == id.as_str()))
    };
    app.caught_up(app.log.head().await.expect("head")).await;
    assert!(listed(&app.get("/me/assignments", Some(&w.officer)).await));
    let note = json!({"note": "Suspect seen nearby"});
    let mut before = Stream::open(app, "/me/assignments/stream", &w.officer)
        .await
        .expect("inbox stream");
    ok(&app
        .post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher),
            note.clone(),
        )
        .await);
    assert!(
        before
            .gets_within("assignment", Duration::from_secs(2))
            .await,
        "control: a crew member's inbox gets the patrol's report changes"
    );

    account_command(
        app,
        &w.officer_id,
        AccountCommand::ChangeRole {
            role: Role::Patrol,
            station_id: Some(StationId::new(uuid(&w.station_b))),
            at: chrono::Utc::now(),
        },
    )
    .await;
    let mut gone = false;
    for _ in 0..100 {
        if !listed(&app.get("/me/assignments", Some(&w.officer)).await) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        gone,
        "the old station's assignment is still in the moved officer's inbox"
    );
    assert!(before.ends_within(PROPAGATION_BOUND).await);
    let mut after = Stream::open(app, "/me/assignments/stream", &w.officer)
        .await
        .expect("a PATROL of station B may open an inbox stream");
    ok(&app
        .post(&format!("/crimes/{id}/notes"), Some(&w.dispatcher), note)
        .await);
    assert!(
        !after
            .gets_within("assignment", Duration::from_millis(700))
            .await,
        "the old patrol's report changes still reach the moved officer"
    );
}

#[tokio::test]
async fn a_deactivated_account_is_refused_even_after_reactivation() {
    let w = world().await;
    let app = &w.app;
    // Deactivation through its route: the token already issued is refused.
    ok(&app.get("/queues/reports", Some(&w.dispatcher)).await);
    ok(&app
        .post(
            &format!("/users/{}/deactivate", w.dispatcher_id),
            Some(&w.admin),
            json!({}),
        )
        .await);
    let refused = time_until(PROPAGATION_BOUND, StatusCode::UNAUTHORIZED, async || {
        app.get("/queues/reports", Some(&w.dispatcher)).await.status
    })
    .await;
    assert!(
        refused.is_some_and(|t| t < PROPAGATION_BOUND),
        "deactivated: {refused:?}"
    );
    problem(
        &app.get("/queues/reports", Some(&w.dispatcher)).await,
        StatusCode::UNAUTHORIZED,
    );
    // Reactivation does not bring the old token back: it was issued before the
    // deactivation. A new login works.
    ok(&app
        .post(
            &format!("/users/{}/reactivate", w.dispatcher_id),
            Some(&w.admin),
            json!({}),
        )
        .await);
    // A new login (it reads the account from the log) and a request with its token:
    // the reactivation is in force (no sleep standing in for propagation), so the
    // refusal below is the old token's, not the deactivation still being applied.
    let email = email_of(&w, &w.dispatcher_id).await;
    let fresh = app.login(&email, precinct_tests::world::PASSWORD).await;
    ok(&app.get("/queues/reports", Some(&fresh)).await);
    problem(
        &app.get("/queues/reports", Some(&w.dispatcher)).await,
        StatusCode::UNAUTHORIZED,
    );
}

/// ADR 0011: the process that answered a change to an account enforces it for the very
/// next request, whatever its view of the accounts has applied yet — ten rounds of
/// deactivate (the token in hand refused at once) and reactivate (a new login acting
/// at once), with no wait between a change and the request that checks it.
#[tokio::test]
async fn the_process_that_changed_an_account_enforces_the_change_at_once() {
    let w = world().await;
    let app = &w.app;
    let email = email_of(&w, &w.dispatcher_id).await;
    let mut token = w.dispatcher.clone();
    for round in 0..10 {
        ok(&app.get("/queues/reports", Some(&token)).await);
        ok(&app
            .post(
                &format!("/users/{}/deactivate", w.dispatcher_id),
                Some(&w.admin),
                json!({}),
            )
            .await);
        let r = app.get("/queues/reports", Some(&token)).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "round {round}: {}",
            r.body
        );
        ok(&app
            .post(
                &format!("/users/{}/reactivate", w.dispatcher_id),
                Some(&w.admin),
                json!({}),
            )
            .await);
        token = app.login(&email, precinct_tests::world::PASSWORD).await;
    }
    ok(&app.get("/queues/reports", Some(&token)).await);
}

#[tokio::test]
async fn an_erased_account_cannot_log_in_and_its_token_is_refused() {
    let w = world().await;
    let app = &w.app;
    ok(&app.get("/me/crimes", Some(&w.citizen)).await);
    let email = format!("erased-{}@precinct.test", precinct_tests::unique_prefix());
    let r = app
        .post(
            "/users/register",
            None,
            json!({"email": email, "password": PASSWORD, "name": "To Be Erased"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let erased_id = r.id();
    let erased = app.login(&email, PASSWORD).await;
    ok(&app.get("/me/crimes", Some(&erased)).await);
    ok(&app
        .delete(&format!("/admin/data-subjects/{erased_id}"), Some(&w.admin))
        .await);
    // At once on the process that erased the account (ADR 0011), whatever its view of
    // the accounts has applied yet.
    problem(
        &app.get("/me/crimes", Some(&erased)).await,
        StatusCode::UNAUTHORIZED,
    );
    let login = app
        .post(
            "/users/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    problem(&login, StatusCode::UNAUTHORIZED);
    // Another citizen is untouched.
    ok(&app.get("/me/crimes", Some(&w.citizen)).await);
}

/// A Server-Sent Events connection read by a task: `ended` fires when the server closes
/// it; dropping it closes the connection.
struct Stream {
    /// `Some(event name)` per SSE event, `None` when the stream ended.
    events: mpsc::UnboundedReceiver<Option<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Stream {
    async fn open(app: &TestApp, path: &str, token: &str) -> Result<Self, (StatusCode, Value)> {
        let res = reqwest::Client::new()
            .get(format!("{}{path}", app.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("SSE request");
        if res.status() != StatusCode::OK {
            let status = res.status();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let content_type = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body: Value = res.json().await.unwrap_or(Value::Null);
            body["_retry_after"] = json!(retry_after);
            body["_content_type"] = json!(content_type);
            return Err((status, body));
        }
        let (tx, events) = mpsc::unbounded_channel();
        let mut res = res;
        let reader = tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = res.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if let Some(name) = block.lines().find_map(|l| l.strip_prefix("event:")) {
                        let _ = tx.send(Some(name.trim().to_string()));
                    }
                }
            }
            let _ = tx.send(None);
        });
        Ok(Self { events, reader })
    }

    /// Whether the server ends the stream within `wait`.
    async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(Some(_))) => continue,
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
    }

    /// Whether an event named `name` arrives within `wait`.
    async fn gets_within(&mut self, name: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(Some(n))) if n == name => return true,
                Ok(Some(Some(_))) => continue,
                _ => return false,
            }
        }
    }
}

#[tokio::test]
async fn open_streams_close_when_their_account_changes() {
    let w = world().await;
    let app = &w.app;
    let mut desk = Stream::open(app, "/patrols/stream", &w.dispatcher)
        .await
        .expect("desk stream");
    let mut inbox = Stream::open(app, "/me/assignments/stream", &w.officer)
        .await
        .expect("inbox stream");
    let mut unrelated = Stream::open(app, "/patrols/stream", &w.supervisor)
        .await
        .expect("supervisor stream");
    // A change to someone else closes nothing.
    change_role(&w, &w.citizen_id, "CITIZEN", None).await;
    assert!(!desk.ends_within(Duration::from_millis(300)).await);

    change_role(&w, &w.dispatcher_id, "CITIZEN", None).await;
    assert!(
        desk.ends_within(PROPAGATION_BOUND).await,
        "the demoted dispatcher's station stream is still open"
    );
    change_role(&w, &w.officer_id, "PATROL", Some(&w.station_b)).await;
    assert!(
        inbox.ends_within(PROPAGATION_BOUND).await,
        "the moved officer's inbox stream is still open"
    );
    assert!(
        !unrelated.ends_within(Duration::from_millis(300)).await,
        "another account's stream stays open"
    );
    // The demoted dispatcher cannot open a new one.
    let again = Stream::open(app, "/patrols/stream", &w.dispatcher).await;
    assert!(
        matches!(&again, Err((StatusCode::FORBIDDEN, _))),
        "a CITIZEN opened a station stream"
    );
}

#[tokio::test]
async fn a_change_made_through_one_api_process_is_enforced_by_another_within_a_second() {
    let w = world().await;
    // A second API process on the same log and database (no projector, no SLA worker).
    let config = precinct::Config {
        roles: precinct::Roles {
            api: true,
            projector: false,
            sla: false,
            live: true,
            webhooks: false,
        },
        ..w.app.config.clone()
    };
    let other = TestApp::start(config, w.app.prefix.clone(), w.app.database_url.clone())
        .await
        .expect("second process");
    let (id, dispatched) = assigned_report_at(&w).await;
    ok(&other
        .get_at(&format!("/crimes/{id}"), Some(&w.dispatcher), dispatched)
        .await);
    ok(&other.get("/queues/reports", Some(&w.dispatcher)).await);

    // Once the view is current, requests are authorized from memory, not from the log.
    let mut fresh = false;
    for _ in 0..100 {
        if metric(&other, &w.admin, "precinct_account_view_fresh").await == 1.0 {
            fresh = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fresh, "the account view never became current");
    let reads = metric(&other, &w.admin, "precinct_account_view_log_reads_total").await;
    for _ in 0..20 {
        ok(&other.get("/queues/reports", Some(&w.dispatcher)).await);
    }
    let more = metric(&other, &w.admin, "precinct_account_view_log_reads_total").await - reads;
    assert!(
        more < 5.0,
        "{more} of 20 requests read the account from the log"
    );

    // Demoted through the first process; the second refuses the old token's desk powers.
    let started = Instant::now();
    change_role(&w, &w.dispatcher_id, "CITIZEN", None).await;
    let acked = started.elapsed();
    let took = time_until(PROPAGATION_BOUND, StatusCode::FORBIDDEN, async || {
        other
            .get("/queues/reports", Some(&w.dispatcher))
            .await
            .status
    })
    .await;
    println!(
        "role change → refused by the other API process: {:?} after the change was acknowledged ({acked:?} to acknowledge)",
        took
    );
    assert!(
        took.is_some_and(|t| t < PROPAGATION_BOUND),
        "the other process still honours the demoted token: {took:?}"
    );

    // A deactivation through `POST /users/{id}/deactivate` on the first process reaches
    // the second too (401).
    let started = Instant::now();
    ok(&w
        .app
        .post(
            &format!("/users/{}/deactivate", w.dispatcher_id),
            Some(&w.admin),
            json!({}),
        )
        .await);
    let acked = started.elapsed();
    let took = time_until(PROPAGATION_BOUND, StatusCode::UNAUTHORIZED, async || {
        other.get("/me/crimes", Some(&w.dispatcher)).await.status
    })
    .await;
    println!(
        "deactivation (POST /users/{{id}}/deactivate on process 1) → 401 from the other API process: {took:?} after the change was acknowledged ({acked:?} to acknowledge)"
    );
    assert!(took.is_some_and(|t| t < PROPAGATION_BOUND), "{took:?}");

    // A password change through the first process: the old token is refused by the
    // second.
    let citizen = w.citizen.clone();
    let changed = w
        .app
        .post(
            "/me/password",
            Some(&citizen),
            json!({"current_password": PASSWORD, "new_password": "another long password"}),
        )
        .await;
    ok(&changed);
    let took = time_until(PROPAGATION_BOUND, StatusCode::UNAUTHORIZED, async || {
        other.get("/me/crimes", Some(&citizen)).await.status
    })
    .await;
    println!(
        "password change on process 1 → 401 for the old token from the other API process: {took:?}"
    );
    assert!(took.is_some_and(|t| t < PROPAGATION_BOUND), "{took:?}");
    let fresh = changed.body["access_token"].as_str().expect("token");
    ok(&other.get("/me/crimes", Some(fresh)).await);

    // A token issued by the first process right after a promotion works at once on the
    // second, whatever its view has seen.
    change_role(&w, &w.officer_id, "DISPATCHER", Some(&w.station_a)).await;
    let email_of_officer = w
        .app
        .log
        .read(&StreamId::new("account", uuid(&w.officer_id)))
        .await
        .expect("read")
        .first()
        .map(|e| e.data["email"].as_str().unwrap_or_default().to_string())
        .expect("registered");
    let fresh = w.app.login(&email_of_officer, PASSWORD).await;
    ok(&other.get("/queues/reports", Some(&fresh)).await);
    let _ = other.stop().await;
}

/// A metric's value from `/metrics` (0 when not recorded yet).
async fn metric(app: &TestApp, admin: &str, name: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(admin)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------
// Item 6: a SUPERVISOR's audit trail is their station's.

#[tokio::test]
async fn a_supervisor_sees_the_audit_trail_of_their_own_station_only() {
    let w = world().await;
    let app = &w.app;
    let (_, supervisor_b) = app
        .account(&w.admin, "SUPERVISOR", Some(&w.station_b))
        .await;
    let in_a = app.report(Some(&w.citizen), LAT, LON, &["Theft"]).await;
    let in_b = app.report(Some(&w.citizen), LAT_B, LON_B, &["Theft"]).await;
    assert_eq!(in_b.body["station_id"], w.station_b.as_str());
    let at = in_b.position().max(in_a.position());
    let rows = |r: &Res| r.body["items"].as_array().cloned().unwrap_or_default();

    // Another station's report: nothing, by target or by actor.
    let other = app
        .get_at(
            &format!("/audit?target_id={}", in_b.id()),
            Some(&w.supervisor),
            at,
        )
        .await;
    ok(&other);
    assert!(rows(&other).is_empty(), "{}", other.body);
    let by_citizen = app
        .get_at(
            &format!("/audit?actor_id={}", w.citizen_id),
            Some(&w.supervisor),
            at,
        )
        .await;
    ok(&by_citizen);
    let targets: Vec<String> = rows(&by_citizen)
        .iter()
        .map(|r| r["target_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(targets, [in_a.id()], "{}", by_citizen.body);
    // The citizen's own account rows (no station) are not a supervisor's either.
    let account_rows = app
        .get_at(
            &format!("/audit?target_id={}", w.citizen_id),
            Some(&w.supervisor),
            at,
        )
        .await;
    assert!(rows(&account_rows).is_empty(), "{}", account_rows.body);

    // Their own station's report and staff: visible.
    let own = app
        .get_at(
            &format!("/audit?target_id={}", in_a.id()),
            Some(&w.supervisor),
            at,
        )
        .await;
    assert_eq!(rows(&own).len(), 1, "{}", own.body);
    assert_eq!(rows(&own)[0]["action"], "ReportSubmitted");
    let officer_rows = app
        .get_at(
            &format!("/audit?target_id={}", w.officer_id),
            Some(&w.supervisor),
            at,
        )
        .await;
    assert!(!rows(&officer_rows).is_empty(), "{}", officer_rows.body);
    // Station B's supervisor sees B's report and not A's.
    let b = app
        .get_at(
            &format!("/audit?target_id={}", in_b.id()),
            Some(&supervisor_b),
            at,
        )
        .await;
    assert_eq!(rows(&b).len(), 1, "{}", b.body);
    let a = app
        .get_at(
            &format!("/audit?target_id={}", in_a.id()),
            Some(&supervisor_b),
            at,
        )
        .await;
    assert!(rows(&a).is_empty(), "{}", a.body);
    // Unfiltered: every row a supervisor gets is of their station.
    let all = app
        .get_at("/audit?limit=100", Some(&supervisor_b), at)
        .await;
    ok(&all);
    // Not vacuous: B's own report is in the page.
    assert!(
        rows(&all).iter().any(|r| r["target_id"] == in_b.id()),
        "{}",
        all.body
    );
    assert!(rows(&all)
        .iter()
        .all(|r| r["target_id"] != in_a.id() && r["target_id"] != w.citizen_id));
    // ADMIN: everything.
    let admin = app
        .get_at(
            &format!("/audit?actor_id={}", w.citizen_id),
            Some(&w.admin),
            at,
        )
        .await;
    let targets: Vec<String> = rows(&admin)
        .iter()
        .map(|r| r["target_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(targets, [in_a.id(), in_b.id()], "{}", admin.body);

    // An officer moved to B: rows after the move are B's, the earlier ones stay A's.
    let moved = change_role(&w, &w.officer_id, "PATROL", Some(&w.station_b)).await;
    let b_rows = app
        .get_at(
            &format!("/audit?target_id={}", w.officer_id),
            Some(&supervisor_b),
            moved.position(),
        )
        .await;
    let actions: Vec<Value> = rows(&b_rows).iter().map(|r| r["action"].clone()).collect();
    assert_eq!(actions, [json!("AccountRoleChanged")], "{}", b_rows.body);

    // A rebuild gives the same rows.
    let before: Vec<(i64, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT position, station_id FROM audit ORDER BY position")
            .fetch_all(&app.pool)
            .await
            .expect("audit");
    precinct_projections::rebuild(&app.pool, &app.log)
        .await
        .expect("rebuild");
    let after: Vec<(i64, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT position, station_id FROM audit ORDER BY position")
            .fetch_all(&app.pool)
            .await
            .expect("audit");
    assert_eq!(before, after);
}

// ---------------------------------------------------------------------------------------
// Item 8: SSE streams per account.

#[tokio::test]
async fn one_account_holds_a_bounded_number_of_streams() {
    // The default cap: 5 streams per account, over both SSE endpoints.
    let w = world().await;
    let app = &w.app;
    let mut open = Vec::new();
    for path in [
        "/patrols/stream",
        "/me/assignments/stream",
        "/patrols/stream",
        "/me/assignments/stream",
        "/patrols/stream",
    ] {
        open.push(
            Stream::open(app, path, &w.officer)
                .await
                .expect("under the cap"),
        );
    }
    for path in ["/patrols/stream", "/me/assignments/stream"] {
        let refused = Stream::open(app, path, &w.officer).await;
        let Err((status, body)) = refused else {
            panic!("a sixth stream for one account was opened on {path}");
        };
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["_content_type"], "application/problem+json");
        assert!(body["_retry_after"].is_string(), "{body}");
        assert_eq!(body["status"], 429);
    }
    // Another account is not affected.
    let _desk = Stream::open(app, "/patrols/stream", &w.dispatcher)
        .await
        .expect("another account");
    // Closing one frees a slot.
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(s) = Stream::open(app, "/patrols/stream", &w.officer).await {
            reopened = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a closed stream's slot came back");
}

// ---------------------------------------------------------------------------------------
// Item 10 (part): an erased account's e-mail and name.

/// Every message of the event log, as stored.
async fn raw_log(app: &TestApp) -> Vec<Vec<u8>> {
    let head = app.log.head().await.expect("head");
    let stream = crate::store::jetstream(&app.config.nats_url)
        .await
        .get_stream(&app.log.config().stream)
        .await
        .expect("stream");
    let mut out = Vec::new();
    for seq in 1..=head {
        let msg = stream.direct_get(seq).await.expect("raw message");
        let mut bytes = msg.subject.as_bytes().to_vec();
        bytes.extend_from_slice(&msg.payload);
        out.push(bytes);
    }
    out
}

fn holding(log: &[Vec<u8>], needle: &str) -> usize {
    let needle = needle.as_bytes();
    log.iter()
        .filter(|m| m.windows(needle.len()).any(|w| w == needle))
        .count()
}

#[tokio::test]
async fn erasure_leaves_no_clear_email_or_name_of_the_account_in_the_log() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS-A", LAT, LON).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("maria-{marker}@example.org");
    let name = format!("Maria {marker}");
    let r = app
        .post(
            "/users/register",
            None,
            json!({"email": email, "password": PASSWORD, "name": name}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        (r.body["email"].as_str(), r.body["name"].as_str()),
        (Some(email.as_str()), Some(name.as_str()))
    );
    let id = r.id();
    let token = app.login(&email, PASSWORD).await;
    app.report(Some(&token), LAT, LON, &["Theft"]).await;
    // The address is reserved: a second registration is refused.
    let again = app
        .post(
            "/users/register",
            None,
            json!({"email": email.to_uppercase(), "password": PASSWORD, "name": "Copy"}),
        )
        .await;
    problem(&again, StatusCode::CONFLICT);

    // Sealed from the start: the log holds neither the address nor the name in clear,
    // nor the unkeyed hash of the address as a stream id.
    let legacy_id = email_stream_id(&Email::parse(&email).expect("email")).to_string();
    let log = raw_log(&app).await;
    assert_eq!(holding(&log, &marker), 0, "e-mail or name in clear");
    assert_eq!(holding(&log, &legacy_id), 0, "the address's unkeyed hash");

    ok(&app
        .delete(&format!("/admin/data-subjects/{id}"), Some(&admin))
        .await);
    let log = raw_log(&app).await;
    assert_eq!(
        holding(&log, &marker),
        0,
        "e-mail or name in clear after erasure"
    );
    problem(
        &app.post(
            "/users/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );
    // The accounts read model holds nothing of them either, and the account aggregate
    // reads as erased.
    let erased = sqlx::query_as::<_, (Option<String>, Option<String>)>(
        "SELECT email, name FROM accounts WHERE id = $1",
    )
    .bind(uuid(&id));
    let head = app.log.head().await.expect("head");
    app.caught_up(head).await;
    let (e, n) = erased.fetch_one(&app.pool).await.expect("row");
    assert!(
        !e.unwrap_or_default().contains(&marker) && !n.unwrap_or_default().contains(&marker),
        "the read model keeps the erased e-mail or name"
    );
    let registered = app
        .log
        .read(&StreamId::new("account", uuid(&id)))
        .await
        .expect("read")
        .into_iter()
        .next()
        .expect("registered");
    assert_eq!(
        (&registered.data["email"], &registered.data["name"]),
        (&Value::Null, &Value::Null),
        "opened after erasure"
    );
}

#[tokio::test]
async fn an_account_registered_before_sealing_still_logs_in_and_keeps_its_address() {
    let app = TestApp::spawn().await.expect("spawn");
    // An account as the code before this change wrote it: the reservation under the
    // address's unkeyed stream id, e-mail and name in clear.
    let email = Email::parse(&format!(
        "old-{}@example.org",
        precinct_tests::unique_prefix()
    ))
    .expect("email");
    let hash = precinct_api::auth::hash_password(PASSWORD.to_string())
        .await
        .expect("hash");
    let hash = PasswordHash::parse(&hash).expect("hash");
    let email_id = email_stream_id(&email);
    let account_id = AccountId::new(uuid::Uuid::new_v4());
    let plain = precinct_app::App::new(app.log.clone());
    let meta = CommandMeta::new(uuid::Uuid::new_v4(), Actor::System);
    plain
        .run::<EmailReservation>(&meta, email_id, async |uow| {
            let at = uow.now();
            uow.execute::<EmailReservation>(email_id, EmailCommand::Reserve { account_id, at })
                .await?;
            uow.execute::<Account>(
                account_id.as_uuid(),
                AccountCommand::Register {
                    account_id,
                    email: email.clone(),
                    name: "Old Timer".into(),
                    role: Role::Citizen,
                    station_id: None,
                    password_hash: hash.clone(),
                    at,
                    invite_id: None,
                },
            )
            .await?;
            Ok(())
        })
        .await
        .expect("old-style registration");
    let token = app.login(email.as_str(), PASSWORD).await;
    ok(&app.get("/me/crimes", Some(&token)).await);
    let r = app
        .post(
            "/users/register",
            None,
            json!({"email": email.as_str(), "password": PASSWORD, "name": "Impostor"}),
        )
        .await;
    problem(&r, StatusCode::CONFLICT);
}

#[tokio::test]
async fn erasing_an_invited_account_also_erases_the_address_of_its_invitation() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS-A", LAT, LON).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("officer-{marker}@example.org");
    let invite = app
        .post(
            "/invites",
            Some(&admin),
            json!({"email": email, "role": "PATROL", "station_id": station}),
        )
        .await;
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.body);
    assert_eq!(invite.body["email"], email.as_str());
    let code = invite.body["code"].as_str().expect("code").to_string();
    let accepted = app
        .post(
            "/invites/accept",
            None,
            json!({"code": code, "name": format!("Officer {marker}"), "password": PASSWORD}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.body);
    assert_eq!(accepted.body["email"], email.as_str());
    let id = accepted.id();
    app.login(&email, PASSWORD).await;
    assert_eq!(
        holding(&raw_log(&app).await, &marker),
        0,
        "the invitation or the account holds the address or name in clear"
    );

    ok(&app
        .delete(&format!("/admin/data-subjects/{id}"), Some(&admin))
        .await);
    assert_eq!(holding(&raw_log(&app).await, &marker), 0);
    // Opened with the keys the process has: both the invitation's address and the
    // account's are gone.
    let invite_id = app
        .log
        .read(&StreamId::new("account", uuid(&id)))
        .await
        .expect("read")
        .first()
        .and_then(|e| e.data["invite_id"].as_str().map(uuid))
        .expect("the account records its invite");
    let created = app
        .log
        .read(&StreamId::new("invite", invite_id))
        .await
        .expect("read");
    assert_eq!(
        created[0].data["email"],
        Value::Null,
        "{:?}",
        created[0].data
    );
    problem(
        &app.post(
            "/users/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );
}
