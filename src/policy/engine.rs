//! The decision function: deny overrides allow, no applicable allow means deny (even
//! with zero policies), and any error while evaluating an applicable policy makes
//! the whole decision deny — unlike Cedar, where an erroring forbid is skipped.
//!
//! Policies are compiled once (regexes, CIDRs, times parsed) and indexed by
//! (resource type, action); a decision only looks at the policies its index cells
//! name. A set is immutable: a change builds a new one and swaps it in whole.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::operator::Operator;
use crate::model::policy::{Effect, Policy, PolicyStatus, Principals};
use crate::model::{AuthMethod, Role, UserId};

// ---- the request ----

/// Who asks. A signed-out visitor (of the gate) is a subject too, with
/// `authenticated` false: its id, e-mail and role are absent, so no condition on
/// them can hold for it, and only `public` principals take it in.
#[derive(Debug, Clone)]
pub struct Subject {
    pub authenticated: bool,
    pub id: UserId,
    pub email: String,
    pub role: Role,
    /// The account has MFA on, or the session was signed in to with more than one
    /// factor (a passkey).
    pub mfa: bool,
    /// How the session was signed in to; absent for a signed-out visitor.
    pub auth_method: Option<AuthMethod>,
    pub attributes: Map<String, Value>,
}

/// An account's subject as a password sign-in of it makes it (see
/// [`Subject::signed_in_with`] when the session's own method is known).
impl From<&crate::model::User> for Subject {
    fn from(user: &crate::model::User) -> Self {
        Self {
            authenticated: true,
            id: user.id,
            email: user.email.to_string(),
            role: user.role,
            mfa: user.mfa_enabled,
            auth_method: Some(AuthMethod::of_password_sign_in(user.mfa_enabled)),
            attributes: user.attributes.clone(),
        }
    }
}

impl Subject {
    /// A signed-out visitor.
    pub fn anonymous() -> Self {
        Self {
            authenticated: false,
            id: UserId(Uuid::nil()),
            email: String::new(),
            role: Role::User,
            mfa: false,
            auth_method: None,
            attributes: Map::new(),
        }
    }

    /// `user`, in a session signed in to with `auth_method`: a multi-factor sign-in
    /// (a passkey) counts as MFA even on an account without a TOTP factor.
    pub fn signed_in_with(user: &crate::model::User, auth_method: AuthMethod) -> Self {
        Self {
            mfa: user.mfa_enabled || auth_method.is_multi_factor(),
            auth_method: Some(auth_method),
            ..Self::from(user)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub id: Option<String>,
    pub owner_id: Option<String>,
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Context {
    pub ip: Option<IpAddr>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// Unix seconds, UTC.
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub subject: Subject,
    pub action: String,
    pub resource: Resource,
    pub context: Context,
}

// ---- compiled conditions ----

/// A resolved attribute name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum AttrRef {
    SubjectAuthenticated,
    SubjectId,
    SubjectEmail,
    SubjectEmailDomain,
    SubjectRole,
    SubjectMfa,
    SubjectAuthMethod,
    SubjectAttr(String),
    ResourceType,
    ResourceId,
    ResourceOwner,
    ResourceAttr(String),
    Action,
    ContextIp,
    ContextMethod,
    ContextPath,
    ContextTime,
    ContextHour,
    ContextDayOfWeek,
}

impl AttrRef {
    /// Whether the attribute belongs to one request rather than to the subject or
    /// the kind of resource: its address, method, path and time, and the id of the
    /// object it names.
    fn varies_by_request(&self) -> bool {
        matches!(
            self,
            AttrRef::ResourceId
                | AttrRef::ContextIp
                | AttrRef::ContextMethod
                | AttrRef::ContextPath
                | AttrRef::ContextTime
                | AttrRef::ContextHour
                | AttrRef::ContextDayOfWeek
        )
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        if let Some(key) = name.strip_prefix("subject.attributes.") {
            return Some(AttrRef::SubjectAttr(key.to_owned()));
        }
        if let Some(key) = name.strip_prefix("resource.attributes.") {
            return Some(AttrRef::ResourceAttr(key.to_owned()));
        }
        Some(match name {
            "subject.authenticated" => AttrRef::SubjectAuthenticated,
            "subject.id" => AttrRef::SubjectId,
            "subject.email" => AttrRef::SubjectEmail,
            "subject.email_domain" => AttrRef::SubjectEmailDomain,
            "subject.role" => AttrRef::SubjectRole,
            "subject.mfa" => AttrRef::SubjectMfa,
            "subject.auth_method" => AttrRef::SubjectAuthMethod,
            "resource.type" => AttrRef::ResourceType,
            "resource.id" => AttrRef::ResourceId,
            "resource.owner_id" => AttrRef::ResourceOwner,
            "action" => AttrRef::Action,
            "context.ip" => AttrRef::ContextIp,
            "context.method" => AttrRef::ContextMethod,
            "context.path" => AttrRef::ContextPath,
            "context.time" => AttrRef::ContextTime,
            "context.time.hour" => AttrRef::ContextHour,
            "context.time.day_of_week" => AttrRef::ContextDayOfWeek,
            _ => return None,
        })
    }
}

/// The right-hand side of a comparison, prepared at compile time.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    None,
    Literal(Value),
    Attribute(AttrRef),
    Regex(Regex),
    Cidrs(Vec<IpNet>),
    /// Minutes after midnight, start and end (end before start wraps midnight).
    TimeRange(u16, u16),
}

#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    /// Where it sits in the policy's `conditions`, for explanations.
    pub path: String,
    pub attribute_name: String,
    pub attribute: AttrRef,
    pub operator: Operator,
    pub operand: Operand,
}

