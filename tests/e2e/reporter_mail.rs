//! Reporter e-mail (issue 18, item 3): a reporter who gave an address at submission is
//! mailed on assignment, resolution, closure, rejection (with the public reason) and
//! every public update — through a real SMTP server (aiosmtpd, `tests/smtp/sink.py`,
//! installed by deploy/local/stack.sh) on a free loopback port — with nothing of the
//! officers' work, nothing after erasure, no mail lost or repeated across a restart;
//! an address that is not one is a 422 and nothing is stored.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use precinct::mailer::MailConfig;
use precinct_tests::app::{Options, Res, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

const LAT: f64 = 7.07;
const LON: f64 = 125.61;
/// How long a mail may take to arrive before the test fails.
const BOUND: Duration = Duration::from_secs(15);

const NOTE: &str = "Internal: the neighbour is a known fence";
const RESOLUTION: &str = "Internal: recovered from the fence, suspect released";
const JUSTIFICATION: &str = "Internal: known prank caller";
const PUBLIC_REASON: &str = "This is a civil matter; please contact the city office.";

/// A real SMTP server on 127.0.0.1 writing what it receives to a directory.
struct Sink {
    _child: tokio::process::Child,
    dir: PathBuf,
    port: u16,
}

/// One message the server received.
#[derive(Debug, Clone)]
struct Mail {
    to: String,
    subject: String,
    message_id: String,
    raw: String,
}

impl Sink {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("precinct-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("mail directory");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("smtp/sink.py");
        let mut child = tokio::process::Command::new(precinct_tests::python::venv_python())
            .arg(&script)
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (make test's set-up installs aiosmtpd: bash deploy/local/stack.sh up): {e}",
                    precinct_tests::python::venv_python().display()
                )
            });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP server started in time (is aiosmtpd installed? bash deploy/local/stack.sh up)")
            .expect("stdout")
            .expect("a port");
        let port = line.trim().parse().expect("a port number");
        Self {
            _child: child,
            dir,
            port,
        }
    }

    fn config(&self) -> MailConfig {
        let mut c = MailConfig::new(
            &format!("smtp://127.0.0.1:{}", self.port),
            "Precinct <noreply@precinct.test>",
        )
        .expect("mail settings");
        c.retry_first = Duration::from_millis(50);
        c.retry_max = Duration::from_millis(200);
        c.timeout = Duration::from_secs(5);
        c
    }

    fn mails(&self) -> Vec<Mail> {
        mails_in(&self.dir)
    }

    /// Waits (bounded) until at least `n` mails arrived; answers them all.
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let started = Instant::now();
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                started.elapsed() < BOUND,
                "{} of {n} mails arrived in {BOUND:?}: {mails:#?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn header(raw: &str, name: &str) -> String {
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn mails_in(dir: &Path) -> Vec<Mail> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|p| {
            let raw = std::fs::read_to_string(p)
                .expect("a mail")
                .replace("\r\n", "\n");
            Mail {
                to: header(&raw, "X-Envelope-To"),
                subject: header(&raw, "Subject"),
                message_id: header(&raw, "Message-ID"),
                raw,
            }
        })
        .collect()
}

struct World {
    app: TestApp,
    admin: String,
    dispatcher: String,
    dispatcher_id: String,
    supervisor: String,
    officer: String,
    officer_id: String,
    patrol: String,
}

