//! User management through HTTP, JetStream and PostgreSQL: who lists and sees which
//! accounts and which of their fields, updates, deactivation (and its refusals: oneself,
//! the last active ADMIN), password change and reset, and what each does to tokens
//! already issued; an erased account shows no personal data and frees its address.

use std::time::Instant;

use precinct_tests::app::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD};
use precinct_tests::client::{Call, Res};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LAT: f64 = 7.07;
const LON: f64 = 125.61;

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
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect()
}

/// Station A: a dispatcher, a supervisor and an officer in a patrol; station B: a
/// dispatcher; a citizen.
struct Staff {
    app: TestApp,
    admin: String,
    admin_id: String,
    station_a: String,
    dispatcher_id: String,
    dispatcher: String,
    supervisor: String,
    officer_id: String,
    officer: String,
    patrol: String,
    other_dispatcher_id: String,
    citizen_id: String,
    citizen: String,
}

async fn staff() -> Staff {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let station_a = app.precinct(&admin, "PS-A", LAT, LON).await;
    let station_b = app.precinct(&admin, "PS-B", 9.0, 127.0).await;
    let (dispatcher_id, dispatcher) = app.account(&admin, "DISPATCHER", Some(&station_a)).await;
    let (_, supervisor) = app.account(&admin, "SUPERVISOR", Some(&station_a)).await;
    let (officer_id, officer) = app.account(&admin, "PATROL", Some(&station_a)).await;
    let patrol = app
        .patrol(&dispatcher, &station_a, "ALPHA-1", &[&officer_id])
        .await;
    let (other_dispatcher_id, _) = app.account(&admin, "DISPATCHER", Some(&station_b)).await;
    let (citizen_id, citizen) = app.account(&admin, "CITIZEN", None).await;
    let me = app.send(&Call::me(), Some(&admin)).await;
    ok(&me);
    let admin_id = me.body["id"].as_str().expect("id").to_string();
    app.caught_up(app.log.head().await.expect("head")).await;
    Staff {
        app,
        admin,
        admin_id,
        station_a,
        dispatcher_id,
        dispatcher,
        supervisor,
        officer_id,
        officer,
        patrol,
        other_dispatcher_id,
        citizen_id,
        citizen,
    }
}

