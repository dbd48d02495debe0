//! Policies as code, black-box: `portcullis policies export`, `import [--dry-run]`
//! and `test`, run as the real binary against a running server's database, and
//! the Policies page's export download and import (preview, then confirm).
//!
//! What is held: an export is stable (twice the same bytes; JSON and TOML read
//! back as the same policies, so importing either changes nothing); the shipped
//! example is exactly what a fresh demo exports, and its test cases pass; an
//! import shows what it creates, changes and deletes and a dry run changes nothing;
//! an import is all or nothing (one invalid policy and nothing changes, the problem
//! named by file and JSON path) and audited; the built-in policies are kept and
//! never changed; an import that would lock every administrator out is refused;
//! the page applies only the plan it showed.

use std::path::{Path, PathBuf};
use std::process::Output;

use portcullis::clock::Clock;
use serde_json::{Value, json};

use crate::helpers::{
    GOOD_PASSWORD, TestApp, as_refs, binary_vars, run_binary, spawn_with, test_settings,
};

const ADMIN_POLICY: &str = "00000000-0000-4000-8000-000000000002";
const OWNER_POLICY: &str = "00000000-0000-4000-8000-000000000001";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/examples")
        .join(name)
}

async fn app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path(), &[("ADMIN_REQUIRE_MFA", "false")]);
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let clock = Clock::manual(time::OffsetDateTime::now_utc().unix_timestamp());
    spawn_with(settings, dir, browser, clock).await
}

/// Runs `portcullis policies ARGS` with the app's configuration.
fn policies(app: &TestApp, args: &[&str]) -> Output {
    let vars = binary_vars(&app.settings);
    let mut full = vec!["policies"];
    full.extend_from_slice(args);
    run_binary(app.dir.path(), &full, &as_refs(&vars))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn exported(app: &TestApp) -> Value {
    let output = policies(app, &["export"]);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON")
}

/// Writes `file` (JSON) into the app's directory; returns its path.
fn write(app: &TestApp, name: &str, file: &Value) -> String {
    let path = app.dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(file).expect("json")).expect("write");
    path.to_string_lossy().into_owned()
}

