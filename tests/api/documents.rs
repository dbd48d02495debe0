//! Documents through the policy engine: no IDOR (someone else's document is 404 on
//! every verb and absent from lists), department policies that grant reading and
//! not writing, default deny, and an evaluation error that fails closed.

use serde_json::{Value, json};

use crate::helpers::{TestApp, problem, spawn_app};

const DOCS: &str = "/api/v1/documents";
const POLICIES: &str = "/api/v1/admin/policies";

async fn create_doc(
    app: &TestApp,
    token: &str,
    title: &str,
    classification: &str,
    department: &str,
) -> String {
    let response = app
        .post_with_token(
            DOCS,
            token,
            Some(&json!({
                "title": title,
                "body": "text",
                "classification": classification,
                "attributes": {"department": department}
            })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

async fn listed_titles(app: &TestApp, token: &str) -> Vec<String> {
    let body: Value = app
        .get_with_token(DOCS, token)
        .await
        .json()
        .await
        .expect("json");
    body["documents"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["title"].as_str().expect("title").to_owned())
        .collect()
}

async fn add_policy(app: &TestApp, admin: &str, policy: Value) {
    let response = app.post_with_token(POLICIES, admin, Some(&policy)).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "{text}");
}

#[actix_web::test]
async fn someone_elses_document_is_404_on_every_verb_and_never_listed() {
    let app = spawn_app().await;
    let alice = app.signed_up("alice@example.org").await.access_token;
    let mallory = app.signed_up("mallory@example.org").await.access_token;
    let id = create_doc(&app, &alice, "Alice's secret plan", "internal", "x").await;
    let path = format!("{DOCS}/{id}");
    let edit = json!({"title": "pwned", "body": "", "classification": "public"});

    problem(app.get_with_token(&path, &mallory).await, 404).await;
    problem(app.put_with_token(&path, &mallory, &edit).await, 404).await;
    problem(
        app.patch_with_token(&path, &mallory, &json!({"title": "pwned"}))
            .await,
        404,
    )
    .await;
    problem(app.delete_with_token(&path, &mallory).await, 404).await;
    assert!(listed_titles(&app, &mallory).await.is_empty());
    // A document that does not exist answers exactly the same.
    let missing = format!("{DOCS}/00000000-0000-4000-8000-00000000abcd");
    let a = problem(app.get_with_token(&missing, &mallory).await, 404).await;
    let b = problem(app.get_with_token(&path, &mallory).await, 404).await;
    assert_eq!(
        (a["title"].clone(), a["detail"].clone()),
        (b["title"].clone(), b["detail"].clone())
    );

    // The owner, through the built-in owner policy, may do everything.
    let fetched: Value = app
        .get_with_token(&path, &alice)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["title"], "Alice's secret plan");
    assert_eq!(
        listed_titles(&app, &alice).await,
        vec!["Alice's secret plan"]
    );
    let patched = app
        .patch_with_token(&path, &alice, &json!({"title": "Renamed"}))
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(app.delete_with_token(&path, &alice).await.status(), 204);
    problem(app.get_with_token(&path, &alice).await, 404).await;
}

#[actix_web::test]
async fn the_owner_comes_from_the_token_never_the_body() {
    let app = spawn_app().await;
    let alice = app.signed_up("owner@example.org").await.access_token;
    let sneaky = app
        .post_with_token(
            DOCS,
            &alice,
            Some(&json!({"title": "t", "classification": "public", "owner_id": "00000000-0000-4000-8000-000000000009"})),
        )
        .await;
    let body = problem(sneaky, 422).await;
    assert_eq!(body["errors"][0]["field"], "owner_id");
}

#[actix_web::test]
async fn a_department_policy_grants_read_and_not_update() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let alice = app
        .user_with("alice@example.org", json!({"department": "engineering"}))
        .await
        .access_token;
    let bob = app
        .user_with("bob@example.org", json!({"department": "sales"}))
        .await
        .access_token;
    add_policy(
        &app,
        &admin,
        json!({
            "name": "Sales reads engineering's internal documents",
            "effect": "allow",
            "resource_type": "document",
            "actions": ["read"],
            "conditions": {"all": [
                {"attribute": "subject.attributes.department", "operator": "eq", "value": "sales"},
                {"attribute": "resource.attributes.department", "operator": "eq", "value": "engineering"},
                {"attribute": "resource.attributes.classification", "operator": "eq", "value": "internal"}
            ]}
        }),
    )
    .await;
    let roadmap = create_doc(&app, &alice, "Roadmap", "internal", "engineering").await;
    let incident = create_doc(&app, &alice, "Incident", "confidential", "engineering").await;
    let path = format!("{DOCS}/{roadmap}");
    assert_eq!(app.get_with_token(&path, &bob).await.status(), 200);
    // Readable, so not hidden: but not writable.
    let edit = json!({"title": "x", "body": "", "classification": "internal", "attributes": {"department": "engineering"}});
    problem(app.put_with_token(&path, &bob, &edit).await, 403).await;
    problem(
        app.patch_with_token(&path, &bob, &json!({"title": "x"}))
            .await,
        403,
    )
    .await;
    problem(app.delete_with_token(&path, &bob).await, 403).await;
    problem(
        app.get_with_token(&format!("{DOCS}/{incident}"), &bob)
            .await,
        404,
    )
    .await;
    assert_eq!(listed_titles(&app, &bob).await, vec!["Roadmap"]);
    // The owner cannot move a document out from under the policies by accident
    // either: an update must be allowed on the result too (here it is: owner).
    let moved = app
        .patch_with_token(&path, &alice, &json!({"classification": "confidential"}))
        .await;
    assert_eq!(moved.status(), 200);
    problem(app.get_with_token(&path, &bob).await, 404).await;
}

