use crate::helpers::{run_binary, spawn_app};

fn verify(db: &std::path::Path) -> (Option<i32>, String) {
    let dir = db.parent().expect("parent");
    let output = run_binary(
        dir,
        &["audit", "verify", "--database", db.to_str().expect("utf-8")],
        &[],
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[actix_web::test]
async fn startup_is_audited_and_the_chain_verifies() {
    let app = spawn_app().await;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let (event, actor, outcome): (String, String, String) = conn
        .query_row(
            "SELECT event, actor, outcome FROM audit_events ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("first event");
    assert_eq!(
        (event.as_str(), actor.as_str(), outcome.as_str()),
        ("app.started", "system", "success")
    );
    let (code, stdout) = verify(&app.db_path);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("intact: 1 events"), "{stdout}");
}

#[actix_web::test]
async fn an_edited_row_is_detected_by_audit_verify() {
    let app = spawn_app().await;
    // Someone with file access removes the guard triggers and rewrites history.
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    conn.execute_batch(
        "DROP TRIGGER audit_events_no_update;
         UPDATE audit_events SET outcome = 'failure', actor = 'mallory' WHERE id = 1;",
    )
    .expect("tamper");
    let (code, stdout) = verify(&app.db_path);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("BROKEN at event 1"), "{stdout}");
    assert!(stdout.contains("edited"), "{stdout}");
}

#[test]
fn verify_refuses_a_missing_database_without_creating_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.db");
    let (code, _) = verify(&missing);
    assert_eq!(code, Some(1));
    assert!(!missing.exists());
}

#[test]
fn check_config_records_its_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("c.db");
    let mut vars: Vec<(String, String)> = crate::helpers::secret_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    vars.push(("DATABASE_PATH".into(), db.to_string_lossy().into_owned()));
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = run_binary(dir.path(), &["check-config"], &borrowed);
    assert!(output.status.success());
    let conn = rusqlite::Connection::open(&db).expect("open");
    let (outcome, details): (String, String) = conn
        .query_row(
            "SELECT outcome, details FROM audit_events WHERE event = 'config.checked'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("config.checked recorded");
    assert_eq!(outcome, "success");
    assert!(details.contains("\"score\""), "{details}");
}

/// `audit export` writes the events as JSON lines with their chain hashes;
/// `audit verify --file` checks the export on its own, refuses an edited, removed
/// or foreign line, and names the export's ends to compare with the live chain.
#[actix_web::test]
async fn an_export_verifies_on_its_own_and_tampering_shows() {
    let app = spawn_app().await;
    for n in 0..3 {
        app.signed_up(&format!("member{n}@example.org")).await;
    }
    let db = app.db_path.to_str().expect("utf-8").to_owned();
    let dir = app.db_path.parent().expect("parent").to_owned();
    let export = dir.join("audit.jsonl");
    let out = export.to_str().expect("utf-8").to_owned();
    let written = run_binary(
        &dir,
        &["audit", "export", "--database", &db, "--output", &out],
        &[],
    );
    assert!(written.status.success(), "{written:?}");
    let text = std::fs::read_to_string(&export).expect("export");
    let lines: Vec<&str> = text.lines().collect();
    let events: i64 = rusqlite::Connection::open(&app.db_path)
        .expect("open")
        .query_row("SELECT COUNT(*) FROM audit_events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(lines.len() as i64, events);
    let first: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
    assert!(first["hash"].is_string() && first["prev_hash"].is_string());

    let check = |path: &std::path::Path| {
        let output = run_binary(
            &dir,
            &["audit", "verify", "--file", path.to_str().expect("utf-8")],
            &[],
        );
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = check(&export);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("Export intact: {events} events")),
        "{stdout}"
    );
    // Its end is the database's head.
    let (_, live) = verify(&app.db_path);
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).expect("json");
    assert!(
        live.contains(last["hash"].as_str().expect("hash")),
        "{live}"
    );

    // An edited line, a removed line, a line that is not an event: each refused.
    let tampered = dir.join("tampered.jsonl");
    let edited = text.replacen(
        r#""event":"auth.login_succeeded""#,
        r#""event":"auth.login_failed""#,
        1,
    );
    assert_ne!(edited, text, "a sign-in is in the export");
    std::fs::write(&tampered, &edited).expect("write");
    let (code, stdout) = check(&tampered);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("BROKEN at line"), "{stdout}");
    let mut removed = lines.clone();
    removed.remove(2);
    std::fs::write(&tampered, removed.join("\n")).expect("write");
    let (code, stdout) = check(&tampered);
    assert_eq!(code, Some(1));
    assert!(
        stdout.contains("BROKEN at line 3") && stdout.contains("missing"),
        "{stdout}"
    );
    std::fs::write(&tampered, format!("{text}{{\"not\": \"an event\"}}\n")).expect("write");
    let (code, stdout) = check(&tampered);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("not an exported audit event"), "{stdout}");

    // --since: a stretch of the chain, which verifies on its own too.
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    let later = run_binary(
        &dir,
        &[
            "audit",
            "export",
            "--database",
            &db,
            "--since",
            &tomorrow.to_string(),
        ],
        &[],
    );
    assert!(
        later.status.success() && later.stdout.is_empty(),
        "{later:?}"
    );
    let bad = run_binary(
        &dir,
        &["audit", "export", "--database", &db, "--since", "last week"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
}