#[derive(Debug, Clone)]
pub(crate) enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Compare(Comparison),
}

#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub policy: Arc<Policy>,
    pub(crate) condition: Option<Condition>,
}

// ---- values during evaluation ----

/// An attribute's value, borrowed from the request where possible.
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    Json(&'a Value),
}

impl<'a> Val<'a> {
    /// Unwraps JSON scalars, so `"x"` in attributes compares like a string.
    fn scalar(self) -> Val<'a> {
        match self {
            Val::Json(Value::String(s)) => Val::Str(s),
            Val::Json(Value::Bool(b)) => Val::Bool(*b),
            Val::Json(Value::Number(n)) => n.as_f64().map_or(self, Val::Num),
            other => other,
        }
    }

    fn describe(self) -> &'static str {
        match self.scalar() {
            Val::Str(_) => "a string",
            Val::Num(_) => "a number",
            Val::Bool(_) => "a boolean",
            Val::Json(Value::Array(_)) => "a list",
            Val::Json(Value::Object(_)) => "an object",
            Val::Json(_) => "null",
        }
    }
}

/// The request as conditions read it. What needs formatting (the subject's id, the
/// address, the time of day) is formatted only when a condition asks for it.
struct Prepared<'a> {
    request: &'a AccessRequest,
    /// Every comparison on an attribute that varies by request is unknown (see
    /// [`PolicySet::decide_for_every_request`]).
    any_request: bool,
    subject_id: OnceCell<String>,
    ip: OnceCell<Option<String>>,
    time: OnceCell<String>,
    at: OnceCell<time::OffsetDateTime>,
}

impl<'a> Prepared<'a> {
    fn new(request: &'a AccessRequest) -> Self {
        Self {
            request,
            any_request: false,
            subject_id: OnceCell::new(),
            ip: OnceCell::new(),
            time: OnceCell::new(),
            at: OnceCell::new(),
        }
    }

    fn at(&self) -> time::OffsetDateTime {
        *self.at.get_or_init(|| {
            time::OffsetDateTime::from_unix_timestamp(self.request.context.now)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        })
    }

