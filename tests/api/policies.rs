//! Policy administration: validation with JSON paths, versions and audit, the
//! simulator, export and import (all or nothing), and atomic swaps under load.

use serde_json::{Value, json};

use crate::helpers::{problem, spawn_app};

const POLICIES: &str = "/api/v1/admin/policies";

fn draft(name: &str) -> Value {
    json!({
        "name": name,
        "effect": "allow",
        "resource_type": "report",
        "actions": ["read"],
        "conditions": {"attribute": "subject.attributes.team", "operator": "eq", "value": "ops"}
    })
}

/// A policy file of `entries` (the built-in policies, left out, are kept).
fn file(entries: Value) -> Value {
    json!({ "policies": entries })
}

#[actix_web::test]
async fn only_administrators_manage_policies() {
    let app = spawn_app().await;
    let user = app.signed_up("user@example.org").await.access_token;
    problem(app.get_with_token(POLICIES, &user).await, 403).await;
    problem(
        app.post_with_token(POLICIES, &user, Some(&draft("x")))
            .await,
        403,
    )
    .await;
    let simulate = app
        .post_with_token(&format!("{POLICIES}/simulate"), &user, Some(&json!({})))
        .await;
    problem(simulate, 403).await;
    assert_eq!(app.get(POLICIES).await.status(), 401);
}

#[actix_web::test]
async fn saving_a_bad_policy_names_each_field_by_json_path() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let bad = json!({
        "name": "",
        "effect": "allow",
        "resource_type": "report",
        "actions": ["read"],
        "priority": 2000,
        "conditions": {"all": [
            {"attribute": "subject.nope", "operator": "eq", "value": 1},
            {"any": [{"attribute": "subject.email", "operator": "matches", "value": "(["}]},
            {"attribute": "context.ip", "operator": "ip_in_cidr", "value": "300.0.0.0/8"},
            {"attribute": "subject.mfa", "operator": "eq", "value": "yes"}
        ]}
    });
    let body = problem(app.post_with_token(POLICIES, &admin, Some(&bad)).await, 422).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "priority",
            "conditions.all[0].attribute",
            "conditions.all[1].any[0].value",
            "conditions.all[2].value",
            "conditions.all[3].value",
        ]
    );
    // Wrong JSON types are named too, by the extractor.
    let typed = app
        .post_with_token(
            POLICIES,
            &admin,
            Some(&json!({"name": "x", "effect": "maybe", "resource_type": "r", "actions": ["a"]})),
        )
        .await;
    assert_eq!(problem(typed, 422).await["errors"][0]["field"], "effect");
}