fn stored_policies(app: &TestApp) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, name, priority FROM policies ORDER BY name")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn audit_actors(app: &TestApp, event: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let mut stmt = conn
        .prepare("SELECT actor FROM audit_events WHERE event = ?1 ORDER BY id")
        .expect("prepare");
    stmt.query_map([event], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn policy(name: &str, priority: u16) -> Value {
    json!({
        "name": name,
        "description": format!("{name}, for the test."),
        "effect": "allow",
        "priority": priority,
        "resource_type": "report",
        "actions": ["read"],
        "conditions": {"attribute": "subject.attributes.team", "operator": "eq", "value": "audit"}
    })
}

/// The built-in policies as exported, and `more` after them.
fn with_built_ins(app: &TestApp, more: &[Value]) -> Value {
    let mut all = exported(app)["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter(|p| p["built_in"] == true)
        .cloned()
        .collect::<Vec<_>>();
    all.extend_from_slice(more);
    json!({ "policies": all })
}

#[actix_web::test]
async fn a_fresh_demo_exports_exactly_the_shipped_example_and_stably() {
    let app = app().await;
    portcullis::demo::seed(&app.state).await.expect("demo");
    let shipped = std::fs::read_to_string(example("policies.json")).expect("example");

    let first = policies(&app, &["export"]);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        stdout(&first),
        shipped,
        "data/examples/policies.json must be what `policies export` prints for a fresh demo"
    );
    assert_eq!(stdout(&policies(&app, &["export"])), shipped, "stable");

    // TOML, to a file: stable too, and it reads back as the same policies.
    let toml_path = app.dir.path().join("policies.toml");
    let toml_text = toml_path.to_string_lossy().into_owned();
    assert!(
        policies(&app, &["export", "-o", &toml_text])
            .status
            .success()
    );
    let toml = std::fs::read_to_string(&toml_path).expect("toml");
    assert!(toml.starts_with("[[policies]]\n"), "{toml}");
    assert!(
        !toml.contains("created") && !toml.contains("version"),
        "{toml}"
    );
    let again = policies(&app, &["export", "--format", "toml"]);
    assert_eq!(stdout(&again), toml);

    // Export, then import the same file (either format): nothing to do, nothing
    // written.
    let audit_before = audit_actors(&app, "policy.imported").len();
    for file in [example("policies.json"), toml_path] {
        let file = file.to_string_lossy().into_owned();
        let output = policies(&app, &["import", &file]);
        assert!(output.status.success(), "{output:?}");
        assert!(
            stdout(&output).contains("Nothing to do"),
            "{}",
            stdout(&output)
        );
    }
    assert_eq!(audit_actors(&app, "policy.imported").len(), audit_before);

    // The live database passes the shipped cases too.
    let cases = example("policies.test.json").to_string_lossy().into_owned();
    let live = policies(&app, &["test", &cases]);
    assert!(live.status.success(), "{}{}", stdout(&live), stderr(&live));
    assert!(stdout(&live).contains("against the database: 11 passed, 0 failed"));
}

#[test]
fn the_shipped_cases_pass_and_a_broken_case_fails_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = example("policies.test.json").to_string_lossy().into_owned();
    let file = example("policies.json").to_string_lossy().into_owned();
    // No configuration and no database: what CI runs.
    let passed = run_binary(
        dir.path(),
        &["policies", "test", &cases, "--policies", &file],
        &[],
    );
    let out = stdout(&passed);
    assert_eq!(passed.status.code(), Some(0), "{out}{}", stderr(&passed));
    assert!(
        out.contains("✓ Sales reads engineering's internal roadmap: allowed by “Departments read each other's internal documents”"),
        "{out}"
    );
    assert!(out.contains("passed, 0 failed"), "{out}");

    // One case expecting the wrong answer, another the wrong policy.
    let mut broken: Value = serde_json::from_str(
        &std::fs::read_to_string(example("policies.test.json")).expect("cases"),
    )
    .expect("json");
    broken["cases"][3]["expect"] = json!("allowed");
    broken["cases"][3]
        .as_object_mut()
        .expect("case")
        .remove("decided_by");
    broken["cases"][0]["decided_by"] = json!("Everyone reads public documents");
    let broken_path = dir.path().join("broken.test.json");
    std::fs::write(&broken_path, broken.to_string()).expect("write");
    let broken_text = broken_path.to_string_lossy().into_owned();
    let failed = run_binary(
        dir.path(),
        &["policies", "test", &broken_text, "--policies", &file],
        &[],
    );
    let out = stdout(&failed);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(
        out.contains("✗ Nobody else reads a confidential document: expected allowed, got denied by “Confidential documents stay with their owner”"),
        "{out}"
    );
    assert!(
        out.contains("✗ Sales reads engineering's internal roadmap: expected allowed by “Everyone reads public documents”"),
        "{out}"
    );
    assert!(
        stderr(&failed).contains("2 of 11 cases failed"),
        "{}",
        stderr(&failed)
    );

    // A case file that does not run says where, and fails.
    broken["cases"][5]["decided_by"] = json!("No such policy");
    broken["cases"][6]["expect"] = json!("allow");
    std::fs::write(&broken_path, broken.to_string()).expect("write");
    let unreadable = run_binary(
        dir.path(),
        &["policies", "test", &broken_text, "--policies", &file],
        &[],
    );
    assert_eq!(unreadable.status.code(), Some(1));
    assert!(
        stderr(&unreadable).contains(&format!(
            "{broken_text}: cases[6].expect: unknown variant `allow`"
        )),
        "{}",
        stderr(&unreadable)
    );
}

