//! `portcullis backup`: a consistent, checked copy while the server is being
//! written to, with what a restore needs to know beside it.

use crate::helpers::{run_binary, spawn_app};

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