    fn resolve(&self, attr: &AttrRef) -> Option<Val<'_>> {
        let r = self.request;
        let signed_in = r.subject.authenticated;
        Some(match attr {
            AttrRef::SubjectAuthenticated => Val::Bool(signed_in),
            // A signed-out visitor has no id, e-mail, role or attributes.
            AttrRef::SubjectId
            | AttrRef::SubjectEmail
            | AttrRef::SubjectEmailDomain
            | AttrRef::SubjectRole
            | AttrRef::SubjectAttr(_)
                if !signed_in =>
            {
                return None;
            }
            AttrRef::SubjectId => Val::Str(
                self.subject_id
                    .get_or_init(|| r.subject.id.to_string())
                    .as_str(),
            ),
            AttrRef::SubjectEmail => Val::Str(&r.subject.email),
            AttrRef::SubjectEmailDomain => {
                Val::Str(r.subject.email.rsplit_once('@').map_or("", |(_, d)| d))
            }
            AttrRef::SubjectRole => Val::Str(r.subject.role.as_str()),
            AttrRef::SubjectMfa => Val::Bool(r.subject.mfa),
            AttrRef::SubjectAuthMethod => Val::Str(r.subject.auth_method?.as_str()),
            AttrRef::SubjectAttr(key) => Val::Json(r.subject.attributes.get(key)?),
            AttrRef::ResourceType => Val::Str(&r.resource.kind),
            AttrRef::ResourceId => Val::Str(r.resource.id.as_deref()?),
            AttrRef::ResourceOwner => Val::Str(r.resource.owner_id.as_deref()?),
            AttrRef::ResourceAttr(key) => Val::Json(r.resource.attributes.get(key)?),
            AttrRef::Action => Val::Str(&r.action),
            AttrRef::ContextIp => Val::Str(
                self.ip
                    .get_or_init(|| r.context.ip.map(|ip| ip.to_canonical().to_string()))
                    .as_deref()?,
            ),
            AttrRef::ContextMethod => Val::Str(r.context.method.as_deref()?),
            AttrRef::ContextPath => Val::Str(r.context.path.as_deref()?),
            AttrRef::ContextTime => Val::Str(self.time.get_or_init(|| {
                let at = self.at();
                format!("{:02}:{:02}", at.hour(), at.minute())
            })),
            AttrRef::ContextHour => Val::Num(f64::from(self.at().hour())),
            AttrRef::ContextDayOfWeek => {
                Val::Num(f64::from(self.at().weekday().number_from_monday()))
            }
        })
    }
}

/// Why a comparison could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EvaluationError {
    pub path: String,
    pub message: String,
}

/// The result of one comparison, for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConditionResult {
    True,
    False,
    /// The attribute (or the attribute on the right) is absent: the comparison is
    /// unknown — an allow does not take effect on it, a deny does.
    Missing,
    Error,
    /// Not reached: an earlier condition already settled its group.
    NotEvaluated,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConditionTrace {
    pub path: String,
    pub attribute: String,
    pub operator: Operator,
    pub result: ConditionResult,
}

type Eval = Result<bool, EvaluationError>;

fn mismatch(cmp: &Comparison, what: &str) -> EvaluationError {
    EvaluationError {
        path: cmp.path.clone(),
        message: format!(
            "`{}` {} cannot apply to {what}",
            cmp.attribute_name,
            cmp.operator.as_str()
        ),
    }
}

fn scalar_eq(a: Val<'_>, b: Val<'_>) -> Option<bool> {
    match (a.scalar(), b.scalar()) {
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        (Val::Num(x), Val::Num(y)) => Some(x == y),
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Json(Value::Array(_) | Value::Object(_)), _)
        | (_, Val::Json(Value::Array(_) | Value::Object(_))) => None,
        _ => Some(false),
    }
}

fn list_of<'v>(v: Val<'v>) -> Option<&'v Vec<Value>> {
    match v {
        Val::Json(Value::Array(items)) => Some(items),
        _ => None,
    }
}