async fn world(sink: &Sink) -> World {
    let opts = Options {
        mail: Some(sink.config()),
        ..Options::default()
    };
    let app = TestApp::spawn_with(opts).await.expect("spawn");
    mailer_started(&app).await;
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let (dispatcher_id, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrol = app
        .patrol(&dispatcher, &station, "ALPHA-1", &[&officer_id])
        .await;
    World {
        app,
        admin,
        dispatcher,
        dispatcher_id,
        supervisor,
        officer,
        officer_id,
        patrol,
    }
}

/// Waits (bounded) until the mailer has its cursor: it mails what happens from then on.
async fn mailer_started(app: &TestApp) {
    let started = Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_cursor")
            .fetch_one(&app.pool)
            .await
            .expect("mail_cursor");
        if n == 1 {
            return;
        }
        assert!(started.elapsed() < BOUND, "the mailer did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn submission(notify_email: Option<&str>) -> Value {
    let mut body = json!({
        "title": "Bike stolen",
        "description": "My blue bike was taken from the rack",
        "crime_types": ["Theft"],
        "location": {"latitude": LAT, "longitude": LON, "street": "1 Main St"},
        "contact": "+63 900 000 0000",
    });
    if let Some(e) = notify_email {
        body["notify_email"] = json!(e);
    }
    body
}

fn ok(r: &Res) {
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
}

async fn update(w: &World, id: &str, message: &str) -> u64 {
    let r = w
        .app
        .post(
            &format!("/crimes/{id}/public-updates"),
            Some(&w.dispatcher),
            json!({"message": message}),
        )
        .await;
    ok(&r);
    r.position()
}

fn assert_nothing_internal(w: &World, mails: &[Mail]) {
    for m in mails {
        for secret in [
            NOTE,
            RESOLUTION,
            JUSTIFICATION,
            w.officer_id.as_str(),
            w.dispatcher_id.as_str(),
            w.patrol.as_str(),
            // The staff's names (tests name accounts "<ROLE> user") and the patrol's
            // call sign: no officer identity goes to a reporter.
            "PATROL user",
            "DISPATCHER user",
            "SUPERVISOR user",
            "ALPHA-1",
        ] {
            assert!(!m.raw.contains(secret), "{secret:?} mailed: {}", m.raw);
        }
    }
}

#[tokio::test]
async fn a_reporter_is_mailed_each_change_and_nothing_after_erasure() {
    let sink = Sink::start().await;
    let w = world(&sink).await;
    let app = &w.app;
    // An anonymous reporter gives an address (normalised to lower case).
    let r = app
        .post("/crimes", None, submission(Some("Reporter@Example.org")))
        .await;
    ok(&r);
    let id = r.id();
    assert!(
        !r.body.to_string().contains("example.org"),
        "the address is shown to nobody: {}",
        r.body
    );
    // A report without one: nobody is mailed about it.
    let quiet = app.post("/crimes", None, submission(None)).await;
    ok(&quiet);
    ok(&app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": quiet.id(), "patrol_id": w.patrol}),
        )
        .await);
    ok(&app
        .post(
            &format!("/crimes/{}/decline", quiet.id()),
            Some(&w.officer),
            json!({"reason": "wrong area"}),
        )
        .await);

    // The lifecycle, with internal work between the news.
    ok(&app
        .post(
            &format!("/crimes/{id}/notes"),
            Some(&w.dispatcher),
            json!({"note": NOTE}),
        )
        .await);
    ok(&app
        .post(
            "/dispatch",
            Some(&w.dispatcher),
            json!({"crime_id": id, "patrol_id": w.patrol}),
        )
        .await);
    ok(&app
        .post(&format!("/crimes/{id}/accept"), Some(&w.officer), json!({}))
        .await);
    update(&w, &id, "Officers are on their way.").await;
    ok(&app
        .post(
            &format!("/crimes/{id}/respond"),
            Some(&w.officer),
            json!({}),
        )
        .await);
    ok(&app
        .post(
            &format!("/crimes/{id}/resolve"),
            Some(&w.officer),
            json!({"resolution_notes": RESOLUTION}),
        )
        .await);
    ok(&app
        .post(
            &format!("/crimes/{id}/closure/approve"),
            Some(&w.supervisor),
            json!({}),
        )
        .await);
    let mails = sink.wait_for(4).await;
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    let short = &id.replace('-', "")[..8];
    assert_eq!(
        subjects,
        [
            format!("Your report {short}: assigned"),
            format!("Your report {short}: an update"),
            format!("Your report {short}: resolved"),
            format!("Your report {short}: closed"),
        ],
        "{mails:#?}"
    );
    for m in &mails {
        assert_eq!(m.to, "reporter@example.org");
        assert!(m.raw.contains(&id), "{}", m.raw);
    }
    assert!(mails[1].raw.contains("Officers are on their way."));
    assert_nothing_internal(&w, &mails);
    let ids: std::collections::BTreeSet<&str> =
        mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "one Message-ID per mail");
    // The ledger row is written after the SMTP server answered: wait for it (bounded).
    let ledger = wait_ledger(app, &id, 4).await;
    assert_eq!(
        ledger.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["SENT"; 4]
    );

    // A signed-in reporter's rejection carries the public reason only.
    let (_, citizen) = app.account(&w.admin, "CITIZEN", None).await;
    let mine = app
        .post(
            "/crimes",
            Some(&citizen),
            submission(Some("citizen@example.org")),
        )
        .await;
    ok(&mine);
    ok(&app
        .post(
            &format!("/crimes/{}/reject", mine.id()),
            Some(&w.dispatcher),
            json!({"justification": JUSTIFICATION, "public_reason": PUBLIC_REASON}),
        )
        .await);
    let mails = sink.wait_for(5).await;
    assert_eq!(mails.len(), 5, "{mails:#?}");
    assert_eq!(mails[4].to, "citizen@example.org");
    assert!(mails[4].subject.ends_with("not taken further"));
    assert!(mails[4].raw.contains(PUBLIC_REASON));
    assert_nothing_internal(&w, &mails);

    // Closed as a duplicate of another report: its reporter is told it is closed.
    let dup = app
        .post(
            "/crimes",
            Some(&citizen),
            submission(Some("citizen@example.org")),
        )
        .await;
    ok(&dup);
    let primary = app.post("/crimes", None, submission(None)).await;
    ok(&primary);
    ok(&app
        .post(
            &format!("/crimes/{}/link", dup.id()),
            Some(&w.dispatcher),
            json!({"other_id": primary.id(), "kind": "DUPLICATE"}),
        )
        .await);
    let mails = sink.wait_for(6).await;
    assert_eq!(mails[5].to, "citizen@example.org");
    let dup_short = &dup.id().replace('-', "")[..8];
    assert_eq!(
        mails[5].subject,
        format!("Your report {dup_short}: closed"),
        "{mails:#?}"
    );
    assert_nothing_internal(&w, &mails);

    // Erasure: the anonymous reporter's address is gone, and so are the mails.
    let other = app
        .post("/crimes", None, submission(Some("second@example.org")))
        .await;
    ok(&other);
    update(&w, &other.id(), "First news.").await;
    sink.wait_for(7).await;
    ok(&app
        .delete(
            &format!("/admin/data-subjects/{}", other.id()),
            Some(&w.admin),
        )
        .await);
    update(&w, &other.id(), "Second news, after the erasure.").await;
    // The mailer goes in log order: once a later mail arrived, the erased one was
    // looked at and not sent.
    let third = app
        .post(
            "/crimes",
            Some(&citizen),
            submission(Some("citizen@example.org")),
        )
        .await;
    ok(&third);
    update(&w, &third.id(), "Third news.").await;
    let mails = sink.wait_for(8).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails_now = sink.mails();
    assert_eq!(mails_now.len(), 8, "{mails_now:#?}");
    assert!(mails[7].raw.contains("Third news."));
    assert!(
        !mails_now
            .iter()
            .any(|m| m.raw.contains("after the erasure")),
        "mailed after erasure"
    );
}