#[actix_web::test]
async fn an_import_shows_its_plan_a_dry_run_changes_nothing_and_applying_is_audited() {
    let app = app().await;
    let before = stored_policies(&app);
    let file = write(
        &app,
        "one.json",
        &with_built_ins(
            &app,
            &[policy("Auditors read reports", 10), policy("Old rule", 5)],
        ),
    );

    let dry = policies(&app, &["import", &file, "--dry-run"]);
    let out = stdout(&dry);
    assert_eq!(dry.status.code(), Some(0), "{out}{}", stderr(&dry));
    assert!(
        out.contains("2 to create, 0 to change, 0 to delete, 2 unchanged"),
        "{out}"
    );
    assert!(out.contains("+ create  “Auditors read reports”"), "{out}");
    assert!(out.contains("Dry run: nothing was changed."), "{out}");
    assert_eq!(stored_policies(&app), before, "a dry run changes nothing");

    let applied = policies(&app, &["import", &file]);
    assert!(applied.status.success(), "{applied:?}");
    assert!(stdout(&applied).contains("Applied in one transaction"));
    assert_eq!(stored_policies(&app).len(), before.len() + 2);
    assert_eq!(audit_actors(&app, "policy.created"), ["cli", "cli"]);
    assert_eq!(audit_actors(&app, "policy.imported"), ["cli"]);

    // Edit the export: a new priority for one, the other gone, a third added.
    let mut edited = exported(&app);
    let entries = edited["policies"].as_array_mut().expect("policies");
    entries.retain(|p| p["name"] != "Old rule");
    for entry in entries.iter_mut() {
        if entry["name"] == "Auditors read reports" {
            entry["priority"] = json!(20);
        }
    }
    entries.push(policy("New rule", 1));
    let file = write(&app, "two.json", &edited);
    let dry = policies(&app, &["import", &file, "--dry-run"]);
    let out = stdout(&dry);
    assert!(dry.status.success(), "{out}");
    assert!(
        out.contains("1 to create, 1 to change, 1 to delete, 2 unchanged"),
        "{out}"
    );
    assert!(out.contains("~ change  “Auditors read reports”"), "{out}");
    assert!(out.contains("priority: 10 → 20"), "{out}");
    assert!(out.contains("- delete  “Old rule”"), "{out}");
    assert!(out.contains("+ create  “New rule”"), "{out}");

    assert!(policies(&app, &["import", &file]).status.success());
    let names: Vec<(String, i64)> = stored_policies(&app)
        .into_iter()
        .map(|(_, name, priority)| (name, priority))
        .filter(|(name, _)| !name.contains("admin pages") && !name.starts_with("Owners"))
        .collect();
    assert_eq!(
        names,
        [
            ("Auditors read reports".to_owned(), 20),
            ("New rule".to_owned(), 1)
        ]
    );
    assert_eq!(audit_actors(&app, "policy.updated"), ["cli"]);
    assert_eq!(audit_actors(&app, "policy.deleted"), ["cli"]);
    assert_eq!(app.audit_events("policy.imported").len(), 2);
    let (_, _, details) = app.audit_events("policy.imported").pop().expect("summary");
    let details: Value = serde_json::from_str(&details).expect("details");
    assert_eq!(details["created"], 1);
    assert_eq!(details["changed"], 1);
    assert_eq!(details["deleted"], 1);
    assert!(
        details["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("two.json"))
    );

    // Exported and imported again: nothing to do.
    let round = write(&app, "three.json", &exported(&app));
    let again = policies(&app, &["import", &round]);
    assert!(
        stdout(&again).contains("Nothing to do"),
        "{}",
        stdout(&again)
    );
    assert_eq!(app.audit_events("policy.imported").len(), 2);
}

#[actix_web::test]
async fn one_invalid_policy_changes_nothing_and_is_named_by_file_and_json_path() {
    let app = app().await;
    let before = stored_policies(&app);
    let mut bad = policy("Bad", 1);
    bad["conditions"]["operator"] = json!("resembles");
    let file = write(
        &app,
        "bad.json",
        &with_built_ins(&app, &[policy("Good", 1), bad, policy("Also good", 1)]),
    );
    let refused = policies(&app, &["import", &file]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "{file}: policies[3].conditions.operator: must be one of:"
        )),
        "{err}"
    );
    assert!(
        err.contains("1 problem in") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(stored_policies(&app), before);
    assert!(app.audit_events("policy.imported").is_empty());

    // A field that does not read: the path and the line, in JSON and in TOML.
    let json_path = app.dir.path().join("typo.json");
    std::fs::write(
        &json_path,
        "{\"policies\": [\n  {\"name\": \"x\", \"effect\": \"alow\", \"resource_type\": \"report\", \"actions\": [\"read\"]}\n]}\n",
    )
    .expect("write");
    let json_text = json_path.to_string_lossy().into_owned();
    let refused = policies(&app, &["import", &json_text]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&format!(
            "{json_text}: policies[0].effect: unknown variant `alow`, expected `allow` or `deny` at line 2"
        )),
        "{}",
        stderr(&refused)
    );
    let toml_path = app.dir.path().join("typo.toml");
    std::fs::write(
        &toml_path,
        "[[policies]]\nname = \"x\"\neffect = \"allow\"\nresource_type = \"report\"\nactions = [\"read\"]\npriority = \"high\"\n",
    )
    .expect("write");
    let toml_text = toml_path.to_string_lossy().into_owned();
    let refused = policies(&app, &["import", &toml_text]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&format!("{toml_text}: policies[0].priority:")),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stored_policies(&app), before);
}