#[actix_web::test]
async fn deny_overrides_allow_and_inactive_policies_are_ignored() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let alice = app.signed_up("alice@example.org").await.access_token;
    let id = create_doc(&app, &alice, "Mine", "internal", "x").await;
    let path = format!("{DOCS}/{id}");
    let response = app
        .post_with_token(
            POLICIES,
            &admin,
            Some(&json!({
                "name": "Nobody reads internal documents",
                "effect": "deny",
                "resource_type": "document",
                "actions": ["read"],
                "conditions": {"attribute": "resource.attributes.classification", "operator": "eq", "value": "internal"}
            })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let deny: Value = response.json().await.expect("json");
    // The owner policy allows; the deny wins.
    problem(app.get_with_token(&path, &alice).await, 404).await;
    let deny_path = format!("{POLICIES}/{}", deny["id"].as_str().expect("id"));
    let off = app
        .patch_with_token(&deny_path, &admin, &json!({"status": "inactive"}))
        .await;
    assert_eq!(off.status(), 200);
    assert_eq!(app.get_with_token(&path, &alice).await.status(), 200);
}

#[actix_web::test]
async fn with_no_active_policy_everything_is_denied() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let alice = app.signed_up("alice@example.org").await.access_token;
    let id = create_doc(&app, &alice, "Mine", "internal", "x").await;
    let owner_policy = format!("{POLICIES}/00000000-0000-4000-8000-000000000001");
    // The built-in owner policy can be deactivated, never deleted.
    problem(app.delete_with_token(&owner_policy, &admin).await, 409).await;
    let off = app
        .patch_with_token(&owner_policy, &admin, &json!({"status": "inactive"}))
        .await;
    assert_eq!(off.status(), 200);
    problem(
        app.get_with_token(&format!("{DOCS}/{id}"), &alice).await,
        404,
    )
    .await;
    assert!(listed_titles(&app, &alice).await.is_empty());
    let create = app
        .post_with_token(
            DOCS,
            &alice,
            Some(&json!({"title": "t", "classification": "public"})),
        )
        .await;
    problem(create, 403).await;
    let check = app
        .post_with_token(
            "/api/v1/authz/check",
            &alice,
            Some(&json!({"action": "read", "resource": {"type": "document", "id": id}})),
        )
        .await;
    // A stored document no policy lets her read does not exist for her.
    problem(check, 404).await;
}