#[actix_web::test]
async fn every_change_is_versioned_and_audited_with_before_and_after() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let created: Value = app
        .post_with_token(POLICIES, &admin, Some(&draft("Ops read reports")))
        .await
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["version"], 1);
    let path = format!("{POLICIES}/{id}");
    let mut changed = draft("Ops and SRE read reports");
    changed["priority"] = json!(10);
    let updated: Value = app
        .put_with_token(&path, &admin, &changed)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["created_at"], created["created_at"]);
    let off: Value = app
        .patch_with_token(&path, &admin, &json!({"status": "inactive"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (off["version"].clone(), off["status"].clone()),
        (json!(3), json!("inactive"))
    );
    let listed: Vec<Value> = app
        .get_with_token(
            &format!("{POLICIES}?status=inactive&resource_type=report"),
            &admin,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1);
    let history: Vec<Value> = app
        .get_with_token(&format!("{path}/versions"), &admin)
        .await
        .json()
        .await
        .expect("json");
    let changes: Vec<&str> = history
        .iter()
        .map(|v| v["change"].as_str().expect("c"))
        .collect();
    assert_eq!(changes, vec!["updated", "updated", "created"]);
    assert_eq!(history[1]["snapshot"]["name"], "Ops and SRE read reports");
    assert_eq!(app.delete_with_token(&path, &admin).await.status(), 204);
    problem(app.get_with_token(&path, &admin).await, 404).await;
    // Gone everywhere, its history too; the audit log keeps every change.
    problem(
        app.get_with_token(&format!("{path}/versions"), &admin)
            .await,
        404,
    )
    .await;
    let updates = app.audit_events("policy.updated");
    assert_eq!(updates.len(), 2);
    let details: Value = serde_json::from_str(&updates[0].2).expect("json");
    assert_eq!(details["before"]["name"], "Ops read reports");
    assert_eq!(details["after"]["name"], "Ops and SRE read reports");
    assert_eq!(app.audit_events("policy.created").len(), 1);
    let deleted: Value =
        serde_json::from_str(&app.audit_events("policy.deleted")[0].2).expect("json");
    assert!(deleted["after"].is_null());
}

#[actix_web::test]
async fn the_simulator_explains_condition_by_condition() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let created: Value = app
        .post_with_token(POLICIES, &admin, Some(&draft("Ops read reports")))
        .await
        .json()
        .await
        .expect("json");
    let ask = |team: &str| {
        json!({
            "subject": {"email": "x@example.org", "attributes": {"team": team}},
            "action": "read",
            "resource": {"type": "report", "id": "r1"},
            "context": {"ip": "10.0.0.1", "time": "2026-11-23T10:30:00Z"}
        })
    };
    let yes: Value = app
        .post_with_token(&format!("{POLICIES}/simulate"), &admin, Some(&ask("ops")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(yes["allowed"], true);
    assert_eq!(yes["reason"]["kind"], "allowed_by");
    assert_eq!(yes["reason"]["policies"][0], created["id"]);
    let mine = |decision: &Value| {
        decision["policies"]
            .as_array()
            .expect("explained")
            .iter()
            .find(|p| p["policy_id"] == created["id"])
            .cloned()
            .expect("the policy is explained")
    };
    assert_eq!(mine(&yes)["conditions"][0]["result"], "true");
    assert_eq!(
        mine(&yes)["conditions"][0]["attribute"],
        "subject.attributes.team"
    );
    // The owner policy applies too (every type and action), and says why it did
    // not match: the resource has no owner.
    assert!(
        yes["policies"]
            .as_array()
            .expect("explained")
            .iter()
            .any(|p| {
                p["policy_id"] == "00000000-0000-4000-8000-000000000001"
                    && p["conditions"][0]["result"] == "missing"
            })
    );
    let no: Value = app
        .post_with_token(&format!("{POLICIES}/simulate"), &admin, Some(&ask("sales")))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(no["allowed"], false);
    assert_eq!(no["reason"]["kind"], "default_deny");
    assert_eq!(mine(&no)["conditions"][0]["result"], "false");
    let vocabulary: Value = app
        .get_with_token(&format!("{POLICIES}/vocabulary"), &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(vocabulary["operators"].as_array().expect("ops").len(), 16);
    assert!(
        vocabulary["attributes"]
            .as_array()
            .expect("attrs")
            .iter()
            .any(|a| a["name"] == "context.time.day_of_week")
    );
}

#[actix_web::test]
async fn import_is_all_or_nothing_and_export_round_trips() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let mut broken = draft("broken");
    broken["conditions"] = json!({"attribute": "subject.email", "operator": "gt", "value": 1});
    let rejected = app
        .post_with_token(
            &format!("{POLICIES}/import"),
            &admin,
            Some(&file(json!([draft("one"), broken]))),
        )
        .await;
    let body = problem(rejected, 422).await;
    assert_eq!(body["errors"][0]["field"], "policies[1].conditions.value");
    let before: Vec<Value> = app
        .get_with_token(POLICIES, &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        before.len(),
        2,
        "only the built-in policies: nothing was imported"
    );

    let imported = app
        .post_with_token(
            &format!("{POLICIES}/import"),
            &admin,
            Some(&file(json!([draft("one"), draft("two")]))),
        )
        .await;
    assert_eq!(imported.json::<Value>().await.expect("json")["created"], 2);
    let exported: Value = app
        .get_with_token(&format!("{POLICIES}/export"), &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(exported["policies"].as_array().map(Vec::len), Some(4));
    // What was exported imports again as it is, and has nothing to do.
    let reimported = app
        .post_with_token(&format!("{POLICIES}/import"), &admin, Some(&exported))
        .await;
    assert_eq!(reimported.status(), 200);
    let plan: Value = reimported.json().await.expect("json");
    assert_eq!(
        (plan["applied"].clone(), plan["unchanged"].clone()),
        (json!(false), json!(4))
    );
    let after: Vec<Value> = app
        .get_with_token(POLICIES, &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after.len(), 4);
    assert!(after.iter().all(|p| p["version"] == 1), "{after:?}");
    // The administrator policy is read-only.
    let admin_policy = format!("{POLICIES}/00000000-0000-4000-8000-000000000002");
    problem(
        app.patch_with_token(&admin_policy, &admin, &json!({"status": "inactive"}))
            .await,
        409,
    )
    .await;
    problem(app.delete_with_token(&admin_policy, &admin).await, 409).await;
    assert_eq!(app.audit_events("policy.imported").len(), 1);
}

/// Two policies swap roles, in one import, over and over, while decisions run: a
/// decision must see one state or the other, never half of each (both inactive,
/// which would deny).
#[actix_web::test]
async fn a_policy_change_under_concurrent_decisions_is_never_torn() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let user = app.signed_up("reader@example.org").await.access_token;
    let a = "00000000-0000-4000-8000-00000000000a";
    let b = "00000000-0000-4000-8000-00000000000b";
    let state = |a_on: bool| {
        let policy = |id: &str, name: &str, on: bool| {
            json!({"id": id, "name": name, "effect": "allow", "resource_type": "report",
                   "actions": ["read"], "status": if on { "active" } else { "inactive" }})
        };
        file(json!([policy(a, "A", a_on), policy(b, "B", !a_on)]))
    };
    let imported = app
        .post_with_token(&format!("{POLICIES}/import"), &admin, Some(&state(true)))
        .await;
    assert_eq!(imported.status(), 200);
    let checker = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/authz/check"),
            user.clone(),
        );
        actix_web::rt::spawn(async move {
            let mut denied = 0;
            for _ in 0..300 {
                let answer: Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"action": "read", "resource": {"type": "report"}}))
                    .send()
                    .await
                    .expect("request")
                    .json()
                    .await
                    .expect("json");
                denied += usize::from(answer["allowed"] != true);
            }
            denied
        })
    };
    for i in 0..30 {
        let flipped = app
            .post_with_token(
                &format!("{POLICIES}/import"),
                &admin,
                Some(&state(i % 2 == 1)),
            )
            .await;
        assert_eq!(flipped.status(), 200);
    }
    assert_eq!(
        checker.await.expect("task"),
        0,
        "a decision saw a torn policy set"
    );
}

