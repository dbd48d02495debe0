//! The engine as a pure function: semantics, every operator, validation paths, and
//! monotonicity properties.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::engine::{AccessRequest, Context, PolicySet, Reason, Resource, Subject};
use super::validate::{PolicyDraft, check_draft, compile};
use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};
use crate::model::{Role, UserId};

fn policy(effect: Effect, resource_type: &str, actions: &[&str], conditions: Value) -> Policy {
    Policy {
        id: Uuid::new_v4(),
        name: format!("{effect:?} {resource_type}"),
        description: String::new(),
        effect,
        resource_type: resource_type.to_owned(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        conditions: (!conditions.is_null()).then_some(conditions),
        priority: 0,
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

fn set(policies: Vec<Policy>) -> PolicySet {
    PolicySet::new(
        policies
            .into_iter()
            .map(|p| compile(p).expect("valid policy"))
            .collect(),
    )
}

fn attrs(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// Alice (engineering) reads a document Bob (sales) owns, at 2026-11-23 10:30 UTC (a
/// Monday), from 10.1.2.3.
fn request() -> AccessRequest {
    AccessRequest {
        subject: Subject {
            authenticated: true,
            id: UserId(Uuid::from_u128(1)),
            email: "alice@example.org".to_owned(),
            role: Role::User,
            mfa: true,
            auth_method: Some(crate::model::AuthMethod::PasswordTotp),
            attributes: attrs(json!({"department": "engineering", "level": 3, "tags": ["a", "b"]})),
        },
        action: "read".to_owned(),
        resource: Resource {
            kind: "document".to_owned(),
            id: Some("doc-1".to_owned()),
            owner_id: Some(Uuid::from_u128(2).to_string()),
            attributes: attrs(
                json!({"department": "engineering", "classification": "internal", "level": 2}),
            ),
        },
        context: Context {
            ip: Some("10.1.2.3".parse().expect("ip")),
            method: Some("GET".to_owned()),
            path: Some("/api/v1/documents/doc-1".to_owned()),
            now: 1_795_429_800,
        },
    }
}

fn allowed(policies: Vec<Policy>) -> bool {
    set(policies).decide(&request()).allowed
}

fn cond(attribute: &str, operator: &str, value: Value) -> Value {
    json!({"attribute": attribute, "operator": operator, "value": value})
}

#[test]
fn zero_policies_deny() {
    let decision = set(vec![]).decide(&request());
    assert!(!decision.allowed);
    assert!(matches!(decision.reason, Reason::DefaultDeny));
}

#[test]
fn an_allow_allows_and_a_deny_overrides_it() {
    let allow = policy(Effect::Allow, "document", &["read"], Value::Null);
    assert!(allowed(vec![allow.clone()]));
    let deny = policy(Effect::Deny, "*", &["*"], Value::Null);
    let decision = set(vec![allow.clone(), deny.clone()]).decide(&request());
    assert!(!decision.allowed);
    assert!(matches!(decision.reason, Reason::DeniedBy { ref policies } if policies == &[deny.id]));
    // A policy for another type or action does not apply.
    assert!(!allowed(vec![policy(
        Effect::Allow,
        "webhook",
        &["read"],
        Value::Null
    )]));
    assert!(!allowed(vec![policy(
        Effect::Allow,
        "document",
        &["update"],
        Value::Null
    )]));
    assert!(allowed(vec![policy(
        Effect::Allow,
        "*",
        &["read"],
        Value::Null
    )]));
}

#[test]
fn inactive_policies_are_ignored() {
    let mut allow = policy(Effect::Allow, "document", &["read"], Value::Null);
    allow.status = PolicyStatus::Inactive;
    assert!(!allowed(vec![allow.clone()]));
    let mut deny = policy(Effect::Deny, "document", &["read"], Value::Null);
    deny.status = PolicyStatus::Inactive;
    allow.status = PolicyStatus::Active;
    assert!(allowed(vec![allow, deny]));
}

#[test]
fn principals_narrow_who_a_policy_applies_to() {
    let mut by_role = policy(Effect::Allow, "document", &["read"], Value::Null);
    by_role.principals = Principals::Roles {
        roles: vec![Role::Admin],
    };
    assert!(!allowed(vec![by_role.clone()]));
    by_role.principals = Principals::Roles {
        roles: vec![Role::User],
    };
    assert!(allowed(vec![by_role]));
    let mut by_user = policy(Effect::Allow, "document", &["read"], Value::Null);
    by_user.principals = Principals::Users {
        ids: vec![UserId(Uuid::from_u128(9))],
    };
    assert!(!allowed(vec![by_user.clone()]));
    by_user.principals = Principals::Users {
        ids: vec![UserId(Uuid::from_u128(1))],
    };
    assert!(allowed(vec![by_user]));
}

/// (condition, expected): `Some(b)` for a decision of `b`, `None` for an evaluation
/// error (which denies).
fn operator_cases() -> Vec<(Value, Option<bool>)> {
    let attr = |name: &str| json!({"attribute": name});
    vec![
        (
            cond("subject.email", "eq", json!("alice@example.org")),
            Some(true),
        ),
        (
            cond("subject.email", "eq", json!("bob@example.org")),
            Some(false),
        ),
        (cond("subject.role", "ne", json!("admin")), Some(true)),
        (cond("subject.mfa", "eq", json!(true)), Some(true)),
        (
            cond("subject.auth_method", "eq", json!("password+totp")),
            Some(true),
        ),
        (
            cond("subject.auth_method", "eq", json!("passkey")),
            Some(false),
        ),
        (
            cond("subject.email_domain", "eq", json!("example.org")),
            Some(true),
        ),
        (
            cond(
                "subject.attributes.department",
                "eq",
                attr("resource.attributes.department"),
            ),
            Some(true),
        ),
        (
            cond("subject.id", "eq", attr("resource.owner_id")),
            Some(false),
        ),
        (cond("subject.attributes.level", "gt", json!(2)), Some(true)),
        (
            cond("subject.attributes.level", "gte", json!(3)),
            Some(true),
        ),
        (
            cond("subject.attributes.level", "lt", json!(3)),
            Some(false),
        ),
        (
            cond(
                "subject.attributes.level",
                "lte",
                attr("resource.attributes.level"),
            ),
            Some(false),
        ),
        (
            cond(
                "resource.attributes.classification",
                "in",
                json!(["public", "internal"]),
            ),
            Some(true),
        ),
        (
            cond(
                "resource.attributes.classification",
                "not_in",
                json!(["public", "internal"]),
            ),
            Some(false),
        ),
        (
            cond("subject.attributes.tags", "contains", json!("b")),
            Some(true),
        ),
        (
            cond("subject.email", "contains", json!("@example")),
            Some(true),
        ),
        (
            cond("subject.email", "starts_with", json!("alice")),
            Some(true),
        ),
        (
            cond("subject.email", "ends_with", json!(".com")),
            Some(false),
        ),
        (
            cond("subject.email", "matches", json!("^[a-z]+@example\\.org$")),
            Some(true),
        ),
        (
            json!({"attribute": "subject.attributes.department", "operator": "exists"}),
            Some(true),
        ),
        (
            json!({"attribute": "subject.attributes.nope", "operator": "not_exists"}),
            Some(true),
        ),
        (
            cond("context.ip", "ip_in_cidr", json!("10.0.0.0/8")),
            Some(true),
        ),
        (
            cond(
                "context.ip",
                "ip_in_cidr",
                json!(["192.168.0.0/16", "::1/128"]),
            ),
            Some(false),
        ),
        (
            cond("context.time", "time_between", json!(["09:00", "17:00"])),
            Some(true),
        ),
        (
            cond("context.time", "time_between", json!(["22:00", "06:00"])),
            Some(false),
        ),
        (cond("context.time.hour", "eq", json!(10)), Some(true)),
        (cond("context.time.day_of_week", "eq", json!(1)), Some(true)),
        (cond("action", "eq", json!("read")), Some(true)),
        (cond("resource.type", "eq", json!("document")), Some(true)),
        (cond("context.method", "eq", json!("GET")), Some(true)),
        (
            cond("context.path", "starts_with", json!("/api/v1/documents/")),
            Some(true),
        ),
        // A missing attribute makes a comparison false, never true.
        (
            cond("subject.attributes.nope", "eq", json!("x")),
            Some(false),
        ),
        (
            cond("subject.attributes.nope", "ne", json!("x")),
            Some(false),
        ),
        (
            cond(
                "subject.attributes.department",
                "eq",
                attr("resource.attributes.nope"),
            ),
            Some(false),
        ),
        // Type mismatches found only at evaluation are errors: deny.
        (cond("subject.attributes.department", "gt", json!(1)), None),
        (cond("subject.attributes.tags", "eq", json!("a")), None),
        (
            cond("subject.attributes.level", "starts_with", json!("3")),
            None,
        ),
        (
            cond("subject.attributes.level", "matches", json!("3")),
            None,
        ),
        (
            cond(
                "subject.attributes.department",
                "in",
                attr("resource.attributes.department"),
            ),
            None,
        ),
        (
            cond(
                "subject.attributes.department",
                "ip_in_cidr",
                json!("10.0.0.0/8"),
            ),
            None,
        ),
        (
            cond(
                "subject.attributes.department",
                "time_between",
                json!(["09:00", "10:00"]),
            ),
            None,
        ),
        (cond("subject.attributes.level", "contains", json!(3)), None),
    ]
}

#[test]
fn every_operator_true_false_missing_and_mismatched() {
    for (condition, expected) in operator_cases() {
        let allow = policy(Effect::Allow, "document", &["read"], condition.clone());
        let decision = set(vec![allow]).explain(&request());
        match expected {
            Some(value) => {
                assert_eq!(decision.allowed, value, "{condition}");
                assert!(
                    !matches!(decision.reason, Reason::Error { .. }),
                    "{condition}"
                );
            }
            None => {
                assert!(!decision.allowed, "{condition}");
                assert!(
                    matches!(decision.reason, Reason::Error { .. }),
                    "{condition}: {:?}",
                    decision.reason
                );
            }
        }
    }
}

#[test]
fn an_erroring_deny_still_denies_and_an_erroring_policy_overrides_allows() {
    let allow = policy(Effect::Allow, "document", &["read"], Value::Null);
    let broken = cond("subject.attributes.department", "gt", json!(1));
    // Cedar would skip an erroring forbid and allow; here the decision is deny.
    let decision = set(vec![
        allow.clone(),
        policy(Effect::Deny, "document", &["read"], broken.clone()),
    ])
    .decide(&request());
    assert!(!decision.allowed);
    assert!(matches!(decision.reason, Reason::Error { .. }));
    let decision = set(vec![
        allow.clone(),
        policy(Effect::Allow, "*", &["*"], broken.clone()),
    ])
    .decide(&request());
    assert!(!decision.allowed);
    // An erroring policy that does not apply changes nothing.
    assert!(
        set(vec![
            allow,
            policy(Effect::Deny, "webhook", &["read"], broken)
        ])
        .decide(&request())
        .allowed
    );
}

#[test]
fn explanations_name_policies_and_each_condition() {
    let grant = policy(
        Effect::Allow,
        "document",
        &["read"],
        json!({"all": [
            cond("subject.attributes.department", "eq", json!({"attribute": "resource.attributes.department"})),
            {"not": cond("resource.attributes.classification", "eq", json!("confidential"))},
            cond("subject.attributes.missing", "eq", json!(1)),
        ]}),
    );
    let decision = set(vec![grant.clone()]).explain(&request());
    assert!(!decision.allowed);
    assert!(matches!(decision.reason, Reason::DefaultDeny));
    let explained = &decision.policies[0];
    assert_eq!(explained.policy_id, grant.id);
    assert_eq!(explained.matched, Some(false));
    let results: Vec<(String, String)> = explained
        .conditions
        .iter()
        .map(|c| (c.path.clone(), format!("{:?}", c.result)))
        .collect();
    assert_eq!(
        results,
        vec![
            ("conditions.all[0]".to_owned(), "True".to_owned()),
            ("conditions.all[1].not".to_owned(), "False".to_owned()),
            ("conditions.all[2]".to_owned(), "Missing".to_owned()),
        ]
    );
}

fn errors_of(conditions: Value) -> Vec<(String, String)> {
    match compile(policy(Effect::Allow, "document", &["read"], conditions)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| (e.field, e.rule.unwrap_or_default().to_owned()))
            .collect(),
    }
}

#[test]
fn validation_names_the_json_path_of_each_bad_field() {
    let errors = errors_of(json!({"all": [
        cond("subject.email", "eq", json!("ok")),
        cond("subject.password", "eq", json!("x")),
        {"any": [cond("subject.email", "like", json!("x")), cond("subject.mfa", "eq", json!("yes"))]},
        {"not": cond("subject.email", "matches", json!("(unclosed"))},
        cond("context.ip", "ip_in_cidr", json!(["10.0.0.0/33"])),
        cond("context.time", "time_between", json!(["9am", "17:00"])),
        cond("subject.email", "gt", json!(3)),
        {"attribute": "subject.email", "operator": "exists", "value": 1},
        {"attribute": "subject.email", "operator": "eq", "value": "x", "extra": 1},
        {"all": []},
    ]}));
    let expected = [
        ("conditions.all[1].attribute", "unknown_attribute"),
        ("conditions.all[2].any[0].operator", "unknown_operator"),
        ("conditions.all[2].any[1].value", "type_mismatch"),
        ("conditions.all[3].not.value", "invalid_regex"),
        ("conditions.all[4].value", "invalid_cidr"),
        ("conditions.all[5].value", "invalid_value"),
        ("conditions.all[6].value", "type_mismatch"),
        ("conditions.all[7].value", "invalid_value"),
        ("conditions.all[8].extra", "unknown_field"),
        ("conditions.all[9].all", "invalid"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    assert_eq!(errors, expected);
}

#[test]
fn regexes_are_bounded_at_save() {
    let long = "a".repeat(513);
    assert_eq!(
        errors_of(cond("subject.email", "matches", json!(long))),
        vec![("conditions.value".to_owned(), "regex_too_long".to_owned())]
    );
    // Short to write, huge to compile: refused by the size limit.
    assert_eq!(
        errors_of(cond("subject.email", "matches", json!("(\\w{100}){100}"))),
        vec![("conditions.value".to_owned(), "regex_too_big".to_owned())]
    );
    // Catastrophic-backtracking patterns are linear in this engine, and fine.
    assert!(errors_of(cond("subject.email", "matches", json!("^(a+)+$"))).is_empty());
}

#[test]
fn nesting_and_size_are_bounded() {
    let mut deep = cond("subject.email", "exists", Value::Null);
    for _ in 0..10 {
        deep = json!({"not": deep});
    }
    let errors = errors_of(deep);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].1, "too_deep");
    let many: Vec<Value> = (0..65)
        .map(|_| json!({"attribute": "subject.email", "operator": "exists"}))
        .collect();
    assert_eq!(errors_of(json!({"any": many}))[0].1, "too_many");
}

#[test]
fn draft_fields_are_checked() {
    let draft: PolicyDraft = serde_json::from_value(json!({
        "name": " ",
        "effect": "allow",
        "resource_type": "Doc uments",
        "actions": ["read", "Write!"],
        "priority": 1001,
        "principals": {"type": "roles", "roles": []}
    }))
    .expect("parses");
    let fields: Vec<String> = check_draft(&draft).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        vec![
            "name",
            "resource_type",
            "actions[1]",
            "priority",
            "principals.roles"
        ]
    );
}

// ---- properties ----

fn arb_condition() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(cond(
            "subject.attributes.department",
            "eq",
            json!("engineering")
        )),
        Just(cond("subject.attributes.department", "eq", json!("sales"))),
        Just(cond("subject.attributes.level", "gt", json!(2))),
        Just(cond(
            "resource.attributes.classification",
            "in",
            json!(["public", "internal"])
        )),
        Just(cond("subject.mfa", "eq", json!(false))),
        Just(cond("subject.attributes.department", "gt", json!(1))),
        Just(cond("subject.attributes.nope", "eq", json!(1))),
        Just(cond("context.ip", "ip_in_cidr", json!("10.0.0.0/8"))),
        // Text equalities on a number, a list and a missing attribute: what the
        // index may and may not rule out without evaluating.
        Just(cond("subject.attributes.level", "eq", json!("3"))),
        Just(cond("subject.attributes.tags", "eq", json!("a"))),
        Just(cond("subject.attributes.nope", "eq", json!("x"))),
        Just(cond(
            "resource.attributes.classification",
            "eq",
            json!("internal")
        )),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"all": v})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"any": v})),
            inner.prop_map(|v| json!({"not": v})),
        ]
    })
    .prop_map(|v| {
        // `null` is only valid at the top (no conditions); inside groups use exists.
        fn fix(v: Value) -> Value {
            match v {
                Value::Null => json!({"attribute": "subject.email", "operator": "exists"}),
                Value::Object(mut m) => {
                    for key in ["all", "any"] {
                        if let Some(Value::Array(items)) = m.remove(key) {
                            m.insert(
                                key.to_owned(),
                                Value::Array(items.into_iter().map(fix).collect()),
                            );
                        }
                    }
                    if let Some(inner) = m.remove("not") {
                        m.insert("not".to_owned(), fix(inner));
                    }
                    Value::Object(m)
                }
                other => other,
            }
        }
        fix(v)
    })
}

