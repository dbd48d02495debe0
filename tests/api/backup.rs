//! `portcullis backup` and `portcullis restore`: a consistent, checked copy while
//! the server is being written to, with what a restore needs to know beside it;
//! and a restore that waits for the server to stop, checks before it touches
//! anything, keeps what it replaces, and lets no token from before come back.

use std::path::Path;

use crate::helpers::{
    GOOD_PASSWORD, ServerProcess, as_refs, binary_vars, raw_get, raw_request, run_binary, spawn_app,
};

#[actix_web::test]
async fn a_backup_under_write_load_is_consistent_and_says_what_restore_needs() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("portcullis-backup.db");
    let (db, out) = (
        app.db_path.to_str().expect("utf-8").to_owned(),
        target.to_str().expect("utf-8").to_owned(),
    );
    // Writes go on while the backup runs (off the test's thread, which serves).
    let work_dir = dir.path().to_owned();
    let backup = actix_web::rt::task::spawn_blocking(move || {
        run_binary(&work_dir, &["backup", &out, "--database", &db], &[])
    });
    for n in 0..20 {
        app.signed_up(&format!("writer{n}@example.org")).await;
    }
    let backup = backup.await.expect("the backup ran");
    assert!(backup.status.success(), "{backup:?}");
    let said = String::from_utf8_lossy(&backup.stdout).into_owned();
    assert!(said.contains("audit events intact"), "{said}");

    // The copy is whole: its audit chain verifies on its own.
    let verified = run_binary(
        dir.path(),
        &[
            "audit",
            "verify",
            "--database",
            target.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(verified.status.success(), "{verified:?}");
    // One self-contained file: checking and verifying it left nothing beside it.
    let beside = names_in(dir.path());
    assert!(
        beside
            .iter()
            .all(|name| name == "portcullis-backup.db" || name == "portcullis-backup.db.json"),
        "{beside:?}"
    );
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("portcullis-backup.db.json")).expect("metadata"),
    )
    .expect("json");
    assert!(
        meta["schema_version"].as_i64().is_some_and(|v| v > 0),
        "{meta}"
    );
    assert!(meta["audit_head"].is_string(), "{meta}");
    assert!(
        meta["keys"]
            .as_str()
            .is_some_and(|k| k.contains("JWT_SECRET_KEY"))
    );
    let head = meta["audit_head"].as_str().expect("head");
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains(head),
        "the metadata names the copy's head"
    );

    // A backup never overwrites one.
    let again = run_binary(
        dir.path(),
        &[
            "backup",
            target.to_str().expect("utf-8"),
            "--database",
            app.db_path.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_eq!(again.status.code(), Some(2));
}

/// The server's own variables for the binary, on a free port, with the database at
/// `database`.
fn server_vars(app: &crate::helpers::TestApp, database: &Path) -> Vec<(String, String)> {
    let mut vars = binary_vars(&app.settings);
    vars.retain(|(name, _)| name != "DATABASE_PATH");
    vars.push(("DATABASE_PATH".into(), database.display().to_string()));
    vars.push(("BIND_ADDRESS".into(), "127.0.0.1:0".into()));
    vars
}

/// The names of the files in `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// `portcullis backup` of the app's database into `dir/nightly.db`.
fn nightly_backup(app: &crate::helpers::TestApp, dir: &Path) -> std::path::PathBuf {
    let backup = dir.join("nightly.db");
    let made = run_binary(
        dir,
        &[
            "backup",
            backup.to_str().expect("utf-8"),
            "--database",
            app.db_path.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(made.status.success(), "{made:?}");
    backup
}

/// `vars` with an MFA key that opens none of the stored secrets.
fn with_another_mfa_key(vars: &[(String, String)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(name, value)| match name.as_str() {
            "MFA_ENCRYPTION_KEY" => (name.clone(), fernet::Fernet::generate_key()),
            _ => (name.clone(), value.clone()),
        })
        .collect()
}

/// The live database as it stands (and its anchor), copied to `into`: the database
/// a second server then runs on, apart from the test's own app.
fn take_over(app: &crate::helpers::TestApp, into: &Path) {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute("VACUUM INTO ?1", [into.to_string_lossy()])
        .expect("vacuum into");
    let anchor = |db: &Path| format!("{}.anchor", db.display());
    // The anchor lags commits by milliseconds: wait until it holds the head.
    let head: i64 = conn
        .query_row("SELECT max(id) FROM audit_events", [], |r| r.get(0))
        .expect("head");
    for _ in 0..200 {
        let anchored = std::fs::read_to_string(anchor(&app.db_path)).unwrap_or_default();
        if anchored.contains(&format!("\"event\":{head},")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::copy(anchor(&app.db_path), anchor(into)).expect("copy the anchor");
}

fn login_status(address: &str, email: &str) -> String {
    let body = serde_json::json!({"email": email, "password": GOOD_PASSWORD}).to_string();
    raw_request(address, "POST", "/api/v1/auth/login", &[], Some(&body))
}

fn me(address: &str, token: &str) -> String {
    raw_get(
        address,
        "/api/v1/auth/me",
        &[&format!("Authorization: Bearer {token}")],
    )
}

#[actix_web::test]
async fn a_restore_waits_for_the_server_to_stop_then_brings_the_backup_back_with_no_old_session_alive()
 {
    let app = spawn_app().await;
    let before = app.signed_up("before@example.org").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = nightly_backup(&app, dir.path());
    let after = app.signed_up("after@example.org").await;
    let database = dir.path().join("portcullis.db");
    take_over(&app, &database);
    let vars = server_vars(&app, &database);
    let restore_args = ["restore", backup.to_str().expect("utf-8")];

    // A running server has the database open: refused, nothing touched.
    let mut server = ServerProcess::start(dir.path(), &["serve"], &as_refs(&vars));
    assert!(me(&server.address, &after.access_token).starts_with("HTTP/1.1 200"));
    let refused = run_binary(dir.path(), &restore_args, &as_refs(&vars));
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("has it open") && said.contains("stop it first"),
        "{said}"
    );
    assert!(me(&server.address, &after.access_token).starts_with("HTTP/1.1 200"));
    assert!(server.terminate());

    let restored = run_binary(dir.path(), &restore_args, &as_refs(&vars));
    assert!(restored.status.success(), "{restored:?}");
    let said = String::from_utf8_lossy(&restored.stdout).into_owned();
    assert!(
        said.contains("sessions ended") && said.contains("kept at"),
        "{said}"
    );
    let kept: Vec<_> = names_in(dir.path())
        .into_iter()
        .filter(|name| name.starts_with("portcullis.db.replaced-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    // The kept database is the one replaced: it knows the later account.
    let kept_conn = rusqlite::Connection::open(dir.path().join(&kept[0])).expect("open kept");
    let later: i64 = kept_conn
        .query_row(
            "SELECT count(*) FROM users WHERE email = 'after@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(later, 1);

    // A plain start (no --accept-rollback): the backup's world, and no token from
    // before it, nor from after it, is honoured.
    let mut server = ServerProcess::start(dir.path(), &["serve"], &as_refs(&vars));
    assert!(me(&server.address, &before.access_token).starts_with("HTTP/1.1 401"));
    assert!(me(&server.address, &after.access_token).starts_with("HTTP/1.1 401"));
    assert!(login_status(&server.address, "before@example.org").starts_with("HTTP/1.1 200"));
    assert!(login_status(&server.address, "after@example.org").starts_with("HTTP/1.1 401"));
    assert!(server.terminate());

    let verified = run_binary(
        dir.path(),
        &[
            "audit",
            "verify",
            "--database",
            database.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(verified.status.success(), "{verified:?}");
    let conn = rusqlite::Connection::open(&database).expect("open");
    let (restores, ended): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM audit_events WHERE event = 'database.restored'),
                    (SELECT count(*) FROM sessions WHERE end_reason = 'restored')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    assert_eq!(restores, 1);
    assert!(ended >= 1, "the backup's live session was ended");
}

#[actix_web::test]
async fn a_backup_that_is_not_whole_or_not_ours_is_refused_before_anything_is_touched() {
    let app = spawn_app().await;
    app.signed_up("kept@example.org").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = nightly_backup(&app, dir.path());
    let database = dir.path().join("portcullis.db");
    take_over(&app, &database);
    let vars = server_vars(&app, &database);
    let untouched = std::fs::read(&database).expect("read");
    let restore = |file: &Path, vars: &[(String, String)]| {
        run_binary(
            dir.path(),
            &["restore", file.to_str().expect("utf-8")],
            &as_refs(vars),
        )
    };
    let refused_with = |out: std::process::Output, code: i32, words: &str| {
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(words), "{said}");
        assert_eq!(std::fs::read(&database).expect("read"), untouched);
    };

    // Not a database at all.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "this is not a database").expect("write");
    refused_with(restore(&garbage, &vars), 1, "is not usable");

    // A copy whose metadata names another head.
    let meta = dir.path().join("nightly.db.json");
    let original = std::fs::read_to_string(&meta).expect("metadata");
    let mut changed: serde_json::Value = serde_json::from_str(&original).expect("json");
    changed["audit_head"] = "0".repeat(64).into();
    std::fs::write(&meta, changed.to_string()).expect("write");
    refused_with(restore(&backup, &vars), 1, "describes another copy");
    std::fs::write(&meta, original).expect("write");

    // Keys that do not open its secrets: the configuration is what is wrong (2).
    let other_keys = with_another_mfa_key(&vars);
    refused_with(restore(&backup, &other_keys), 2, "MFA_ENCRYPTION_KEY");

    let leftovers: Vec<_> = names_in(dir.path())
        .into_iter()
        .filter(|name| name.contains(".replaced-") || name.ends_with(".restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Whatever stops a restore (or a start accepting a rollback) half-way, the
/// database in place is refused by a plain start until its sessions are ended: a
/// token signed out after the backup never works again.
#[actix_web::test]
async fn an_interrupted_restore_or_rollback_revives_no_session() {
    let app = spawn_app().await;
    let tokens = app.signed_up("gone@example.org").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = nightly_backup(&app, dir.path());
    app.post_with_token("/api/v1/auth/logout", &tokens.access_token, None)
        .await;
    let database = dir.path().join("portcullis.db");
    take_over(&app, &database);
    let vars = server_vars(&app, &database);

    // A copy whose sessions cannot be ended (a trigger refuses it): the restore
    // fails after the copy is in place.
    let stubborn = dir.path().join("stubborn.db");
    std::fs::copy(&backup, &stubborn).expect("copy");
    rusqlite::Connection::open(&stubborn)
        .expect("open")
        .execute_batch(
            "CREATE TRIGGER keep_sessions BEFORE UPDATE ON sessions
             BEGIN SELECT RAISE(ABORT, 'no'); END;",
        )
        .expect("trigger");
    let failed = run_binary(
        dir.path(),
        &["restore", stubborn.to_str().expect("utf-8")],
        &as_refs(&vars),
    );
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("--accept-rollback"),
        "{failed:?}"
    );
    let refused = run_binary(dir.path(), &["serve"], &as_refs(&vars));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");

    // Accepting the rollback with a key that does not open the secrets fails, and
    // leaves a plain start refused still.
    rusqlite::Connection::open(&database)
        .expect("open")
        .execute_batch("DROP TRIGGER keep_sessions")
        .expect("drop trigger");
    let wrong_key = with_another_mfa_key(&vars);
    let refused = run_binary(
        dir.path(),
        &["serve", "--accept-rollback"],
        &as_refs(&wrong_key),
    );
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let refused = run_binary(dir.path(), &["serve"], &as_refs(&vars));
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");

    // Accepted: the token signed out after the backup, and its refresh token, are
    // refused.
    let mut server =
        ServerProcess::start(dir.path(), &["serve", "--accept-rollback"], &as_refs(&vars));
    assert!(me(&server.address, &tokens.access_token).starts_with("HTTP/1.1 401"));
    let refresh = serde_json::json!({"refresh_token": tokens.refresh_token}).to_string();
    let refreshed = raw_request(
        &server.address,
        "POST",
        "/api/v1/auth/refresh",
        &[],
        Some(&refresh),
    );
    assert!(refreshed.starts_with("HTTP/1.1 401"), "{refreshed}");
    assert!(server.terminate());
}

#[actix_web::test]
async fn a_restore_replaces_a_corrupt_database_and_keeps_everything_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let tokens = app.signed_up("kept@example.org").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = nightly_backup(&app, dir.path());
    let database = dir.path().join("portcullis.db");
    take_over(&app, &database);
    let vars = server_vars(&app, &database);
    // The disk ate the database.
    std::fs::write(&database, vec![0x5a; 8192]).expect("corrupt");
    let restored = run_binary(
        dir.path(),
        &["restore", backup.to_str().expect("utf-8")],
        &as_refs(&vars),
    );
    assert!(restored.status.success(), "{restored:?}");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&backup), 0o600, "the backup");
    assert_eq!(mode(&database), 0o600, "the restored database");
    let kept = names_in(dir.path())
        .into_iter()
        .find(|name| name.starts_with("portcullis.db.replaced-"))
        .map(|name| dir.path().join(name))
        .expect("the corrupt database is kept");
    assert_eq!(std::fs::read(&kept).expect("kept"), vec![0x5a; 8192]);

    let mut server = ServerProcess::start(dir.path(), &["serve"], &as_refs(&vars));
    assert!(me(&server.address, &tokens.access_token).starts_with("HTTP/1.1 401"));
    assert!(login_status(&server.address, "kept@example.org").starts_with("HTTP/1.1 200"));
    assert!(server.terminate());
}
