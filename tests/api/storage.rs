//! The database file, tried the way an operator's bad day tries it: restored from an
//! older copy, deleted while the server runs, deleted between runs, corrupted, and
//! refusing writes. Each is done to the real file (or injected), and the server
//! must notice and deny more, never less.

use std::path::Path;

use serde_json::json;

use crate::helpers::{
    GOOD_PASSWORD, ServerProcess, TestApp, as_refs, binary_vars, problem, raw_get, run_binary,
    spawn_app,
};

/// The server's own variables, for the binary, on a free port.
fn vars_of(app: &TestApp) -> Vec<(String, String)> {
    let mut vars = binary_vars(&app.settings);
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    vars
}

/// A consistent copy of the live database (what a backup tool makes).
fn snapshot(db: &Path, into: &Path) {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute("VACUUM INTO ?1", [into.to_string_lossy()])
        .expect("vacuum into");
}

/// Removes the database's files (the anchor beside them stays).
fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(&name);
    }
}

#[actix_web::test]
async fn a_rolled_back_database_is_refused_until_accepted_and_then_no_old_session_lives() {
    let app = spawn_app().await;
    let before = app.signed_up("restored@example.org").await;
    let backup = app.dir.path().join("backup.db");
    snapshot(&app.db_path, &backup);
    // After the backup: the user signs out, so that session must stay dead.
    app.post_with_token("/api/v1/auth/logout", &before.access_token, None)
        .await;
    assert_eq!(app.me_status(&before.access_token).await, 401);
    let dir = app.dir.path().to_owned();
    let db_path = app.db_path.clone();
    let vars = vars_of(&app);
    app.handle.stop(true).await;
    remove_database(&db_path);
    std::fs::rename(&backup, &db_path).expect("restore the older copy");

    let refused = run_binary(&dir, &["serve"], &as_refs(&vars));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("not the database this server last wrote")
            && said.contains("--accept-rollback"),
        "{said}"
    );

    let mut server = ServerProcess::start(&dir, &["serve", "--accept-rollback"], &as_refs(&vars));
    // The session the older copy still thought live is over: its token is refused.
    let me = raw_get(
        &server.address,
        "/api/v1/auth/me",
        &[&format!("Authorization: Bearer {}", before.access_token)],
    );
    assert!(me.starts_with("HTTP/1.1 401"), "{me}");
    assert!(server.terminate());
    let conn = rusqlite::Connection::open(&db_path).expect("open");
    let accepted: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_events WHERE event = 'database.rollback_accepted'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(accepted, 1);
    let live: i64 = conn
        .query_row(
            "SELECT count(*) FROM sessions WHERE ended_at IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(live, 0);
    // Accepted once, the database is the anchored one again: a plain start works.
    drop(conn);
    let mut again = ServerProcess::start(&dir, &["serve"], &as_refs(&vars));
    let stopped = again.terminate();
    assert!(
        stopped,
        "{:?} {}",
        again.child.try_wait(),
        std::fs::read_to_string(&again.stderr_path).unwrap_or_default()
    );
}

#[actix_web::test]
async fn a_database_missing_where_one_was_kept_is_not_silently_recreated() {
    let app = spawn_app().await;
    app.signed_up("kept@example.org").await;
    let (dir, db_path, vars) = (
        app.dir.path().to_owned(),
        app.db_path.clone(),
        vars_of(&app),
    );
    app.handle.stop(true).await;
    remove_database(&db_path);
    let refused = run_binary(&dir, &["serve"], &as_refs(&vars));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is missing"));
    assert!(!db_path.exists(), "no empty database was created");
}

#[actix_web::test]
async fn a_database_deleted_while_serving_stops_acknowledging_writes() {
    let app = spawn_app().await;
    let tokens = app.signed_up("deleted@example.org").await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    remove_database(&app.db_path);
    problem(app.get("/health/ready").await, 503).await;
    let write = app
        .post_with_token(
            "/api/v1/documents",
            &tokens.access_token,
            Some(&json!({"title": "lost", "classification": "public"})),
        )
        .await;
    let body = problem(write, 503).await;
    assert_eq!(body["title"], "Service unavailable");
    assert_eq!(
        app.register("after@example.org", GOOD_PASSWORD)
            .await
            .status(),
        503
    );
}

#[actix_web::test]
async fn readiness_fails_when_writes_fail_or_pages_are_corrupt() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/ready").await.status(), 200);
    app.db.inject_write_errors(true);
    // Answers are reused for a moment, so probes cannot load the server.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    problem(app.get("/health/ready").await, 503).await;
    app.db.inject_write_errors(false);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    // Corrupt every page after the first, in the file itself.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    drop(conn);
    let mut bytes = std::fs::read(&app.db_path).expect("read");
    for byte in bytes.iter_mut().skip(4096) {
        *byte = 0xA5;
    }
    std::fs::write(&app.db_path, &bytes).expect("write");
    problem(app.get("/health/ready").await, 503).await;
}

#[actix_web::test]
async fn during_a_write_outage_logout_still_bites_and_failed_logins_still_count() {
    let app = crate::helpers::spawn_app_with(&[("SOFTLOCK_STEPS", "3:600")]).await;
    let session = app.signed_up("outage@example.org").await;
    app.db.inject_write_errors(true);
    // The logout cannot be stored: the answer says so, and the token dies anyway.
    let logout = app
        .post_with_token("/api/v1/auth/logout", &session.access_token, None)
        .await;
    let body = problem(logout, 503).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could not be saved")),
        "{body}"
    );
    assert_eq!(app.me_status(&session.access_token).await, 401);
    // Wrong passwords cannot be recorded either, but they count.
    for _ in 0..3 {
        let wrong = app
            .login("outage@example.org", "not the password at all")
            .await;
        assert_eq!(wrong.status(), 503);
    }
    app.db.inject_write_errors(false);
    // The softlock the outage reached holds: even the right password is refused.
    let refused = app.login("outage@example.org", GOOD_PASSWORD).await;
    assert_eq!(
        problem(refused, 401).await["detail"],
        "Invalid email or password"
    );
}

#[actix_web::test]
async fn a_new_database_gets_its_anchor_and_keeps_it_current() {
    let app = spawn_app().await;
    let mut anchor = app.db_path.as_os_str().to_owned();
    anchor.push(".anchor");
    app.signed_up("anchored@example.org").await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let (head, hash): (i64, String) = conn
        .query_row(
            "SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("head");
    // The anchor follows within moments.
    let mut seen = serde_json::Value::Null;
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&anchor) {
            seen = serde_json::from_str(&text).expect("json");
            if seen["event"] == head {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(seen["event"], head);
    assert_eq!(seen["hash"], hash);
}