#[actix_web::test]
async fn an_evaluation_error_fails_closed_with_the_generic_text() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    // A user attribute of an unexpected type: the policy cannot be evaluated.
    let odd = app
        .user_with("odd@example.org", json!({"level": "high"}))
        .await
        .access_token;
    let id = create_doc(&app, &odd, "Mine", "public", "x").await;
    let response = app
        .post_with_token(
            POLICIES,
            &admin,
            Some(&json!({
                "name": "Senior staff read everything",
                "effect": "allow",
                "resource_type": "document",
                "actions": ["read"],
                "conditions": {"attribute": "subject.attributes.level", "operator": "gt", "value": 3}
            })),
        )
        .await;
    assert_eq!(response.status(), 201);
    // Even the owner, whom another policy allows, is refused: the error denies.
    let failed = app
        .client
        .get(app.url(&format!("{DOCS}/{id}")))
        .bearer_auth(&odd)
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("request");
    let body = problem(failed, 500).await;
    assert_eq!(
        body["detail"],
        "Access control evaluation failed. Please try again later."
    );
    assert_eq!(body["request_id"], "trace-me-42");
    let text = body.to_string();
    assert!(!text.contains("level") && !text.contains("gt"), "{text}");
    // Programmatically: false, never an error and never true.
    let check = app
        .post_with_token(
            "/api/v1/authz/check",
            &odd,
            Some(&json!({"action": "read", "resource": {"type": "document", "id": id}})),
        )
        .await;
    assert_eq!(check.status(), 200);
    assert_eq!(check.json::<Value>().await.expect("json")["allowed"], false);
    // Both audited, the first with its request id.
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let ids: Vec<Option<String>> = conn
        .prepare("SELECT request_id FROM audit_events WHERE event = 'authz.evaluation_failed' ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("events");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0].as_deref(), Some("trace-me-42"));
}

#[actix_web::test]
async fn lists_page_with_a_cursor_and_bad_paging_is_422() {
    let app = spawn_app().await;
    let alice = app.signed_up("pager@example.org").await.access_token;
    for i in 0..5 {
        create_doc(&app, &alice, &format!("doc {i}"), "internal", "x").await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{DOCS}?limit=2&cursor={c}"),
            None => format!("{DOCS}?limit=2"),
        };
        let page: Value = app
            .get_with_token(&path, &alice)
            .await
            .json()
            .await
            .expect("json");
        let docs = page["documents"].as_array().expect("list");
        assert!(docs.len() <= 2);
        seen.extend(
            docs.iter()
                .map(|d| d["title"].as_str().expect("t").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, vec!["doc 0", "doc 1", "doc 2", "doc 3", "doc 4"]);
    for bad in ["limit=0", "limit=101", "limit=abc", "cursor=nope"] {
        let body = problem(
            app.get_with_token(&format!("{DOCS}?{bad}"), &alice).await,
            422,
        )
        .await;
        let field = bad.split('=').next().expect("field");
        assert_eq!(body["errors"][0]["field"], field, "{bad}");
    }
}

#[actix_web::test]
async fn only_administrators_ask_about_someone_else() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let alice = app.signed_up("alice@example.org").await.access_token;
    let conn = rusqlite::Connection::open(&app.db_path).expect("open");
    let alice_id: String = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'alice@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    let root_id: String = conn
        .query_row(
            "SELECT id FROM users WHERE email = 'root@example.org'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    let question = |subject: &str| {
        json!({"action": "read", "subject_id": subject,
               "resource": {"type": "report", "owner_id": alice_id}})
    };
    problem(
        app.post_with_token("/api/v1/authz/check", &alice, Some(&question(&root_id)))
            .await,
        403,
    )
    .await;
    let own = app
        .post_with_token("/api/v1/authz/check", &alice, Some(&question(&alice_id)))
        .await;
    assert_eq!(
        own.json::<Value>().await.expect("json")["allowed"],
        true,
        "the owner policy covers custom types"
    );
    let asked = app
        .post_with_token("/api/v1/authz/check", &admin, Some(&question(&alice_id)))
        .await;
    assert_eq!(asked.json::<Value>().await.expect("json")["allowed"], true);
    let bad = app
        .post_with_token(
            "/api/v1/authz/check",
            &alice,
            Some(&json!({"action": "Read!", "resource": {"type": "*"}})),
        )
        .await;
    let body = problem(bad, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("f"))
        .collect();
    assert_eq!(fields, vec!["action", "resource.type"]);
}