fn arb_policy(effect: Effect) -> impl Strategy<Value = Policy> {
    (
        prop_oneof![Just("document"), Just("*"), Just("webhook")],
        prop_oneof![Just(vec!["read"]), Just(vec!["*"]), Just(vec!["update"])],
        arb_condition(),
        any::<bool>(),
    )
        .prop_map(move |(kind, actions, conditions, active)| {
            let mut p = policy(effect, kind, &actions, conditions);
            if !active {
                p.status = PolicyStatus::Inactive;
            }
            p
        })
}

fn arb_effect() -> impl Strategy<Value = Effect> {
    prop_oneof![Just(Effect::Allow), Just(Effect::Deny)]
}

proptest! {
    #[test]
    fn adding_a_deny_never_turns_a_deny_into_an_allow(
        base in prop::collection::vec(arb_effect().prop_flat_map(arb_policy), 0..8),
        deny in arb_policy(Effect::Deny),
    ) {
        let before = set(base.clone()).decide(&request()).allowed;
        let mut with = base;
        with.push(deny);
        let after = set(with).decide(&request()).allowed;
        prop_assert!(before || !after, "deny → allow");
    }

    #[test]
    fn adding_an_allow_never_turns_an_allow_into_a_deny(
        base in prop::collection::vec(arb_effect().prop_flat_map(arb_policy), 0..8),
        allow in arb_policy(Effect::Allow),
    ) {
        let before = set(base.clone()).decide(&request()).allowed;
        let mut with = base;
        with.push(allow.clone());
        let after = set(with).decide(&request()).allowed;
        // An allow that errors when it applies denies (fail closed); that is the one
        // way an added allow changes an allow, and it is the contract.
        let errs = set(vec![allow]).decide(&request()).reason;
        let added_error = matches!(errs, Reason::Error { .. });
        prop_assert!(!before || after || added_error, "allow → deny");
    }

    #[test]
    fn decide_and_explain_agree(
        base in prop::collection::vec(arb_effect().prop_flat_map(arb_policy), 0..8),
    ) {
        let policies = set(base);
        prop_assert_eq!(policies.decide(&request()).allowed, policies.explain(&request()).allowed);
    }

    #[test]
    fn the_index_skips_only_what_could_not_change_a_decision(
        base in prop::collection::vec(arb_effect().prop_flat_map(arb_policy), 0..12),
    ) {
        let policies = set(base);
        let pruned = policies.decide(&request());
        let full = policies.decide_without_pruning(&request());
        prop_assert_eq!(pruned.allowed, full.allowed);
        prop_assert_eq!(format!("{:?}", pruned.reason), format!("{:?}", full.reason));
    }
}

