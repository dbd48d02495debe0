//! One answer, whichever way it is asked: for random users, documents and policy
//! sets, the simulator, the decision API and the document endpoints themselves agree
//! on who may read what.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const DEPARTMENTS: &[&str] = &["engineering", "sales", "legal"];
const CLASSIFICATIONS: &[&str] = &["public", "internal", "confidential"];

fn random_condition(rng: &mut StdRng) -> Value {
    let department = *DEPARTMENTS.choose(rng).expect("some");
    let classification = *CLASSIFICATIONS.choose(rng).expect("some");
    let same_department = json!({"attribute": "subject.attributes.department", "operator": "eq",
                                 "value": {"attribute": "resource.attributes.department"}});
    match rng.random_range(0..5) {
        0 => {
            json!({"attribute": "subject.attributes.department", "operator": "eq", "value": department})
        }
        1 => {
            json!({"attribute": "resource.attributes.department", "operator": "eq", "value": department})
        }
        2 => {
            json!({"attribute": "resource.attributes.classification", "operator": "eq", "value": classification})
        }
        3 => same_department,
        _ => json!({"all": [
            same_department,
            {"attribute": "resource.attributes.classification", "operator": "ne", "value": classification}
        ]}),
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("json")
}

async fn one_world(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let app: TestApp = spawn_app().await;
    let admin = app.admin_token("root@example.org").await;
    let mut users = Vec::new();
    for i in 0..3 {
        let email = format!("user{i}@example.org");
        let department = *DEPARTMENTS.choose(&mut rng).expect("some");
        let token = app
            .user_with(&email, json!({"department": department}))
            .await
            .access_token;
        let me = json_of(app.get_with_token("/api/v1/auth/me", &token).await).await;
        users.push((token, me["id"].as_str().expect("id").to_owned()));
    }
    let mut documents = Vec::new();
    for i in 0..4 {
        let (owner, _) = users.choose(&mut rng).expect("some");
        let body = json!({
            "title": format!("doc {i}"),
            "classification": CLASSIFICATIONS.choose(&mut rng).expect("some"),
            "attributes": {"department": DEPARTMENTS.choose(&mut rng).expect("some")},
        });
        let created = json_of(
            app.post_with_token("/api/v1/documents", owner, Some(&body))
                .await,
        )
        .await;
        documents.push(created["id"].as_str().expect("id").to_owned());
    }
    for i in 0..rng.random_range(1..4) {
        let effect = if rng.random_bool(0.3) {
            "deny"
        } else {
            "allow"
        };
        let policy = json!({"name": format!("random {i}"), "effect": effect,
                            "resource_type": "document", "actions": ["read"],
                            "conditions": random_condition(&mut rng)});
        let created = app
            .post_with_token("/api/v1/admin/policies", &admin, Some(&policy))
            .await;
        assert_eq!(created.status(), 201, "seed {seed}");
    }
    if rng.random_bool(0.3) {
        app.patch_with_token(
            "/api/v1/admin/policies/00000000-0000-4000-8000-000000000001",
            &admin,
            &json!({"status": "inactive"}),
        )
        .await;
    }
    for (token, user_id) in &users {
        for document in &documents {
            let fetched = app
                .get_with_token(&format!("/api/v1/documents/{document}"), token)
                .await
                .status()
                .as_u16();
            let checked = app
                .post_with_token(
                    "/api/v1/authz/check",
                    token,
                    Some(&json!({"action": "read", "resource": {"type": "document", "id": document}})),
                )
                .await;
            let checked = match checked.status().as_u16() {
                200 => json_of(checked).await["allowed"] == true,
                404 => false,
                other => panic!("seed {seed}: decision API answered {other}"),
            };
            let simulated = json_of(
                app.post_with_token(
                    "/api/v1/admin/policies/simulate",
                    &admin,
                    Some(&json!({"subject": {"user_id": user_id}, "action": "read",
                                 "resource": {"type": "document", "id": document}})),
                )
                .await,
            )
            .await;
            assert_eq!(simulated["owner_source"], "stored", "seed {seed}");
            let simulated = simulated["allowed"] == true;
            assert_eq!(
                (fetched == 200, checked),
                (simulated, simulated),
                "seed {seed}: user {user_id}, document {document}: GET {fetched}, check {checked}, simulated {simulated}"
            );
        }
    }
    // Listed documents are exactly the readable ones.
    for (token, _) in &users {
        let listed = json_of(app.get_with_token("/api/v1/documents", token).await).await;
        for document in listed["documents"].as_array().expect("list") {
            let id = document["id"].as_str().expect("id");
            assert_eq!(
                app.get_with_token(&format!("/api/v1/documents/{id}"), token)
                    .await
                    .status(),
                200
            );
        }
    }
}

#[actix_web::test]
async fn the_simulator_the_decision_api_and_the_documents_agree() {
    for seed in 1..=6 {
        one_world(seed).await;
    }
}