#[actix_web::test]
async fn the_built_in_policies_are_kept_and_their_rules_never_change() {
    let app = app().await;
    // A file without the built-ins deletes nothing built in.
    let file = write(
        &app,
        "bare.json",
        &json!({"policies": [policy("Only rule", 1)]}),
    );
    let output = policies(&app, &["import", &file]);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout(&output).contains("1 to create, 0 to change, 0 to delete"));
    let ids: Vec<String> = stored_policies(&app)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert!(ids.contains(&ADMIN_POLICY.to_owned()) && ids.contains(&OWNER_POLICY.to_owned()));

    // The administrator policy is read-only: a change is refused, by path.
    let mut file = exported(&app);
    let position = |file: &Value, id: &str| {
        file["policies"]
            .as_array()
            .and_then(|all| all.iter().position(|p| p["id"] == id))
            .expect("listed")
    };
    let admin = position(&file, ADMIN_POLICY);
    file["policies"][admin]["actions"] = json!(["dashboard.view"]);
    let path = write(&app, "admin.json", &file);
    let refused = policies(&app, &["import", &path]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&format!(
            "{path}: policies[{admin}].actions: the built-in administrator policy is read-only"
        )),
        "{}",
        stderr(&refused)
    );

    // The owner policy may change its status, and nothing else.
    let mut file = exported(&app);
    let owner = position(&file, OWNER_POLICY);
    file["policies"][owner]["priority"] = json!(999);
    let path = write(&app, "owner.json", &file);
    let refused = policies(&app, &["import", &path]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&format!(
            "policies[{owner}].priority: a built-in policy may only be activated or deactivated"
        )),
        "{}",
        stderr(&refused)
    );
    file["policies"][owner]["priority"] = json!(1000);
    file["policies"][owner]["status"] = json!("inactive");
    let path = write(&app, "owner.json", &file);
    let changed = policies(&app, &["import", &path]);
    assert!(changed.status.success(), "{changed:?}");
    assert!(stdout(&changed).contains("status: active → inactive"));

    // Only Portcullis's own policies are built in.
    let mut file = exported(&app);
    let mine = position(&file, stored_id(&app, "Only rule").as_str());
    file["policies"][mine]["built_in"] = json!(true);
    let path = write(&app, "claim.json", &file);
    let refused = policies(&app, &["import", &path]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains(&format!("policies[{mine}].built_in")));
}

fn stored_id(app: &TestApp, name: &str) -> String {
    stored_policies(app)
        .into_iter()
        .find(|(_, n, _)| n == name)
        .map(|(id, _, _)| id)
        .expect("stored")
}