#[test]
fn an_import_entry_with_an_unknown_field_is_refused() {
    use super::as_code::PolicyEntry;
    let entry = json!({"id": Uuid::new_v4(), "name": "n", "effect": "allow",
                       "resource_type": "r", "actions": ["a"], "surprise": 1});
    assert!(serde_json::from_value::<PolicyEntry>(entry.clone()).is_err());
    let mut fine = entry;
    fine.as_object_mut().expect("object").remove("surprise");
    assert!(serde_json::from_value::<PolicyEntry>(fine).is_ok());
}

#[test]
fn a_missing_attribute_never_switches_a_deny_off_nor_an_allow_on() {
    let allow = policy(Effect::Allow, "document", &["read"], Value::Null);
    // "Deny unless cleared": the subject has no clearance at all.
    let unless_cleared = policy(
        Effect::Deny,
        "document",
        &["read"],
        cond("subject.attributes.clearance", "ne", json!("secret")),
    );
    let decision = set(vec![allow.clone(), unless_cleared.clone()]).decide(&request());
    assert!(!decision.allowed, "a deny on an unknown attribute applies");
    let not_in = policy(
        Effect::Deny,
        "document",
        &["read"],
        cond(
            "subject.attributes.clearance",
            "not_in",
            json!(["secret", "top"]),
        ),
    );
    assert!(!set(vec![allow, not_in]).decide(&request()).allowed);
    // "Allow unless banned", written with `not`: unknown stays unknown.
    let unless_banned = policy(
        Effect::Allow,
        "document",
        &["read"],
        json!({"not": cond("subject.attributes.banned", "eq", json!(true))}),
    );
    assert!(!set(vec![unless_banned]).decide(&request()).allowed);
    // Where absence is meant, say so.
    let explicit = policy(
        Effect::Allow,
        "document",
        &["read"],
        json!({"any": [
            {"attribute": "subject.attributes.banned", "operator": "not_exists"},
            {"not": cond("subject.attributes.banned", "eq", json!(true))}
        ]}),
    );
    assert!(set(vec![explicit]).decide(&request()).allowed);
}