fn minutes_of(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

pub(crate) fn parse_time_of_day(text: &str) -> Option<u16> {
    minutes_of(text)
}

/// Evaluates one comparison. A missing attribute sets `missing` (the comparison is
/// unknown, see `Truth`); a value of the wrong type is an error.
fn compare(cmp: &Comparison, env: &Prepared<'_>, missing: &mut bool) -> Eval {
    if env.any_request
        && (cmp.attribute.varies_by_request()
            || matches!(&cmp.operand, Operand::Attribute(a) if a.varies_by_request()))
    {
        *missing = true;
        return Ok(false);
    }
    let left = env.resolve(&cmp.attribute);
    match cmp.operator {
        Operator::Exists => return Ok(left.is_some()),
        Operator::NotExists => return Ok(left.is_none()),
        _ => {}
    }
    let Some(left) = left else {
        *missing = true;
        return Ok(false);
    };
    let right = match &cmp.operand {
        Operand::Literal(value) => Some(Val::Json(value)),
        Operand::Attribute(attr) => {
            let Some(value) = env.resolve(attr) else {
                *missing = true;
                return Ok(false);
            };
            Some(value)
        }
        _ => None,
    };
    let left_scalar = left.scalar();
    match (cmp.operator, &cmp.operand) {
        (Operator::Eq | Operator::Ne, _) => {
            let right = right.ok_or_else(|| mismatch(cmp, "no value"))?;
            let equal = scalar_eq(left, right).ok_or_else(|| mismatch(cmp, "a list or object"))?;
            Ok(equal == (cmp.operator == Operator::Eq))
        }
        (Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte, _) => {
            let right = right.map(Val::scalar);
            let (Val::Num(a), Some(Val::Num(b))) = (left_scalar, right) else {
                return Err(mismatch(cmp, "values that are not both numbers"));
            };
            Ok(match cmp.operator {
                Operator::Gt => a > b,
                Operator::Gte => a >= b,
                Operator::Lt => a < b,
                _ => a <= b,
            })
        }
        (Operator::In | Operator::NotIn, _) => {
            let list = right
                .and_then(list_of)
                .ok_or_else(|| mismatch(cmp, "a right-hand side that is not a list"))?;
            let mut found = false;
            for item in list {
                match scalar_eq(left, Val::Json(item)) {
                    Some(true) => found = true,
                    Some(false) => {}
                    None => return Err(mismatch(cmp, "a list or object")),
                }
            }
            Ok(found == (cmp.operator == Operator::In))
        }
        (Operator::Contains, _) => {
            let right = right.ok_or_else(|| mismatch(cmp, "no value"))?;
            match (left_scalar, right.scalar()) {
                (Val::Str(haystack), Val::Str(needle)) => Ok(haystack.contains(needle)),
                (Val::Json(Value::Array(items)), needle) => {
                    let mut found = false;
                    for item in items {
                        found |= scalar_eq(Val::Json(item), needle)
                            .ok_or_else(|| mismatch(cmp, "nested lists"))?;
                    }
                    Ok(found)
                }
                (other, _) => Err(mismatch(cmp, other.describe())),
            }
        }
        (Operator::StartsWith | Operator::EndsWith, _) => {
            let right = right.map(Val::scalar);
            let (Val::Str(text), Some(Val::Str(affix))) = (left_scalar, right) else {
                return Err(mismatch(cmp, "values that are not both strings"));
            };
            Ok(if cmp.operator == Operator::StartsWith {
                text.starts_with(affix)
            } else {
                text.ends_with(affix)
            })
        }
        (Operator::Matches, Operand::Regex(regex)) => match left_scalar {
            Val::Str(text) => Ok(regex.is_match(text)),
            other => Err(mismatch(cmp, other.describe())),
        },
        (Operator::IpInCidr, Operand::Cidrs(nets)) => {
            let Val::Str(text) = left_scalar else {
                return Err(mismatch(cmp, left.describe()));
            };
            let ip: IpAddr = text
                .parse()
                .map_err(|_| mismatch(cmp, "a value that is not an IP address"))?;
            let ip = ip.to_canonical();
            Ok(nets.iter().any(|net| net.contains(&ip)))
        }
        (Operator::TimeBetween, Operand::TimeRange(start, end)) => {
            let Val::Str(text) = left_scalar else {
                return Err(mismatch(cmp, left.describe()));
            };
            let at = minutes_of(text)
                .ok_or_else(|| mismatch(cmp, "a value that is not a time HH:MM"))?;
            Ok(if start <= end {
                (*start..=*end).contains(&at)
            } else {
                at >= *start || at <= *end
            })
        }
        _ => Err(mismatch(cmp, "an operand it was not compiled with")),
    }
}

/// Three-valued truth: a comparison on a missing attribute is `Unknown`, never
/// true or false, and stays unknown through `not` (Kleene logic). An allow policy
/// takes effect only when its conditions are `True`; a deny when they are `True` or
/// `Unknown` — so a missing attribute can never switch a deny off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn not(self) -> Self {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

/// Evaluates a condition tree. `trace`, when given, records every comparison
/// reached.
fn evaluate(
    condition: &Condition,
    env: &Prepared<'_>,
    trace: &mut Option<&mut Vec<ConditionTrace>>,
) -> Result<Truth, EvaluationError> {
    match condition {
        Condition::All(items) | Condition::Any(items) => {
            // `all` stops at the first false, `any` at the first true; an explanation
            // lists the rest as not evaluated. Decisions and explanations agree.
            let (settles, otherwise) = match condition {
                Condition::Any(_) => (Truth::True, Truth::False),
                _ => (Truth::False, Truth::True),
            };
            let mut unknown = false;
            let mut rest = items.iter();
            for item in rest.by_ref() {
                match evaluate(item, env, trace)? {
                    t if t == settles => {
                        if let Some(trace) = trace.as_deref_mut() {
                            rest.for_each(|skipped| not_evaluated(skipped, trace));
                        }
                        return Ok(settles);
                    }
                    Truth::Unknown => unknown = true,
                    _ => {}
                }
            }
            Ok(if unknown { Truth::Unknown } else { otherwise })
        }
        Condition::Not(inner) => evaluate(inner, env, trace).map(Truth::not),
        Condition::Compare(cmp) => {
            let mut missing = false;
            let result = compare(cmp, env, &mut missing);
            if let Some(trace) = trace.as_deref_mut() {
                trace.push(ConditionTrace {
                    path: cmp.path.clone(),
                    attribute: cmp.attribute_name.clone(),
                    operator: cmp.operator,
                    result: match (&result, missing) {
                        (Err(_), _) => ConditionResult::Error,
                        (_, true) => ConditionResult::Missing,
                        (Ok(true), _) => ConditionResult::True,
                        (Ok(false), _) => ConditionResult::False,
                    },
                });
            }
            match result? {
                _ if missing => Ok(Truth::Unknown),
                true => Ok(Truth::True),
                false => Ok(Truth::False),
            }
        }
    }
}

/// Records every comparison under `condition` as not evaluated.
fn not_evaluated(condition: &Condition, trace: &mut Vec<ConditionTrace>) {
    match condition {
        Condition::All(items) | Condition::Any(items) => {
            items.iter().for_each(|item| not_evaluated(item, trace));
        }
        Condition::Not(inner) => not_evaluated(inner, trace),
        Condition::Compare(cmp) => trace.push(ConditionTrace {
            path: cmp.path.clone(),
            attribute: cmp.attribute_name.clone(),
            operator: cmp.operator,
            result: ConditionResult::NotEvaluated,
        }),
    }
}

// ---- the policy set and decisions ----

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// No applicable allow policy matched.
    DefaultDeny,
    AllowedBy {
        policies: Vec<Uuid>,
    },
    DeniedBy {
        policies: Vec<Uuid>,
    },
    /// An applicable policy could not be evaluated: the decision is deny.
    Error {
        policy: Uuid,
        error: EvaluationError,
    },
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyExplanation {
    pub policy_id: Uuid,
    pub name: String,
    pub effect: Effect,
    pub priority: u16,
    /// Whether it took effect: an allow whose conditions held, or a deny whose
    /// conditions held or could not be known; `null` on an error.
    pub matched: Option<bool>,
    pub conditions: Vec<ConditionTrace>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    /// Every applicable policy, by priority (highest first), with each
    /// condition's result. Empty for decisions made without explanation.
    pub policies: Vec<PolicyExplanation>,
}

/// An immutable, indexed set of compiled policies.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<CompiledPolicy>,
    /// (resource type, action) → active policies there; `*` on either side is a
    /// key of its own.
    index: HashMap<String, HashMap<String, Cell>>,
}