#[actix_web::test]
async fn imports_are_audited_per_policy_and_never_collide_on_versions() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let id = "00000000-0000-4000-8000-0000000000cc";
    let mut entry = draft("imported");
    entry["id"] = json!(id);
    // The same id twice in one import: refused, naming the second.
    let twice = app
        .post_with_token(
            &format!("{POLICIES}/import"),
            &admin,
            Some(&file(json!([entry, entry]))),
        )
        .await;
    assert_eq!(
        problem(twice, 422).await["errors"][0]["field"],
        "policies[1].id"
    );
    let first = app
        .post_with_token(
            &format!("{POLICIES}/import"),
            &admin,
            Some(&file(json!([entry]))),
        )
        .await;
    assert_eq!(first.status(), 200);
    // Deleted, then imported again: a new version, not a clash.
    assert_eq!(
        app.delete_with_token(&format!("{POLICIES}/{id}"), &admin)
            .await
            .status(),
        204
    );
    let again = app
        .post_with_token(
            &format!("{POLICIES}/import"),
            &admin,
            Some(&file(json!([entry]))),
        )
        .await;
    assert_eq!(again.status(), 200);
    let policy: Value = app
        .get_with_token(&format!("{POLICIES}/{id}"), &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(policy["version"], 3);
    // Each imported policy has its own before/after record, besides the summary.
    assert_eq!(app.audit_events("policy.created").len(), 2);
    assert_eq!(app.audit_events("policy.imported").len(), 2);
}

/// A deny on `admin` actions holds on every way in: importing the change is asked as
/// the change itself, asking the decision API about someone else is asked as a
/// simulation, and nobody but an administrator learns how their body would be read.
#[actix_web::test]
async fn a_deny_on_admin_actions_holds_on_every_way_in() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    // A second administrator keeps policy editing open, so the deny on the first
    // one is a change Portcullis accepts (one that left nobody able to edit
    // policies would be refused).
    app.admin_token("keeper@example.org").await;
    let root: Value = app
        .get_with_token("/api/v1/auth/me", &admin)
        .await
        .json()
        .await
        .expect("json");
    let target: Value = app
        .post_with_token(POLICIES, &admin, Some(&draft("Target")))
        .await
        .json()
        .await
        .expect("json");
    let deny: Value = app
        .post_with_token(
            POLICIES,
            &admin,
            Some(
                &json!({"name": "Frozen", "effect": "deny", "resource_type": "admin",
                         "actions": ["policy.update", "policy.create", "policy.simulate"],
                         "principals": {"type": "users", "ids": [root["id"]]}}),
            ),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(deny["id"].is_string(), "{deny}");
    let import = |entries: Value| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.post_with_token(&format!("{POLICIES}/import"), &admin, Some(&entries))
                .await
        }
    };
    let mut rewritten = draft("Target, widened");
    rewritten["id"] = target["id"].clone();
    rewritten["resource_type"] = json!("*");
    problem(import(file(json!([rewritten]))).await, 403).await;
    problem(import(file(json!([draft("Brand new")]))).await, 403).await;
    let mut lifted = json!({"name": "Frozen", "effect": "deny", "resource_type": "admin",
                            "actions": ["policy.update"], "status": "inactive",
                            "principals": {"type": "users", "ids": [root["id"]]}});
    lifted["id"] = deny["id"].clone();
    problem(import(file(json!([lifted]))).await, 403).await;
    let after: Value = app
        .get_with_token(
            &format!("{POLICIES}/{}", target["id"].as_str().expect("id")),
            &admin,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after["version"], 1, "nothing was imported");
    assert_eq!(app.audit_events("policy.imported").len(), 0);

    // Asking what someone else may do is a simulation, and simulating is denied.
    let member = app.signed_up("member@example.org").await;
    let me: Value = app
        .get_with_token("/api/v1/auth/me", &member.access_token)
        .await
        .json()
        .await
        .expect("json");
    let ask = json!({"action": "read", "resource": {"type": "report"}, "subject_id": me["id"]});
    problem(
        app.post_with_token("/api/v1/authz/check", &admin, Some(&ask))
            .await,
        403,
    )
    .await;

    // Not an administrator: 403 before any body is looked at.
    for body in [json!([{"bogus": 1}]), json!("not a list")] {
        let refused = app
            .post_with_token(
                &format!("{POLICIES}/import"),
                &member.access_token,
                Some(&body),
            )
            .await;
        problem(refused, 403).await;
    }
    let plain = app
        .client
        .post(app.url(&format!("{POLICIES}/import")))
        .bearer_auth(&member.access_token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("request");
    problem(plain, 403).await;
}

