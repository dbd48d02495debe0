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