/// The active policies of one (resource type, action), as positions in the set
/// (which is in priority order).
#[derive(Debug, Default)]
struct Cell {
    /// Policies every request there evaluates.
    always: Vec<usize>,
    /// Policies whose condition is `A eq "text"`, or an `all` that begins with
    /// it, by attribute `A` and then text. For a request whose `A` is a scalar,
    /// every group but its own value's is false without evaluation — the
    /// comparison is false and settles the `all` before anything else in it runs —
    /// so a decision evaluates only that group. (The gate's route policies are
    /// mostly one host each: a request evaluates its host's, not all of them.)
    guarded: Vec<(AttrRef, HashMap<String, Vec<usize>>)>,
}

/// The `A eq "text"` that settles a condition when false, if it has one.
fn guard_of(condition: Option<&Condition>) -> Option<(&AttrRef, &str)> {
    let first = match condition? {
        Condition::All(items) => items.first()?,
        other => other,
    };
    match first {
        Condition::Compare(Comparison {
            attribute,
            operator: Operator::Eq,
            operand: Operand::Literal(Value::String(text)),
            ..
        }) => Some((attribute, text)),
        _ => None,
    }
}

impl Cell {
    fn add(&mut self, position: usize, compiled: &CompiledPolicy) {
        let Some((attribute, text)) = guard_of(compiled.condition.as_ref()) else {
            self.always.push(position);
            return;
        };
        let groups = match self.guarded.iter_mut().position(|(a, _)| a == attribute) {
            Some(i) => &mut self.guarded[i].1,
            None => {
                self.guarded.push((attribute.clone(), HashMap::new()));
                let last = self.guarded.len() - 1;
                &mut self.guarded[last].1
            }
        };
        groups.entry(text.to_owned()).or_default().push(position);
    }