const OWNER_POLICY: &str = "/api/v1/admin/policies/00000000-0000-4000-8000-000000000001";
const ADMIN_POLICY: &str = "/api/v1/admin/policies/00000000-0000-4000-8000-000000000002";

/// What the built-in policies answer matches the document: `conditions` may be
/// null, and each has a history from the first start.
#[actix_web::test]
async fn built_in_policies_answer_as_documented() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let doc: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let conditions = &doc["components"]["schemas"]["PolicyResponse"]["properties"]["conditions"];
    for path in [OWNER_POLICY, ADMIN_POLICY] {
        let policy: Value = app
            .get_with_token(path, &admin)
            .await
            .json()
            .await
            .expect("json");
        if policy["conditions"].is_null() {
            assert!(
                conditions["type"]
                    .as_array()
                    .is_some_and(|types| types.contains(&json!("null"))),
                "null conditions undocumented: {conditions}"
            );
        }
        let versions = app
            .get_with_token(&format!("{path}/versions"), &admin)
            .await;
        assert_eq!(versions.status(), 200, "{path}");
        let versions: Vec<Value> = versions.json().await.expect("json");
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0]["change"], "created");
        assert_eq!(versions[0]["snapshot"]["name"], policy["name"]);
    }
}

/// The owner policy may be switched off and on, never rewritten: not by PUT and not
/// by an import that changes it.
#[actix_web::test]
async fn the_owner_policy_changes_only_its_status() {
    let app = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let owner: Value = app
        .get_with_token(OWNER_POLICY, &admin)
        .await
        .json()
        .await
        .expect("json");
    let rewritten = json!({
        "name": owner["name"],
        "description": owner["description"],
        "effect": "allow",
        "resource_type": "*",
        "actions": ["*"],
        "priority": owner["priority"],
        "principals": owner["principals"],
    });
    let refused = problem(
        app.put_with_token(OWNER_POLICY, &admin, &rewritten).await,
        409,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("only be activated or deactivated")),
        "{refused}"
    );
    // Only fields the PATCH schema names: a rule change there is refused as unknown.
    problem(
        app.patch_with_token(OWNER_POLICY, &admin, &json!({"actions": ["*"]}))
            .await,
        422,
    )
    .await;
    let off = app
        .patch_with_token(OWNER_POLICY, &admin, &json!({"status": "inactive"}))
        .await;
    assert_eq!(off.status(), 200);

    let mut exported: Value = app
        .get_with_token(&format!("{POLICIES}/export"), &admin)
        .await
        .json()
        .await
        .expect("json");
    let owner_entry = exported["policies"]
        .as_array_mut()
        .expect("policies")
        .iter_mut()
        .find(|p| p["id"] == owner["id"])
        .expect("owner policy exported");
    // Without its condition it would let everyone do anything to everything.
    owner_entry
        .as_object_mut()
        .expect("entry")
        .remove("conditions");
    let import = app
        .post_with_token(&format!("{POLICIES}/import"), &admin, Some(&exported))
        .await;
    let body = problem(import, 422).await;
    assert!(body.to_string().contains("built_in"), "{body}");
    let after: Value = app
        .get_with_token(OWNER_POLICY, &admin)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after["conditions"], owner["conditions"]);
    assert_eq!(after["status"], "inactive");
}
