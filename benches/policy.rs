//! One access decision, as every enforcement point makes it (no explanation), with
//! 10, 1,000 and 10,000 policies stored. The policies are spread over resource types
//! and actions the way a real deployment's are; the request is a document read that
//! the owner policy does not cover and a department policy allows.
//!
//! Goal (issue 6): median < 2 µs at 1,000 policies. Run: `cargo bench --bench policy`.
//!
//! And the gate's question (issue 14): a signed-in GET of `app.load.test/dashboard`
//! against the 100 route policies `scripts/load.sh` imports, every one applicable
//! (49 allows and 50 denies for other hosts and paths, and the allow that matches).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis::model::policy::{Effect, Policy, PolicyStatus, Principals};
use portcullis::model::{Role, UserId};
use portcullis::policy::engine::{AccessRequest, Context, PolicySet, Resource, Subject};
use portcullis::policy::validate::compile;
use serde_json::{Value, json};
use uuid::Uuid;

const TYPES: [&str; 8] = [
    "document", "webhook", "user", "policy", "report", "invoice", "project", "ticket",
];
const ACTIONS: [&str; 5] = ["read", "update", "delete", "create", "share"];

fn policy(i: usize, effect: Effect, kind: &str, action: &str, conditions: Value) -> Policy {
    Policy {
        id: Uuid::new_v4(),
        name: format!("policy {i}"),
        description: String::new(),
        effect,
        resource_type: kind.to_owned(),
        actions: vec![action.to_owned()],
        conditions: Some(conditions),
        priority: u16::try_from(i % 1000).unwrap_or(0),
        status: PolicyStatus::Active,
        principals: Principals::Everyone,
        version: 1,
        system: false,
        created_by: None,
        created_at: 0,
        updated_by: None,
        updated_at: 0,
    }
}

fn policies(count: usize) -> PolicySet {
    let mut all = vec![
        policy(
            0,
            Effect::Allow,
            "*",
            "*",
            json!({"attribute": "subject.id", "operator": "eq", "value": {"attribute": "resource.owner_id"}}),
        ),
        policy(
            1,
            Effect::Allow,
            "document",
            "read",
            json!({"all": [
                {"attribute": "subject.attributes.department", "operator": "in", "value": ["engineering", "sales"]},
                {"attribute": "resource.attributes.department", "operator": "in", "value": ["engineering", "sales"]},
                {"attribute": "resource.attributes.classification", "operator": "eq", "value": "internal"}
            ]}),
        ),
        policy(
            2,
            Effect::Deny,
            "document",
            "*",
            json!({"attribute": "resource.attributes.classification", "operator": "eq", "value": "secret"}),
        ),
    ];
    for i in all.len()..count {
        let kind = TYPES[i % TYPES.len()];
        let action = ACTIONS[(i / TYPES.len()) % ACTIONS.len()];
        let effect = if i % 7 == 0 {
            Effect::Deny
        } else {
            Effect::Allow
        };
        let conditions = json!({"all": [
            {"attribute": "subject.attributes.department", "operator": "eq", "value": format!("dept-{i}")},
            {"attribute": "context.time.hour", "operator": "gte", "value": 8}
        ]});
        all.push(policy(i, effect, kind, action, conditions));
    }
    all.truncate(count);
    PolicySet::new(all.into_iter().filter_map(|p| compile(p).ok()).collect())
}

fn request() -> AccessRequest {
    let attrs = |v: Value| v.as_object().cloned().unwrap_or_default();
    AccessRequest {
        subject: Subject {
            authenticated: true,
            id: UserId(Uuid::new_v4()),
            email: "alice@portcullis.test".to_owned(),
            role: Role::User,
            mfa: false,
            auth_method: Some(portcullis::model::AuthMethod::Password),
            attributes: attrs(json!({"department": "engineering"})),
        },
        action: "read".to_owned(),
        resource: Resource {
            kind: "document".to_owned(),
            id: Some(Uuid::new_v4().to_string()),
            owner_id: Some(Uuid::new_v4().to_string()),
            attributes: attrs(json!({"department": "sales", "classification": "internal"})),
        },
        context: Context {
            ip: Some("127.0.0.1".parse().expect("ip")),
            method: Some("GET".to_owned()),
            path: Some("/api/v1/documents/x".to_owned()),
            now: 1_795_429_800,
        },
    }
}

fn bench_decisions(c: &mut Criterion) {
    let request = request();
    let mut group = c.benchmark_group("policy decision");
    for count in [10, 1_000, 10_000] {
        let set = policies(count);
        assert!(set.decide(&request).allowed, "the department policy allows");
        group.bench_with_input(BenchmarkId::from_parameter(count), &set, |b, set| {
            b.iter(|| set.decide(black_box(&request)).allowed)
        });
    }
    group.finish();
}

/// The 100 route policies of `scripts/load.sh`.
fn route_policies() -> PolicySet {
    let mut all = vec![policy(
        0,
        Effect::Allow,
        "route",
        "get",
        json!({"attribute": "resource.attributes.host", "operator": "eq", "value": "app.load.test"}),
    )];
    for i in 0..99 {
        all.push(if i % 2 == 1 {
            policy(
                i + 1,
                Effect::Deny,
                "route",
                "*",
                json!({"all": [
                    {"attribute": "resource.attributes.host", "operator": "eq", "value": format!("app{i}.load.test")},
                    {"attribute": "resource.attributes.path", "operator": "starts_with", "value": "/admin"}
                ]}),
            )
        } else {
            policy(
                i + 1,
                Effect::Allow,
                "route",
                "get",
                json!({"all": [
                    {"attribute": "resource.attributes.host", "operator": "eq", "value": format!("app{i}.load.test")},
                    {"attribute": "subject.attributes.department", "operator": "eq", "value": format!("dept{i}")}
                ]}),
            )
        });
    }
    PolicySet::new(all.into_iter().filter_map(|p| compile(p).ok()).collect())
}

fn route_request() -> AccessRequest {
    let mut request = request();
    request.action = "get".to_owned();
    let attributes = json!({"host": "app.load.test", "path": "/dashboard", "scheme": "https", "query": "", "port": 443});
    request.resource = Resource {
        kind: "route".to_owned(),
        id: Some("app.load.test/dashboard".to_owned()),
        owner_id: None,
        attributes: attributes.as_object().cloned().unwrap_or_default(),
    };
    request
}

fn bench_route_decision(c: &mut Criterion) {
    let (set, request) = (route_policies(), route_request());
    assert!(set.decide(&request).allowed, "the app policy allows");
    c.bench_function("gate decision, 100 route policies", |b| {
        b.iter(|| set.decide(black_box(&request)).allowed)
    });
}

criterion_group!(benches, bench_decisions, bench_route_decision);
criterion_main!(benches);