    /// Adds the positions a request may match (`prune`), or every one.
    fn collect(&self, env: &Prepared<'_>, prune: bool, found: &mut Vec<usize>) {
        found.extend(&self.always);
        for (attribute, groups) in &self.guarded {
            let value = if prune {
                env.resolve(attribute).map(Val::scalar)
            } else {
                None
            };
            match value {
                Some(Val::Str(text)) => {
                    if let Some(positions) = groups.get(text) {
                        found.extend(positions);
                    }
                }
                // A number, a boolean or null never equals a text.
                Some(Val::Num(_) | Val::Bool(_) | Val::Json(Value::Null)) => {}
                // Missing (unknown), a list or an object (an error): evaluated.
                _ => groups
                    .values()
                    .for_each(|positions| found.extend(positions)),
            }
        }
    }
}

impl PolicySet {
    pub fn new(mut policies: Vec<CompiledPolicy>) -> Self {
        policies.sort_by(|a, b| {
            b.policy
                .priority
                .cmp(&a.policy.priority)
                .then_with(|| a.policy.name.cmp(&b.policy.name))
        });
        let mut index: HashMap<String, HashMap<String, Cell>> = HashMap::new();
        for (i, compiled) in policies.iter().enumerate() {
            let p = &compiled.policy;
            if p.status != PolicyStatus::Active {
                continue;
            }
            let actions: Vec<&str> = if p.applies_to_every_action() {
                vec!["*"]
            } else {
                p.actions.iter().map(String::as_str).collect()
            };
            for action in actions {
                index
                    .entry(p.resource_type.clone())
                    .or_default()
                    .entry(action.to_owned())
                    .or_default()
                    .add(i, compiled);
            }
        }
        Self { policies, index }
    }

    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.iter().map(|c| &c.policy)
    }

    /// Active policies whose resource type, action and principals match, by
    /// priority — with `prune`, less those that cannot match this request.
    fn applicable<'s>(
        &'s self,
        request: &AccessRequest,
        env: &Prepared<'_>,
        prune: bool,
    ) -> Vec<&'s CompiledPolicy> {
        let kind = request.resource.kind.as_str();
        let action = request.action.as_str();
        let mut found: Vec<usize> = Vec::new();
        for (k, a) in [(kind, action), (kind, "*"), ("*", action), ("*", "*")] {
            if let Some(cell) = self.index.get(k).and_then(|by_action| by_action.get(a)) {
                cell.collect(env, prune, &mut found);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .map(|i| &self.policies[i])
            .filter(|c| principal_matches(&c.policy.principals, &request.subject))
            .collect()
    }

    /// The decision, without explanation: the fast path every enforcement uses.
    pub fn decide(&self, request: &AccessRequest) -> Decision {
        self.run(request, false)
    }

    /// The decision with every applicable policy's conditions, one by one.
    pub fn explain(&self, request: &AccessRequest) -> Decision {
        self.run(request, true)
    }

    /// [`PolicySet::decide`] evaluating every applicable policy: what pruning must
    /// never change.
    #[cfg(test)]
    pub(crate) fn decide_without_pruning(&self, request: &AccessRequest) -> Decision {
        self.evaluate_all(request, false, false)
    }

    /// The decision for every request this subject could make of this action on
    /// this kind of resource, whatever its address, method, path, time or object
    /// id: a comparison on any of those is unknown, so a deny that could apply
    /// applies and an allow that might not does not. Allowed here means allowed
    /// on every such request (what the admin lock-out guard asks).
    pub fn decide_for_every_request(&self, request: &AccessRequest) -> Decision {
        let mut env = Prepared::new(request);
        env.any_request = true;
        self.evaluate_in(request, env, false, false)
    }

    fn run(&self, request: &AccessRequest, explain: bool) -> Decision {
        self.evaluate_all(request, explain, !explain)
    }

    fn evaluate_all(&self, request: &AccessRequest, explain: bool, prune: bool) -> Decision {
        self.evaluate_in(request, Prepared::new(request), explain, prune)
    }

    fn evaluate_in(
        &self,
        request: &AccessRequest,
        env: Prepared<'_>,
        explain: bool,
        prune: bool,
    ) -> Decision {
        let mut allowed_by = Vec::new();
        let mut denied_by = Vec::new();
        let mut error: Option<(Uuid, EvaluationError)> = None;
        let mut explained = Vec::new();
        // An explanation lists every applicable policy; a decision skips those
        // that cannot match (their result would be false, and change nothing).
        for compiled in self.applicable(request, &env, prune) {
            let p = &compiled.policy;
            let mut conditions = Vec::new();
            let truth = match &compiled.condition {
                None => Ok(Truth::True),
                Some(condition) => {
                    let mut trace = explain.then_some(&mut conditions);
                    evaluate(condition, &env, &mut trace)
                }
            };
            // Whether the policy takes effect (see `Truth`).
            let result = truth.map(|t| match p.effect {
                Effect::Allow => t == Truth::True,
                Effect::Deny => t != Truth::False,
            });
            match &result {
                Ok(true) if p.effect == Effect::Allow => allowed_by.push(p.id),
                Ok(true) => denied_by.push(p.id),
                Ok(false) => {}
                Err(e) => {
                    if error.is_none() {
                        error = Some((p.id, e.clone()));
                    }
                }
            }
            if explain {
                explained.push(PolicyExplanation {
                    policy_id: p.id,
                    name: p.name.clone(),
                    effect: p.effect,
                    priority: p.priority,
                    matched: result.as_ref().ok().copied(),
                    conditions,
                });
            } else if error.is_some() || !denied_by.is_empty() {
                // Deny is settled; the rest cannot change it.
                break;
            }
        }
        let (allowed, reason) = match error {
            Some((policy, error)) => (false, Reason::Error { policy, error }),
            None if !denied_by.is_empty() => (
                false,
                Reason::DeniedBy {
                    policies: denied_by,
                },
            ),
            None if !allowed_by.is_empty() => (
                true,
                Reason::AllowedBy {
                    policies: allowed_by,
                },
            ),
            None => (false, Reason::DefaultDeny),
        };
        Decision {
            allowed,
            reason,
            policies: explained,
        }
    }
}

fn principal_matches(principals: &Principals, subject: &Subject) -> bool {
    match principals {
        Principals::Public => true,
        _ if !subject.authenticated => false,
        Principals::Everyone => true,
        Principals::Users { ids } => ids.contains(&subject.id),
        Principals::Roles { roles } => roles.contains(&subject.role),
    }
}