#[actix_web::test]
async fn a_document_whose_decision_errs_is_left_out_of_lists_not_fatal() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let reader = app
        .user_with("reader@example.org", json!({"department": "sales"}))
        .await
        .access_token;
    let writer = app
        .user_with("writer@example.org", json!({"department": "sales"}))
        .await
        .access_token;
    add_policy(
        &app,
        &admin,
        json!({"name": "Same department reads", "effect": "allow", "resource_type": "document",
               "actions": ["read"],
               "conditions": {"attribute": "resource.attributes.department", "operator": "eq",
                              "value": {"attribute": "subject.attributes.department"}}}),
    )
    .await;
    create_doc(&app, &writer, "Fine", "internal", "sales").await;
    // A list where a string was expected: this document's decision errs.
    let odd = app
        .post_with_token(
            DOCS,
            &writer,
            Some(&json!({"title": "Odd", "classification": "internal", "attributes": {"department": ["sales"]}})),
        )
        .await;
    assert_eq!(odd.status(), 201);
    let listed = app.get_with_token(DOCS, &reader).await;
    assert_eq!(listed.status(), 200);
    let titles: Vec<String> = listed.json::<Value>().await.expect("json")["documents"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["title"].as_str().expect("title").to_owned())
        .collect();
    assert_eq!(titles, vec!["Fine"]);
    assert!(!app.audit_events("authz.evaluation_failed").is_empty());
}

/// The decision API takes nobody's word for what the server owns: someone else's
/// webhook, claimed as the caller's, is judged as stored (so: not found); the same
/// claim on an `admin` resource earns nothing; only custom types are described, and
/// the answer says so.
#[actix_web::test]
async fn the_decision_api_judges_server_owned_resources_as_stored() {
    let app =
        crate::helpers::spawn_app_with(&[("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8")])
            .await;
    let victim = app.signed_up("victim@example.org").await.access_token;
    let mallory = app.signed_up("mallory@example.org").await.access_token;
    let me: Value = app
        .get_with_token("/api/v1/auth/me", &mallory)
        .await
        .json()
        .await
        .expect("json");
    let hook: Value = app
        .post_with_token(
            "/api/v1/webhooks",
            &victim,
            Some(&json!({"url": "http://127.0.0.1:9/hook"})),
        )
        .await
        .json()
        .await
        .expect("json");
    let ask = |resource: Value| json!({"action": "update", "resource": resource});
    let claimed = ask(json!({"type": "webhook", "id": hook["id"], "owner_id": me["id"]}));
    problem(
        app.post_with_token("/api/v1/authz/check", &mallory, Some(&claimed))
            .await,
        404,
    )
    .await;
    // The owner is answered, from the stored owner.
    let owned = ask(json!({"type": "webhook", "id": hook["id"]}));
    let answer: Value = app
        .post_with_token("/api/v1/authz/check", &victim, Some(&owned))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["allowed"], true);
    assert_eq!(answer["resource_source"], "server");
    // An `admin` resource has no owner, whatever the caller claims.
    let admin = ask(json!({"type": "admin", "id": "x", "owner_id": me["id"]}));
    let answer: Value = app
        .post_with_token("/api/v1/authz/check", &mallory, Some(&admin))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["allowed"], false);
    // No such document or user: not found, not `false`.
    for kind in ["document", "user", "policy"] {
        let missing = ask(json!({"type": kind, "id": uuid::Uuid::new_v4()}));
        problem(
            app.post_with_token("/api/v1/authz/check", &mallory, Some(&missing))
                .await,
            404,
        )
        .await;
    }
    // A custom type is the caller's to describe, and the answer says so.
    let custom = ask(json!({"type": "report", "owner_id": me["id"]}));
    let answer: Value = app
        .post_with_token("/api/v1/authz/check", &mallory, Some(&custom))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["resource_source"], "caller");
    assert_eq!(answer["allowed"], true);
}