#[tokio::test]
async fn accounts_are_listed_and_shown_to_their_audiences_with_filters_and_pages() {
    let s = staff().await;
    let app = &s.app;
    // ADMIN: every account, e-mail addresses included.
    let all = app.send(&Call::users("limit=100"), Some(&s.admin)).await;
    ok(&all);
    let listed = ids(&all.body);
    for id in [
        &s.admin_id,
        &s.dispatcher_id,
        &s.other_dispatcher_id,
        &s.citizen_id,
    ] {
        assert!(listed.contains(id), "{id} missing");
    }
    assert!(all.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|u| u["email"].is_string() && u.get("password_hash").is_none()));
    // Filters: role, station, active, text (of the name or the e-mail address).
    let dispatchers = app
        .send(&Call::users("role=DISPATCHER"), Some(&s.admin))
        .await;
    let mut found = ids(&dispatchers.body);
    found.sort();
    let mut expected = vec![s.dispatcher_id.clone(), s.other_dispatcher_id.clone()];
    expected.sort();
    assert_eq!(found, expected);
    let at_a = app
        .send(
            &Call::users(&format!("station_id={}&role=DISPATCHER", s.station_a)),
            Some(&s.admin),
        )
        .await;
    assert_eq!(ids(&at_a.body), vec![s.dispatcher_id.clone()]);
    let by_text = app
        .send(&Call::users("q=ADMIN%40precinct"), Some(&s.admin))
        .await;
    assert_eq!(ids(&by_text.body), vec![s.admin_id.clone()]);
    let inactive = app.send(&Call::users("active=false"), Some(&s.admin)).await;
    assert!(ids(&inactive.body).is_empty(), "{}", inactive.body);
    // Keyset pages: one at a time, every account once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let query = match &cursor {
            Some(c) => format!("limit=1&cursor={c}"),
            None => "limit=1".into(),
        };
        let page = app.send(&Call::users(&query), Some(&s.admin)).await;
        ok(&page);
        seen.extend(ids(&page.body));
        cursor = page.body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, listed, "pages of one give the same list");
    problem(
        &app.send(&Call::users("limit=0"), Some(&s.admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    problem(
        &app.send(&Call::users("role=KING"), Some(&s.admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    problem(
        &app.send(&Call::users("q=a%00b"), Some(&s.admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );

    // SUPERVISOR: their own station's staff, without e-mail addresses, whatever the
    // filters name; no text search of addresses.
    let theirs = app
        .send(
            &Call::users("station_id=00000000-0000-0000-0000-000000000000"),
            Some(&s.supervisor),
        )
        .await;
    ok(&theirs);
    let theirs_ids = ids(&theirs.body);
    assert!(theirs_ids.contains(&s.dispatcher_id) && theirs_ids.contains(&s.officer_id));
    for hidden in [&s.other_dispatcher_id, &s.citizen_id, &s.admin_id] {
        assert!(
            !theirs_ids.contains(hidden),
            "{hidden} listed to a supervisor"
        );
    }
    let own_id = app.send(&Call::me(), Some(&s.supervisor)).await.body["id"].clone();
    for u in theirs.body["items"].as_array().expect("items") {
        if u["id"] == own_id {
            assert!(u["email"].is_string(), "their own account in full: {u}");
            continue;
        }
        assert!(u.get("email").is_none(), "a supervisor sees an e-mail: {u}");
        assert!(u["name"].is_string());
    }
    let address_search = app
        .send(&Call::users("q=precinct.test"), Some(&s.supervisor))
        .await;
    assert!(
        ids(&address_search.body).is_empty(),
        "{}",
        address_search.body
    );
    for token in [&s.dispatcher, &s.citizen] {
        problem(
            &app.send(&Call::users(""), Some(token)).await,
            StatusCode::FORBIDDEN,
        );
    }

    // One account: ADMIN any (with e-mail), SUPERVISOR their staff (without), anyone
    // themselves (with); anything else is 404.
    let one = app
        .send(&Call::user(&s.dispatcher_id), Some(&s.admin))
        .await;
    ok(&one);
    assert!(one.body["email"].is_string());
    let one = app
        .send(&Call::user(&s.dispatcher_id), Some(&s.supervisor))
        .await;
    ok(&one);
    assert!(one.body.get("email").is_none(), "{}", one.body);
    let own = app
        .send(&Call::user(&s.dispatcher_id), Some(&s.dispatcher))
        .await;
    ok(&own);
    assert!(own.body["email"].is_string());
    for (token, id) in [
        (&s.supervisor, &s.other_dispatcher_id),
        (&s.supervisor, &s.citizen_id),
        (&s.dispatcher, &s.officer_id),
        (&s.citizen, &s.dispatcher_id),
    ] {
        problem(
            &app.send(&Call::user(id), Some(token)).await,
            StatusCode::NOT_FOUND,
        );
    }
    // GET /me: the caller's own account, e-mail included, never a credential.
    let me = app.send(&Call::me(), Some(&s.citizen)).await;
    ok(&me);
    assert_eq!(me.body["id"], s.citizen_id.as_str());
    assert_eq!(me.body["role"], "CITIZEN");
    assert!(me.body["email"].is_string() && me.body.get("password_hash").is_none());
}

#[tokio::test]
async fn updates_rename_move_and_demote_and_the_old_token_follows_at_once() {
    let s = staff().await;
    let app = &s.app;
    // The account itself renames itself; it may not change its role.
    let r = app
        .send(
            &Call::update_user(&s.citizen_id, json!({"name": "Ana Cruz"})),
            Some(&s.citizen),
        )
        .await;
    ok(&r);
    assert_eq!(r.body["name"], "Ana Cruz");
    let head = app.log.head().await.expect("head");
    problem(
        &app.send(
            &Call::update_user(&s.citizen_id, json!({"role": "ADMIN"})),
            Some(&s.citizen),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    // A supervisor sees their staff but changes nothing of theirs.
    problem(
        &app.send(
            &Call::update_user(&s.dispatcher_id, json!({"name": "X"})),
            Some(&s.supervisor),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    problem(
        &app.send(
            &Call::update_user(&s.citizen_id, json!({"name": "   "})),
            Some(&s.citizen),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    problem(
        &app.send(
            &Call::update_user(&s.citizen_id, json!({"email": "x@y.z"})),
            Some(&s.citizen),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "refusals appended"
    );
    // An ADMIN makes the officer a dispatcher: they leave patrol ALPHA-1 in the same
    // append, and their old token has the new role at once.
    let r = app
        .send(
            &Call::update_user(
                &s.officer_id,
                json!({"role": "DISPATCHER", "station_id": s.station_a}),
            ),
            Some(&s.admin),
        )
        .await;
    ok(&r);
    assert_eq!(r.body["role"], "DISPATCHER");
    ok(&app.get("/queues/reports", Some(&s.officer)).await);
    let patrol = app
        .get_at(
            &format!("/patrols/{}", s.patrol),
            Some(&s.dispatcher),
            r.position(),
        )
        .await;
    ok(&patrol);
    assert!(
        !patrol.body.to_string().contains(&s.officer_id),
        "still in the crew: {}",
        patrol.body
    );
    // The only ADMIN cannot be demoted (409, nothing appended).
    let head = app.log.head().await.expect("head");
    problem(
        &app.send(
            &Call::update_user(&s.admin_id, json!({"role": "CITIZEN"})),
            Some(&s.admin),
        )
        .await,
        StatusCode::CONFLICT,
    );
    assert_eq!(app.log.head().await.expect("head"), head);
}

#[tokio::test]
async fn deactivation_refuses_oneself_and_the_last_admin_and_revokes_the_old_token() {
    let s = staff().await;
    let app = &s.app;
    let head = app.log.head().await.expect("head");
    // Oneself: 409, nothing appended.
    problem(
        &app.send(&Call::deactivate(&s.admin_id), Some(&s.admin))
            .await,
        StatusCode::CONFLICT,
    );
    // Only an ADMIN deactivates.
    for token in [&s.supervisor, &s.dispatcher, &s.citizen] {
        problem(
            &app.send(&Call::deactivate(&s.officer_id), Some(token))
                .await,
            StatusCode::FORBIDDEN,
        );
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "refusals appended"
    );

    // A second ADMIN: they may deactivate the first, and then not be deactivated.
    let (second_id, second) = app.account(&s.admin, "ADMIN", None).await;
    let r = app
        .send(&Call::deactivate(&s.admin_id), Some(&second))
        .await;
    ok(&r);
    assert_eq!(r.body["active"], false);
    app.caught_up(r.position()).await;
    // (The first admin's token is refused now; reactivate them through the second.)
    problem(
        &app.send(&Call::deactivate(&second_id), Some(&s.admin))
            .await,
        StatusCode::UNAUTHORIZED,
    );
    let r = app
        .send(&Call::reactivate(&s.admin_id), Some(&second))
        .await;
    ok(&r);
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    ok(&app.send(&Call::deactivate(&second_id), Some(&admin)).await);
    // Now the first is the last active ADMIN again: demoting them is refused (409,
    // nothing appended), as deactivating oneself was.
    let head = app.log.head().await.expect("head");
    problem(
        &app.send(
            &Call::update_user(&s.admin_id, json!({"role": "CITIZEN"})),
            Some(&admin),
        )
        .await,
        StatusCode::CONFLICT,
    );
    assert_eq!(app.log.head().await.expect("head"), head);

    // The dispatcher's token works; once deactivated, its next request is refused.
    ok(&app.get("/queues/reports", Some(&s.dispatcher)).await);
    let started = Instant::now();
    let r = app
        .send(&Call::deactivate(&s.dispatcher_id), Some(&admin))
        .await;
    ok(&r);
    let acked = started.elapsed();
    let next = app.get("/queues/reports", Some(&s.dispatcher)).await;
    println!(
        "deactivation acknowledged in {acked:?}; the old token's next request on the same process answered {} after {:?}",
        next.status,
        started.elapsed()
    );
    problem(&next, StatusCode::UNAUTHORIZED);
    // The officer, deactivated too, leaves the crew of ALPHA-1 in the same append.
    let r = app
        .send(&Call::deactivate(&s.officer_id), Some(&admin))
        .await;
    ok(&r);
    let patrol = app
        .get_at(
            &format!("/patrols/{}", s.patrol),
            Some(&admin),
            r.position(),
        )
        .await;
    ok(&patrol);
    assert!(
        !patrol.body.to_string().contains(&s.officer_id),
        "a deactivated officer stays in the crew: {}",
        patrol.body
    );
    // Listed as inactive.
    app.caught_up(r.position()).await;
    let inactive = app.send(&Call::users("active=false"), Some(&admin)).await;
    let mut found = ids(&inactive.body);
    found.sort();
    let mut expected = vec![s.dispatcher_id.clone(), s.officer_id.clone(), second_id];
    expected.sort();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_revokes_older_tokens() {
    let s = staff().await;
    let app = &s.app;
    let email = app.send(&Call::me(), Some(&s.citizen)).await.body["email"]
        .as_str()
        .expect("email")
        .to_string();
    let head = app.log.head().await.expect("head");
    let wrong = app
        .send(
            &Call::change_password("not my password", "a brand new password"),
            Some(&s.citizen),
        )
        .await;
    problem(&wrong, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.to_string().contains("current_password"));
    problem(
        &app.send(&Call::change_password(PASSWORD, "short"), Some(&s.citizen))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(app.log.head().await.expect("head"), head);
    let r = app
        .send(
            &Call::change_password(PASSWORD, "a brand new password"),
            Some(&s.citizen),
        )
        .await;
    ok(&r);
    let fresh = r.body["access_token"].as_str().expect("token").to_string();
    // The token that asked is refused from then on; the new one works, and so does a
    // login with the new password (not with the old one).
    problem(
        &app.send(&Call::me(), Some(&s.citizen)).await,
        StatusCode::UNAUTHORIZED,
    );
    ok(&app.send(&Call::me(), Some(&fresh)).await);
    let login = app
        .post(
            "/users/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    problem(&login, StatusCode::UNAUTHORIZED);
    let again = app.login(&email, "a brand new password").await;
    // An ADMIN's reset revokes every token too; only an ADMIN resets.
    problem(
        &app.send(
            &Call::reset_password(&s.citizen_id, "an admin's password"),
            Some(&s.supervisor),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    ok(&app
        .send(
            &Call::reset_password(&s.citizen_id, "an admin's password"),
            Some(&s.admin),
        )
        .await);
    for token in [&fresh, &again] {
        problem(
            &app.send(&Call::me(), Some(token)).await,
            StatusCode::UNAUTHORIZED,
        );
    }
    app.login(&email, "an admin's password").await;
}

/// N8 of the attack review, and erasure in the users read model.
#[tokio::test]
async fn an_erased_account_shows_no_personal_data_and_its_address_registers_again() {
    let s = staff().await;
    let app = &s.app;
    let email = app.send(&Call::me(), Some(&s.citizen)).await.body["email"]
        .as_str()
        .expect("email")
        .to_string();
    let r = app
        .delete(
            &format!("/admin/data-subjects/{}", s.citizen_id),
            Some(&s.admin),
        )
        .await;
    ok(&r);
    let one = app
        .get_at(
            &format!("/users/{}", s.citizen_id),
            Some(&s.admin),
            r.position(),
        )
        .await;
    ok(&one);
    assert_eq!(one.body["email"], Value::Null, "{}", one.body);
    assert_eq!(one.body["name"], Value::Null, "{}", one.body);
    assert_eq!(one.body["personal_erased"], true);
    let listed = app.send(&Call::users("limit=100"), Some(&s.admin)).await;
    assert!(
        !listed.body.to_string().contains(&email),
        "the erased address is still listed"
    );
    // The address can register again, as a new account.
    let again = app
        .post(
            "/users/register",
            None,
            json!({"email": email, "password": PASSWORD, "name": "Back again"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_ne!(again.body["id"], s.citizen_id.as_str());
    let token = app.login(&email, PASSWORD).await;
    let me = app.send(&Call::me(), Some(&token)).await;
    assert_eq!(me.body["id"], again.body["id"]);
    // And it is taken again.
    let third = app
        .post(
            "/users/register",
            None,
            json!({"email": email, "password": PASSWORD, "name": "Third"}),
        )
        .await;
    problem(&third, StatusCode::CONFLICT);
}

/// N3 of the attack review: an invite created by a supervisor who is then demoted is
/// no longer honoured.
#[tokio::test]
async fn an_invite_of_a_since_demoted_supervisor_is_refused() {
    let s = staff().await;
    let app = &s.app;
    let invite = app
        .post(
            "/invites",
            Some(&s.supervisor),
            json!({"email": "new.officer@precinct.test", "role": "PATROL", "station_id": s.station_a}),
        )
        .await;
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.body);
    let code = invite.body["code"].as_str().expect("code").to_string();
    let supervisor_id = app.send(&Call::me(), Some(&s.supervisor)).await.body["id"]
        .as_str()
        .expect("id")
        .to_string();
    ok(&app
        .send(
            &Call::update_user(&supervisor_id, json!({"role": "CITIZEN"})),
            Some(&s.admin),
        )
        .await);
    let head = app.log.head().await.expect("head");
    let r = app
        .post(
            "/invites/accept",
            None,
            json!({"code": code, "name": "New Officer", "password": PASSWORD}),
        )
        .await;
    problem(&r, StatusCode::CONFLICT);
    assert_eq!(app.log.head().await.expect("head"), head);
}

/// Rounds of the race in [`two_admins_deactivating_each_other_at_once_leave_one_in_office`].
const ADMIN_RACE_ROUNDS: usize = 12;

/// Two ADMINs, the only active ones, deactivate each other at the same moment: without
/// the ADMIN guard (ADR 0039) each read the other as active and both won, leaving no
/// ADMIN. Exactly one must win and the other get 409, every round, and the winner stays
/// in office.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_admins_deactivating_each_other_at_once_leave_one_in_office() {
    let app = TestApp::spawn().await.expect("spawn");
    let admin = app.admin().await;
    let me = app.send(&Call::me(), Some(&admin)).await;
    ok(&me);
    let mut in_office = (me.body["id"].as_str().expect("id").to_string(), admin);
    for round in 0..ADMIN_RACE_ROUNDS {
        let (a_id, a) = app.account(&in_office.1, "ADMIN", None).await;
        let (b_id, b) = app.account(&in_office.1, "ADMIN", None).await;
        // The ADMIN in office leaves: A and B are the only active ADMINs.
        let r = app.send(&Call::deactivate(&in_office.0), Some(&a)).await;
        ok(&r);
        app.caught_up(r.position()).await;

        let (a_takes_b, b_takes_a) = (Call::deactivate(&b_id), Call::deactivate(&a_id));
        let (by_a, by_b) = tokio::join!(
            app.send(&a_takes_b, Some(&a)),
            app.send(&b_takes_a, Some(&b)),
        );
        let (winner, loser) = match (by_a.status.is_success(), by_b.status.is_success()) {
            (true, false) => (((a_id.clone(), a.clone()), by_a), by_b),
            (false, true) => (((b_id.clone(), b.clone()), by_b), by_a),
            _ => panic!(
                "round {round}: exactly one may win, got {} ({}) and {} ({})",
                by_a.status, by_a.body, by_b.status, by_b.body
            ),
        };
        problem(&loser, StatusCode::CONFLICT);
        assert!(
            loser.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("last active ADMIN")),
            "round {round}: {}",
            loser.body
        );
        let ((winner_id, winner_token), won) = winner;
        assert_eq!(won.body["active"], false, "round {round}");
        app.caught_up(won.position()).await;
        // The winner is in office: its token acts, and it is the one active ADMIN.
        let admins = app
            .get(
                "/users?role=ADMIN&active=true&limit=100",
                Some(&winner_token),
            )
            .await;
        ok(&admins);
        assert_eq!(
            ids(&admins.body),
            std::slice::from_ref(&winner_id),
            "round {round}"
        );
        in_office = (winner_id, winner_token);
    }
}

/// An active ADMIN is deactivated (which keeps another in office) before it is erased:
/// the erasure of an active one is 409 with nothing appended and no key destroyed — its
/// address still reads (ADR 0039).
#[tokio::test]
async fn an_active_admin_is_not_erased_until_deactivated_and_its_data_stays_readable() {
    let s = staff().await;
    let app = &s.app;
    let (second_id, _) = app.account(&s.admin, "ADMIN", None).await;
    let head = app.log.head().await.expect("head");
    for id in [&second_id, &s.admin_id] {
        let r = app
            .delete(&format!("/admin/data-subjects/{id}"), Some(&s.admin))
            .await;
        problem(&r, StatusCode::CONFLICT);
        assert!(
            r.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("deactivated before it is erased")),
            "{}",
            r.body
        );
    }
    assert_eq!(
        app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    let one = app
        .get(&format!("/users/{second_id}"), Some(&s.admin))
        .await;
    ok(&one);
    assert!(
        one.body["email"].as_str().is_some_and(|e| e.contains('@')),
        "the key is intact: {}",
        one.body
    );
    let r = app
        .send(&Call::deactivate(&second_id), Some(&s.admin))
        .await;
    ok(&r);
    let r = app
        .delete(&format!("/admin/data-subjects/{second_id}"), Some(&s.admin))
        .await;
    ok(&r);
    let one = app
        .get_at(&format!("/users/{second_id}"), Some(&s.admin), r.position())
        .await;
    ok(&one);
    assert_eq!(one.body["personal_erased"], true, "{}", one.body);
    assert_eq!(one.body["email"], Value::Null, "{}", one.body);
}

/// Found by schemathesis: `PATCH /users/{id}` with the body `null` was taken for an
/// empty change (200). A `null` body is accepted only where the OpenAPI document
/// declares the body optional ("an object or null"); elsewhere it is a 422 and nothing
/// is appended.
#[tokio::test]
async fn a_null_or_array_body_is_refused_where_an_object_is_required_and_null_accepted_where_optional(
) {
    let s = staff().await;
    let send = |method: reqwest::Method, path: String, body: &'static str| {
        s.app
            .http
            .request(method, format!("{}{path}", s.app.base))
            .bearer_auth(&s.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let head = s.app.log.head().await.expect("head");
    // Nor an array (found by schemathesis too: serde takes `[]` for a struct whose
    // fields are all optional).
    for body in ["null", "[]", "[\"x\"]"] {
        let patched = send(
            reqwest::Method::PATCH,
            format!("/users/{}", s.dispatcher_id),
            body,
        )
        .await
        .expect("PATCH");
        assert_eq!(patched.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            patched
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
    }
    assert_eq!(
        s.app.log.head().await.expect("head"),
        head,
        "nothing appended"
    );
    // An optional body: `null` stands for nothing.
    let deactivated = send(
        reqwest::Method::POST,
        format!("/users/{}/deactivate", s.citizen_id),
        "null",
    )
    .await
    .expect("POST");
    assert_eq!(deactivated.status(), StatusCode::OK);
    let body: Value = deactivated.json().await.expect("json");
    assert_eq!(body["active"], false, "{body}");
}