#[actix_web::test]
async fn an_import_that_locks_every_administrator_out_is_refused() {
    let app = app().await;
    app.admin_token("root@example.org").await;
    let before = stored_policies(&app);
    let lock = json!({
        "name": "Nobody administers",
        "effect": "deny",
        "resource_type": "admin",
        "actions": ["*"]
    });
    let file = write(&app, "lock.json", &with_built_ins(&app, &[lock]));
    for args in [vec!["import", &file, "--dry-run"], vec!["import", &file]] {
        let refused = policies(&app, &args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        assert!(
            stdout(&refused).contains("root@example.org could no longer:"),
            "{}",
            stdout(&refused)
        );
        assert!(
            stderr(&refused).contains(
                "refused: this change would leave no active administrator able to edit policies; nothing was changed"
            ),
            "{}",
            stderr(&refused)
        );
    }
    assert_eq!(stored_policies(&app), before);
}

// ---- the Policies page ----

/// Signs an administrator in to the pages; returns the CSRF token.
async fn signed_in(app: &TestApp) -> String {
    app.admin_token("root@example.org").await;
    let response = app
        .client
        .post(app.url("/admin/login"))
        .form(&[("email", "root@example.org"), ("password", GOOD_PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.url().path(), "/admin");
    field(&response.text().await.expect("html"), "csrf")
}

/// The value of the page's first hidden field `name`.
fn field(html: &str, name: &str) -> String {
    html.split(&format!(r#"name="{name}" value=""#))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        .to_owned()
}

async fn post(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/admin/policies/import"))
        .form(fields)
        .send()
        .await
        .expect("request")
}

#[actix_web::test]
async fn the_policies_page_exports_and_imports_after_showing_the_plan() {
    let app = app().await;
    let csrf = signed_in(&app).await;

    let list = app.get("/admin/policies").await.text().await.expect("html");
    assert!(
        list.contains(r#"href="/admin/policies/export""#)
            && list.contains(r#"href="/admin/policies/import""#)
    );

    // Export: a download of exactly what the command line writes.
    let download = app.get("/admin/policies/export").await;
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["content-disposition"],
        "attachment; filename=\"policies.json\""
    );
    assert!(
        download.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/json")
    );
    let text = download.text().await.expect("body");
    assert_eq!(text, stdout(&policies(&app, &["export"])));
    let toml = app.get("/admin/policies/export?format=toml").await;
    assert_eq!(
        toml.headers()["content-disposition"],
        "attachment; filename=\"policies.toml\""
    );

    // Import: the plan first, nothing changed yet.
    let before = stored_policies(&app);
    let file = with_built_ins(&app, &[policy("Pasted <rule>", 3)]).to_string();
    let preview = post(&app, &[("csrf", &csrf), ("policies", &file)]).await;
    assert_eq!(preview.status(), 200);
    let html = preview.text().await.expect("html");
    assert!(
        html.contains("1 to create, 0 to change, 0 to delete, 2 unchanged"),
        "{html}"
    );
    assert!(
        html.contains("Pasted &#60;rule&#62;") && !html.contains("Pasted <rule>"),
        "escaped: {html}"
    );
    assert!(html.contains("Apply these changes"));
    assert_eq!(stored_policies(&app), before);
    let generation = field(&html, "generation");

    // A confirmation for a plan made over other policies is shown again, not applied.
    let stale = post(
        &app,
        &[
            ("csrf", &csrf),
            ("policies", &file),
            ("generation", "-1"),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(stale.status(), 200);
    assert!(
        stale
            .text()
            .await
            .expect("html")
            .contains("changed since you reviewed")
    );
    assert_eq!(stored_policies(&app), before);

    // Confirmed: applied, audited as the administrator, back to the list.
    let applied = post(
        &app,
        &[
            ("csrf", &csrf),
            ("policies", &file),
            ("generation", &generation),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(applied.url().path(), "/admin/policies");
    assert!(
        applied
            .text()
            .await
            .expect("html")
            .contains("Imported: 1 created, 0 changed, 0 deleted, 2 unchanged.")
    );
    assert_eq!(stored_policies(&app).len(), before.len() + 1);
    let imported = app.audit_events("policy.imported");
    assert_eq!(imported.len(), 1);
    assert!(imported[0].2.contains("admin page"));

    // An invalid file: 422, each problem by its path; nothing changes.
    let mut bad = with_built_ins(&app, &[policy("Bad", 1)]);
    bad["policies"][2]["effect"] = json!("maybe");
    let refused = post(&app, &[("csrf", &csrf), ("policies", &bad.to_string())]).await;
    assert_eq!(refused.status(), 422);
    let html = refused.text().await.expect("html");
    assert!(html.contains("<code>policies[2].effect</code>"), "{html}");

    // Without the CSRF token: refused.
    let forged = post(&app, &[("policies", &file)]).await;
    assert_eq!(forged.status(), 403);
}

#[actix_web::test]
async fn an_import_on_the_page_is_no_way_around_a_deny_on_its_changes() {
    let app = app().await;
    let csrf = signed_in(&app).await;
    let token = app
        .signed_in("root@example.org", GOOD_PASSWORD)
        .await
        .access_token;
    let deny = json!({
        "name": "No deleting policies",
        "effect": "deny",
        "resource_type": "admin",
        "actions": ["policy.delete"]
    });
    let created = app
        .post_with_token("/api/v1/admin/policies", &token, Some(&deny))
        .await;
    assert_eq!(created.status(), 201);
    // A file without the deny deletes it: the page asks `policy.delete`, and is refused.
    let file = with_built_ins(&app, &[]).to_string();
    let refused = post(&app, &[("csrf", &csrf), ("policies", &file)]).await;
    assert_eq!(refused.status(), 403);
    assert!(
        stored_policies(&app)
            .iter()
            .any(|(_, name, _)| name == "No deleting policies")
    );
}

// ---- the admin API ----

#[actix_web::test]
async fn the_admin_api_exports_the_same_file_and_imports_it_with_a_plan() {
    let app = app().await;
    let token = app.admin_token("root@example.org").await;
    let user = app.signed_up("plain@example.org").await.access_token;

    // Export: the CLI's bytes.
    let response = app
        .get_with_token("/api/v1/admin/policies/export", &token)
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert_eq!(
        text.as_bytes(),
        policies(&app, &["export"]).stdout.as_slice()
    );
    assert_eq!(
        app.get_with_token("/api/v1/admin/policies/export", &user)
            .await
            .status(),
        403
    );

    let file = with_built_ins(&app, &[policy("Auditors read reports", 300)]);
    let before = stored_policies(&app);
    let import = |path: &'static str, body: Value| {
        let (app, token) = (&app, &token);
        async move { app.post_with_token(path, token, Some(&body)).await }
    };

    // A dry run answers the plan and changes nothing.
    let dry = import("/api/v1/admin/policies/import?dry_run=true", file.clone()).await;
    assert_eq!(dry.status(), 200);
    let plan: Value = dry.json().await.expect("json");
    assert_eq!(plan["applied"], false, "{plan}");
    assert_eq!(plan["created"], 1, "{plan}");
    assert_eq!(plan["changes"][0]["kind"], "create", "{plan}");
    assert_eq!(plan["changes"][0]["name"], "Auditors read reports");
    assert_eq!(stored_policies(&app), before);

    // Applied: audited as one import from the API; again, nothing to do.
    let done = import("/api/v1/admin/policies/import", file.clone()).await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.expect("json");
    assert_eq!(
        (done["applied"].clone(), done["created"].clone()),
        (json!(true), json!(1))
    );
    assert!(
        stored_policies(&app)
            .iter()
            .any(|(_, name, priority)| name == "Auditors read reports" && *priority == 300)
    );
    assert_eq!(audit_actors(&app, "policy.imported").len(), 1);
    let exported: Value = app
        .get_with_token("/api/v1/admin/policies/export", &token)
        .await
        .json()
        .await
        .expect("json");
    let again: Value = import("/api/v1/admin/policies/import", exported.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (again["applied"].clone(), again["unchanged"].clone()),
        (json!(false), json!(3))
    );

    // A bad field is named by its JSON path; nothing changes.
    let mut bad = exported;
    bad["policies"][2]["effect"] = json!("maybe");
    let refused = import("/api/v1/admin/policies/import", bad).await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.expect("json");
    assert!(
        problem.to_string().contains("policies[2].effect"),
        "{problem}"
    );

    // Locking every administrator out is refused, dry run or not.
    let lock = json!({"name": "Nobody administers", "effect": "deny",
                      "resource_type": "admin", "actions": ["*"]});
    for path in [
        "/api/v1/admin/policies/import?dry_run=true",
        "/api/v1/admin/policies/import",
    ] {
        let refused = import(path, with_built_ins(&app, std::slice::from_ref(&lock))).await;
        assert_eq!(refused.status(), 409, "{path}");
    }
    // An ordinary account may not import at all.
    let forbidden = app
        .post_with_token("/api/v1/admin/policies/import", &user, Some(&file))
        .await;
    assert_eq!(forbidden.status(), 403);
    assert!(
        stored_policies(&app)
            .iter()
            .any(|(_, name, _)| name == "Auditors read reports")
    );
}