#[tokio::test]
async fn a_restart_neither_loses_nor_repeats_mail() {
    let sink = Sink::start().await;
    let w = world(&sink).await;
    let r = w
        .app
        .post("/crimes", None, submission(Some("reporter@example.org")))
        .await;
    ok(&r);
    let id = r.id();
    update(&w, &id, "News 1.").await;
    sink.wait_for(1).await;
    // News 2 goes out while the process stops (it may be in flight).
    update(&w, &id, "News 2.").await;
    let World {
        app,
        dispatcher,
        dispatcher_id,
        admin,
        supervisor,
        officer,
        officer_id,
        patrol,
    } = w;
    let (config, prefix, database) = app.stop().await.expect("stop");
    let app = TestApp::start(config, prefix, database)
        .await
        .expect("restart");
    let w = World {
        app,
        admin,
        dispatcher,
        dispatcher_id,
        supervisor,
        officer,
        officer_id,
        patrol,
    };
    update(&w, &id, "News 3.").await;
    let mails = sink.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails_now = sink.mails();
    for n in ["News 1.", "News 2.", "News 3."] {
        let copies: Vec<&Mail> = mails_now.iter().filter(|m| m.raw.contains(n)).collect();
        assert!(!copies.is_empty(), "{n} was lost: {mails:#?}");
        // At most the mail in flight at the stop repeats, under the same Message-ID.
        assert!(
            copies.iter().all(|m| m.message_id == copies[0].message_id),
            "{n}: {copies:#?}"
        );
    }
    assert!(mails_now.len() <= 4, "mail repeated: {mails_now:#?}");
    assert_eq!(
        mails_now
            .iter()
            .filter(|m| m.raw.contains("News 1."))
            .count(),
        1,
        "a mail sent before the stop is not sent again"
    );
}