// ---- what a change would take from administrators ----

fn administrator(email: &str) -> crate::model::User {
    crate::model::User {
        id: UserId::new(),
        email: crate::model::Email::parse(email).expect("email"),
        password_hash: String::new(),
        role: Role::Admin,
        attributes: Map::new(),
        status: crate::model::UserStatus::Active,
        created_at: 0,
        updated_at: 0,
        tokens_valid_after: 0,
        failed_logins: 0,
        locked_until: None,
        mfa_enabled: false,
    }
}

/// The built-in grant: the admin role may do every administrator action.
fn admin_grant() -> Policy {
    let mut grant = policy(Effect::Allow, "admin", &["*"], Value::Null);
    grant.principals = Principals::Roles {
        roles: vec![Role::Admin],
    };
    grant
}

fn nowhere() -> Context {
    Context {
        ip: None,
        method: None,
        path: None,
        now: 0,
    }
}

#[test]
fn a_change_that_leaves_nobody_able_to_edit_policies_locks_out() {
    use super::admin_guard::{locks_out, losses};
    let (alice, bob) = (
        administrator("alice@example.org"),
        administrator("bob@example.org"),
    );
    let before = set(vec![admin_grant()]);
    let freeze_all = set(vec![
        admin_grant(),
        policy(Effect::Deny, "admin", &["policy.update"], Value::Null),
    ]);
    let admins = [alice.clone(), bob.clone()];
    assert!(locks_out(&before, &freeze_all, &admins, &admins));
    // One administrator left able to edit: not a lock-out, but alice's loss shows.
    let freeze_alice = set(vec![
        admin_grant(),
        policy(
            Effect::Deny,
            "admin",
            &["policy.update", "user.lock"],
            json!({"attribute": "subject.email", "operator": "eq", "value": "alice@example.org"}),
        ),
    ]);
    assert!(!locks_out(&before, &freeze_alice, &admins, &admins));
    let lost = losses(&before, &freeze_alice, &admins, &nowhere());
    assert_eq!(lost.len(), 1);
    assert_eq!(
        lost[0].to_string(),
        "alice@example.org could no longer: policy.update, user.lock"
    );
    // Already locked out before: a change that does not mend it is not refused for it.
    assert!(!locks_out(&freeze_all, &freeze_all, &admins, &admins));
    // No change, no loss.
    assert!(losses(&before, &before, &admins, &nowhere()).is_empty());
}

/// The lock-out check holds for every request, not the one making the change: a
/// deny whose conditions read the request's address, method, path, time or object
/// id — even through `exists` — counts as applying; one on the subject does not.
#[test]
fn a_deny_that_bites_only_on_other_requests_still_locks_out() {
    use super::admin_guard::locks_out;
    let admins = [administrator("alice@example.org")];
    let before = set(vec![admin_grant()]);
    for condition in [
        json!({"attribute": "context.method", "operator": "exists"}),
        json!({"attribute": "resource.id", "operator": "exists"}),
        json!({"attribute": "context.path", "operator": "not_exists"}),
        json!({"attribute": "context.time.hour", "operator": "in", "value": [0, 1, 2]}),
        json!({"attribute": "context.ip", "operator": "ip_in_cidr", "value": "10.0.0.0/8"}),
        json!({"not": {"attribute": "context.time.day_of_week", "operator": "eq", "value": 7}}),
        json!({"attribute": "subject.email", "operator": "ne", "value": {"attribute": "context.path"}}),
    ] {
        let after = set(vec![
            admin_grant(),
            policy(Effect::Deny, "admin", &["policy.list"], condition.clone()),
        ]);
        assert!(
            locks_out(&before, &after, &admins, &admins),
            "{condition} must count as applying"
        );
    }
    // A condition on the subject alone is judged as it is.
    let elsewhere = set(vec![
        admin_grant(),
        policy(
            Effect::Deny,
            "admin",
            &["*"],
            json!({"attribute": "subject.email", "operator": "eq", "value": "bob@example.org"}),
        ),
    ]);
    assert!(!locks_out(&before, &elsewhere, &admins, &admins));
    // Changing the administrators: the only one who could mend leaves.
    assert!(locks_out(&before, &before, &admins, &[]));
}

// ---- how the session was signed in to ----

#[test]
fn a_passkey_session_counts_as_mfa_and_names_its_method() {
    use crate::model::AuthMethod;
    let account = administrator("pat@example.org");
    let by_password = Subject::from(&account);
    assert!(!by_password.mfa);
    assert_eq!(by_password.auth_method, Some(AuthMethod::Password));
    let by_passkey = Subject::signed_in_with(&account, AuthMethod::Passkey);
    assert!(by_passkey.mfa);
    assert_eq!(by_passkey.auth_method, Some(AuthMethod::Passkey));
    assert_eq!(Subject::anonymous().auth_method, None);
    let strong = policy(
        Effect::Allow,
        "document",
        &["read"],
        cond("subject.auth_method", "eq", json!("passkey")),
    );
    let mut asked = request();
    asked.subject = by_passkey;
    assert!(set(vec![strong.clone()]).decide(&asked).allowed);
    asked.subject = by_password;
    assert!(!set(vec![strong.clone()]).decide(&asked).allowed);
    // A signed-out visitor has no method: the condition cannot hold.
    asked.subject = Subject::anonymous();
    assert!(!set(vec![strong]).decide(&asked).allowed);
}