#[tokio::test]
async fn an_address_that_is_not_one_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    app.precinct(&admin, "PS1", LAT, LON).await;
    let head = app.log.head().await.expect("head");
    for bad in [
        "not-an-address",
        "two@@example.org",
        "a b@example.org",
        "nobody@localhost",
        "",
        "x\u{200b}@example.org",
    ] {
        let r = app.post("/crimes", None, submission(Some(bad))).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            r.body
        );
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{bad:?}"
        );
        assert!(
            r.body.to_string().contains("notify_email"),
            "{bad:?}: {}",
            r.body
        );
    }
    let r = app
        .post("/crimes", None, json!({"notify_email": 42, "title": "x"}))
        .await;
    assert!(r.status.is_client_error(), "{}", r.body);
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing was appended"
    );
}

/// ADR 0035 with the mailer: an SLA breach and the escalation that follows are mailed
/// to the report's station's active supervisors, one message each — not a deactivated
/// one, not an erased one, not another station's — with the report's id and priority
/// and nothing of the reporter or the patrol; a station whose policy does not notify
/// its supervisors mails nothing.
#[tokio::test]
async fn the_stations_supervisors_are_mailed_an_sla_breach_and_its_escalation() {
    let sink = Sink::start().await;
    let app = TestApp::spawn_with(Options {
        mail: Some(sink.config()),
        ..Options::default()
    })
    .await
    .expect("spawn");
    let admin = app.admin().await;
    let station = app.precinct(&admin, "PS1", LAT, LON).await;
    let other = app.precinct(&admin, "PS2", LAT + 1.0, LON + 1.0).await;
    let (_, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station)).await;
    let (first, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (second, _) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (inactive, _) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (erased, _) = app.account(&admin, "SUPERVISOR", Some(&station)).await;
    let (elsewhere, _) = app.account(&admin, "SUPERVISOR", Some(&other)).await;
    let (officer, _) = app.account(&admin, "PATROL", Some(&station)).await;
    let patrol = app
        .patrol(&dispatcher, &station, "ALPHA-1", &[&officer])
        .await;
    let (_, citizen) = app.account(&admin, "CITIZEN", None).await;
    let r = app
        .post(
            &format!("/users/{inactive}/deactivate"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let email = |id: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let r = app.get(&format!("/users/{id}"), Some(admin)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["email"].as_str().expect("email").to_owned()
        }
    };
    let mut expected = vec![email(first.clone()).await, email(second.clone()).await];
    expected.sort();
    let not_mailed = [
        email(inactive).await,
        email(elsewhere).await,
        email(erased.clone()).await,
    ];
    // An erased supervisor: still a SUPERVISOR of the station, without an address.
    let r = app
        .delete(&format!("/admin/data-subjects/{erased}"), Some(&admin))
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let policy = |notify: bool| {
        json!({"deadlines": {"CRITICAL": {"accept_secs": 1}}, "warn_at_percent": 0,
            "notify_supervisors": notify, "unaccepted": {"action": "REQUEUE", "after_secs": 0}})
    };
    let set = app
        .put(
            &format!("/stations/{station}/sla-policy"),
            Some(&admin),
            policy(true),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let id = critical(&app, &citizen, &dispatcher, &patrol).await;
    // One message per supervisor and event: no one sees another's address.
    let mails = sink.wait_for(4).await;
    let short = &id.replace('-', "")[..8];
    let breach = format!("SLA: report {short} (CRITICAL): accept deadline missed");
    let escalation = format!("SLA: report {short} (CRITICAL): escalated");
    for subject in [&breach, &escalation] {
        let mut to: Vec<&str> = mails
            .iter()
            .filter(|m| &m.subject == subject)
            .map(|m| m.to.as_str())
            .collect();
        to.sort();
        assert_eq!(to, expected, "{subject}: {mails:#?}");
    }
    let ids: std::collections::BTreeSet<&str> =
        mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "one Message-ID per mail: {mails:#?}");
    for m in &mails {
        assert!(!m.to.contains(','), "one recipient each: {}", m.to);
        assert!(m.raw.contains(&id), "{}", m.raw);
        for secret in [
            "Bike stolen",
            "My blue bike",
            "1 Main St",
            "+63 900",
            officer.as_str(),
            patrol.as_str(),
        ]
        .iter()
        .copied()
        .chain(not_mailed.iter().map(String::as_str))
        {
            assert!(!m.raw.contains(secret), "{secret:?} mailed: {}", m.raw);
        }
    }
    assert!(mails
        .iter()
        .filter(|m| m.subject == escalation)
        .all(|m| m.raw.contains("back in the queue")));
    let ledger = wait_ledger(&app, &id, 4).await;
    let mut supervisors = [first.clone(), second.clone()];
    supervisors.sort();
    assert_eq!(
        ledger
            .iter()
            .map(|r| (r.kind.as_str(), r.recipient.as_str(), r.status.as_str()))
            .collect::<Vec<_>>(),
        [
            ("SLA_BREACH", supervisors[0].as_str(), "SENT"),
            ("SLA_BREACH", supervisors[1].as_str(), "SENT"),
            ("SLA_ESCALATION", supervisors[0].as_str(), "SENT"),
            ("SLA_ESCALATION", supervisors[1].as_str(), "SENT"),
        ]
    );

    // A policy without supervisor notifications: the same breach and escalation happen,
    // and nothing is mailed once the mailer has passed them.
    let set = app
        .put(
            &format!("/stations/{station}/sla-policy"),
            Some(&admin),
            policy(false),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let quiet = critical(&app, &citizen, &dispatcher, &patrol).await;
    let deadline = Instant::now() + BOUND;
    let escalated = loop {
        let h = app
            .get(
                &format!("/crimes/{quiet}/history?limit=100"),
                Some(&supervisor),
            )
            .await;
        assert_eq!(h.status, StatusCode::OK, "{}", h.body);
        let found = h.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|e| e["type"] == "SlaEscalated")
            .and_then(|e| e["position"].as_i64());
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "no escalation: {}", h.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    while precinct_readmodel::mail_ledger::cursor(&app.pool, 0)
        .await
        .expect("cursor")
        < escalated
    {
        assert!(
            Instant::now() < deadline,
            "the mailer did not pass {escalated}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sink.mails().len(), 4, "{:#?}", sink.mails());
    assert!(wait_ledger(&app, &quiet, 0).await.is_empty());
}

/// A CRITICAL report by `citizen`, triaged and dispatched to `patrol` by `dispatcher`.
async fn critical(app: &TestApp, citizen: &str, dispatcher: &str, patrol: &str) -> String {
    let id = app.report(Some(citizen), LAT, LON, &["Theft"]).await.id();
    for (path, body) in [
        (
            format!("/crimes/{id}/triage"),
            json!({"priority": "CRITICAL"}),
        ),
        (
            "/dispatch".to_owned(),
            json!({"crime_id": id, "patrol_id": patrol}),
        ),
    ] {
        let r = app.post(&path, Some(dispatcher), body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    id
}

/// The mail ledger of `report` once it holds `n` rows (bounded).
async fn wait_ledger(
    app: &TestApp,
    report: &str,
    n: usize,
) -> Vec<precinct_readmodel::mail_ledger::MailRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows =
            precinct_readmodel::mail_ledger::of_report(&app.pool, report.parse().expect("uuid"))
                .await
                .expect("ledger");
        if rows.len() >= n || Instant::now() >= deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
