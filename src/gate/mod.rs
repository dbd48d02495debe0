//! The gate: Portcullis in front of other apps (forward-auth). For each request a
//! reverse proxy asks "may this request through?"; the answer is the policy
//! engine's, on resource type `route`, with the same subject a token or portal
//! session proves, or a signed-out visitor:
//!
//! - `resource.id` = host + path, `resource.attributes` = `host`, `path`,
//!   `scheme`, `query`, `port`; `action` = the method in lower case;
//!   `context.ip` = the client as the proxy saw it.
//! - No policy that allows it means denied, signed out or not: nothing is public
//!   unless a `public` policy says so.
//! - An allowed request gets the identity headers and a signed assertion; a
//!   signed-out visitor who is not allowed is sent to sign in; a signed-in one is
//!   refused (and audited); an evaluation error is an error — never a pass.
//!
//! This module knows nothing of HTTP: the proxy contracts (which headers carry the
//! original request, what each answer looks like) are `routes::gate`'s.

pub mod assertion;
pub mod handoff;
pub mod proxy_config;
pub mod redirect;
pub mod stats;

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::audit::{AuditEvent, AuditLog, Outcome as AuditOutcome, RequestMeta};
use crate::clock::Clock;
use crate::config::GateSettings;
use crate::model::host::{HostPattern, RequestHost, default_port, is_within, parse_host_port};
use crate::model::{AuthMethod, User};
use crate::policy::engine::{AccessRequest, Context, Reason, Resource, Subject};
use crate::policy::service::PolicyService;
use crate::telemetry::metrics::{AbacMetrics, AbacResult, GateMetrics, GateResult};
use assertion::{AssertionClaims, AssertionError, AssertionSigner};
use stats::{GateStats, Outcome};

/// The resource type of a request through the gate.
pub const ROUTE: &str = "route";

/// Every header an allowed answer carries, for `GATE_FORWARD_ATTRIBUTES`
/// `forwarded`: what a proxy must copy upstream (and strip from clients).
pub fn identity_headers(forwarded: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["Remote-User", "Remote-Email", "Remote-Role", "Remote-Name"]
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    names.extend(forwarded.iter().map(|a| format!("Remote-Attr-{a}")));
    names.push("Portcullis-Assertion".to_owned());
    names
}

/// The request the proxy asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    /// Upper case, as HTTP writes it.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    pub host: RequestHost,
    /// Starts with `/`.
    pub path: String,
    pub query: Option<String>,
}

/// Why the original request could not be understood (the proxy's fault: 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BadOriginal {
    pub field: &'static str,
    pub message: &'static str,
}

fn bad(field: &'static str, message: &'static str) -> BadOriginal {
    BadOriginal { field, message }
}

fn method_of(method: &str, field: &'static str) -> Result<String, BadOriginal> {
    let valid = !method.is_empty()
        && method.len() <= 32
        && method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
    valid
        .then(|| method.to_ascii_uppercase())
        .ok_or_else(|| bad(field, "must be an HTTP method such as GET"))
}

/// Whether `byte` is an unreserved character (RFC 3986 §2.3): its escape means the
/// same as itself.
fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Splits `/path?query` (a request target) and puts the path in the one form the
/// engine judges: escapes of unreserved characters decoded (`/%73ecret` is
/// `/secret`, as every app reads it), other escapes in upper case.
///
/// Refused, because an app behind the proxy may serve another path than the one
/// the gate would judge: a dot segment (`/a/../b`, `/./b`, `/%2e%2e/b`, Tomcat's
/// `/..;/b`), an escaped `/`, `\` or NUL, a raw `\`, an empty segment (`//`; a
/// trailing slash is fine), a fragment (`#`, which never reaches a server), and a
/// malformed escape. The query is kept as sent.
fn path_and_query(uri: &str, field: &'static str) -> Result<(String, Option<String>), BadOriginal> {
    const UNSAFE: &str = "must be a plain request path: no dot segments, empty segments, backslashes, fragments or escaped slashes";
    if !uri.starts_with('/') || uri.len() > 8192 || uri.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(bad(field, "must be a request target starting with /"));
    }
    if uri.contains(['#', '\\']) {
        return Err(bad(field, UNSAFE));
    }
    let (raw_path, query) = match uri.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (uri, None),
    };
    let mut path = String::with_capacity(raw_path.len());
    let mut rest = raw_path;
    while let Some(at) = rest.find('%') {
        path.push_str(&rest[..at]);
        let escape = rest
            .get(at + 1..at + 3)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let byte = escape
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .ok_or_else(|| bad(field, UNSAFE))?;
        match byte {
            b'/' | b'\\' | 0 => return Err(bad(field, UNSAFE)),
            b if unreserved(b) => path.push(char::from(b)),
            b => {
                let _ = write!(path, "%{b:02X}");
            }
        }
        rest = &rest[at + 3..];
    }
    path.push_str(rest);
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let name = segment.split(';').next().unwrap_or(segment);
        let empty_inside = segment.is_empty() && i + 1 < segments.len();
        if name == "." || name == ".." || empty_inside {
            return Err(bad(field, UNSAFE));
        }
    }
    Ok((path, query))
}

impl OriginalRequest {
    /// From Traefik's and Caddy's `X-Forwarded-Method/-Proto/-Host/-Uri`.
    pub fn from_forwarded(
        method: &str,
        proto: &str,
        host: &str,
        uri: &str,
    ) -> Result<Self, BadOriginal> {
        let method = method_of(method, "X-Forwarded-Method")?;
        let scheme = match proto.trim().to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return Err(bad("X-Forwarded-Proto", "must be http or https")),
        };
        let host = parse_host_port(host).ok_or_else(|| {
            bad(
                "X-Forwarded-Host",
                "must be a host name, with an optional port",
            )
        })?;
        let (path, query) = path_and_query(uri, "X-Forwarded-Uri")?;
        Ok(Self {
            method,
            scheme: scheme.to_owned(),
            host,
            path,
            query,
        })
    }

    /// From nginx's `X-Original-URL` and `X-Original-Method`.
    pub fn from_original_url(method: &str, url: &str) -> Result<Self, BadOriginal> {
        const FIELD: &str = "X-Original-URL";
        let method = method_of(method, "X-Original-Method")?;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad(FIELD, "must be an absolute http(s) URL"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad(FIELD, "must be an absolute http(s) URL"));
        }
        // The authority ends at the first `/`: a `?` or `#` before it is part of a
        // host that is no host (nginx passes `Host: app:8080?` through), refused.
        let split = rest.find('/').unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let host = parse_host_port(authority)
            .ok_or_else(|| bad(FIELD, "must name a host, with an optional port"))?;
        let target = if target.is_empty() { "/" } else { target };
        let (path, query) = path_and_query(target, FIELD)?;
        Ok(Self {
            method,
            scheme,
            host,
            path,
            query,
        })
    }

    /// Whether the request is for a path of Portcullis's own on every app host (the
    /// handoff): a proxy that asks the gate about it would pass it to the app, so
    /// it is refused, whoever asks.
    pub fn is_gate_own(&self) -> bool {
        self.path
            .get(..handoff::PREFIX.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(handoff::PREFIX))
    }

    /// The port the request was made to (the scheme's own when none is named).
    pub fn port(&self) -> u16 {
        self.host.port.unwrap_or(self.port_default())
    }

    /// The URL as the browser asked for it (the scheme's own port left out).
    pub fn url(&self) -> String {
        let port = match self.host.port {
            Some(port) if port != self.port_default() => format!(":{port}"),
            _ => String::new(),
        };
        let query = self
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        format!(
            "{}://{}{port}{}{query}",
            self.scheme, self.host.name, self.path
        )
    }

    fn port_default(&self) -> u16 {
        default_port(&self.scheme)
    }

    /// The request as the engine judges it (the simulator asks with it too).
    pub fn resource(&self) -> Resource {
        let mut attributes = Map::new();
        attributes.insert("host".to_owned(), Value::from(self.host.name.clone()));
        attributes.insert("path".to_owned(), Value::from(self.path.clone()));
        attributes.insert("scheme".to_owned(), Value::from(self.scheme.clone()));
        attributes.insert(
            "query".to_owned(),
            Value::from(self.query.clone().unwrap_or_default()),
        );
        attributes.insert("port".to_owned(), Value::from(self.port()));
        Resource {
            kind: ROUTE.to_owned(),
            id: Some(format!("{}{}", self.host.name, self.path)),
            owner_id: None,
            attributes,
        }
    }
}

/// What an upstream is told about an allowed request. Every identity header is
/// always answered — empty when there is no value, and all of them empty for a
/// signed-out visitor a `public` policy lets in — so a proxy that copies them
/// (Caddy's `copy_headers`) overwrites whatever a client sent under those names.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `(header, value)`: `Remote-User`, `Remote-Email`, `Remote-Role`,
    /// `Remote-Name`, `Remote-Attr-<name>`.
    pub headers: Vec<(String, String)>,
    pub assertion: std::sync::Arc<str>,
}

/// The gate's answer.
#[derive(Debug)]
pub enum Verdict {
    /// Through; `None` for a signed-out visitor a `public` policy lets in.
    Allowed(Option<Identity>),
    /// Not signed in, and not public: sign in first.
    SignInFirst,
    /// Signed in, and refused.
    Denied,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A policy could not be evaluated: no decision, so no access.
    #[error("a route policy could not be evaluated")]
    Evaluation,
    #[error(transparent)]
    Assertion(#[from] AssertionError),
}

/// Who is asking, once the web layer has checked their credential.
pub enum Asker<'a> {
    /// Signed in, by a session signed in to with the method given.
    SignedIn(&'a User, AuthMethod),
    SignedOut,
}

#[derive(Clone)]
pub struct GateService {
    hosts: std::sync::Arc<[HostPattern]>,
    portal_url: String,
    forward_attributes: std::sync::Arc<[String]>,
    signer: AssertionSigner,
    policies: PolicyService,
    audit: AuditLog,
    clock: Clock,
    stats: GateStats,
    /// Counts the engine's decisions, and the gate's answers by host entry.
    abac: AbacMetrics,
    metrics: GateMetrics,
    /// Denials audited in the last minute, by account, host, method and path: a
    /// signed-in account that repeats a refused request (a script, a reloading tab)
    /// is audited once a minute for it, not once a request. Counted every time.
    audited_denials: moka::sync::Cache<String, i64>,
    /// The portal's host name, and the domain its cookie is scoped to: the hosts
    /// that cookie reaches need no handoff.
    portal_host: String,
    cookie_domain: Option<String>,
    handoffs: handoff::Handoffs,
}

/// How long a repeat of an audited denial is counted but not audited again.
const DENIAL_AUDIT_SECONDS: i64 = 60;

impl GateService {
    pub fn new(
        settings: &GateSettings,
        policies: PolicyService,
        audit: AuditLog,
        clock: Clock,
        abac: AbacMetrics,
        metrics: GateMetrics,
    ) -> Result<Self, AssertionError> {
        Ok(Self {
            hosts: settings.hosts.clone().into(),
            portal_url: settings.portal_url.clone(),
            forward_attributes: settings.forward_attributes.clone().into(),
            signer: AssertionSigner::new(
                &settings.assertion_key,
                &settings.previous_assertion_keys,
                &settings.portal_url,
            )?,
            policies,
            audit,
            clock: clock.clone(),
            stats: GateStats::new(settings.hosts.len()),
            abac,
            metrics,
            // Ages are checked when read (no time-to-live, whose expiry would
            // sweep every old entry at once on some request's worker).
            audited_denials: moka::sync::Cache::builder().max_capacity(20_000).build(),
            portal_host: settings
                .portal_url
                .split_once("://")
                .and_then(|(_, authority)| parse_host_port(authority))
                .map(|host| host.name)
                .unwrap_or_default(),
            cookie_domain: settings.cookie_domain.clone(),
            handoffs: handoff::Handoffs::new(clock.clone()),
        })
    }

    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    pub fn portal_url(&self) -> &str {
        &self.portal_url
    }

    pub fn signer(&self) -> &AssertionSigner {
        &self.signer
    }

    /// The identity headers' names, as answered for a signed-out visitor (empty).
    pub fn identity_header_names(&self) -> Vec<String> {
        identity_headers(&self.forward_attributes)
    }

    /// The last 24 hours' counts of each `GATE_HOSTS` entry.
    pub fn counts(&self) -> Vec<(&HostPattern, stats::Counts)> {
        let now = self.clock.now();
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, host)| (host, self.stats.last_day(i, now)))
            .collect()
    }

    /// The `GATE_HOSTS` entry that covers `host`, if any. A host none covers is
    /// refused, and counted as such (as host `other`).
    pub fn entry_for(&self, host: &RequestHost) -> Option<usize> {
        let entry = self.hosts.iter().position(|p| p.matches(host));
        if entry.is_none() {
            self.metrics.decided(None, GateResult::UnprotectedHost);
        }
        entry
    }

    /// The portal's sign-in page, returning to `url` afterwards.
    pub fn login_url(&self, url: &str) -> String {
        let rd: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
        format!("{}/gate/login?rd={rd}", self.portal_url)
    }

    /// Whether the portal's session cookie reaches host `name`: on
    /// `GATE_COOKIE_DOMAIN`, or the portal's own host when it is host-only.
    fn portal_cookie_reaches(&self, name: &str) -> bool {
        match &self.cookie_domain {
            Some(domain) => is_within(name, domain),
            None => name == self.portal_host,
        }
    }

    /// Where a signed-out browser goes to sign in for `original`: the portal, when
    /// its cookie reaches the host; otherwise the host's own handoff, which gives
    /// the host a session of its own once the portal has signed the browser in.
    pub fn sign_in_url(&self, original: &OriginalRequest) -> String {
        let url = original.url();
        if self.portal_cookie_reaches(&original.host.name) {
            return self.login_url(&url);
        }
        handoff::start_url(&url).unwrap_or_else(|| self.login_url(&url))
    }

    /// Whether a sign-in reaches the host of `origin` only by the handoff.
    pub fn needs_handoff(&self, origin: &str) -> bool {
        handoff::host_and_port(origin).is_some_and(|(name, _)| !self.portal_cookie_reaches(&name))
    }

    /// The codes that carry portal sign-ins to other hosts.
    pub fn handoffs(&self) -> &handoff::Handoffs {
        &self.handoffs
    }

    /// `rd`, when it asks the portal to hand its sign-in to an app host (and it,
    /// and the URL inside it, pass the `rd` rules).
    pub fn handoff_return(&self, rd: &str) -> Option<handoff::HandoffReturn> {
        let rd = self.safe_return(rd)?;
        handoff::HandoffReturn::parse(&rd, |inner| self.safe_return(inner))
    }

    /// Where a sign-in may return to, if `rd` is safe (see [`redirect`]).
    pub fn safe_return(&self, rd: &str) -> Option<String> {
        redirect::safe_return(rd, &self.hosts, !self.portal_url.starts_with("https://"))
    }

    /// The decision on a request to a protected host (`entry`, from
    /// [`GateService::entry_for`]). `meta` is asked for only when something is
    /// audited (a denial, an evaluation that failed): an allowed request, the
    /// common case, gathers nothing for the audit log.
    pub async fn decide(
        &self,
        entry: usize,
        request: &OriginalRequest,
        asker: Asker<'_>,
        client: Option<IpAddr>,
        meta: impl Fn() -> RequestMeta,
    ) -> Result<Verdict, GateError> {
        let now = self.clock.now();
        let user = match asker {
            Asker::SignedIn(user, method) => Some((user, method)),
            Asker::SignedOut => None,
        };
        let subject = user.map_or_else(Subject::anonymous, |(user, method)| {
            Subject::signed_in_with(user, method)
        });
        let user = user.map(|(user, _)| user);
        let access = AccessRequest {
            subject,
            action: request.method.to_ascii_lowercase(),
            resource: request.resource(),
            context: Context {
                ip: client,
                method: Some(request.method.clone()),
                path: Some(request.path.clone()),
                now,
            },
        };
        let decision = self.policies.decide(&access);
        self.abac.decided(AbacResult::from(&decision.reason));
        if let Reason::Error { .. } = decision.reason {
            self.metrics.decided(Some(entry), GateResult::Error);
            self.policies
                .audit_evaluation_failure(&access, &decision, &meta())
                .await;
            return Err(GateError::Evaluation);
        }
        match (decision.allowed, user) {
            (true, user) => {
                let identity = match user {
                    Some(user) => {
                        Some(self.identity(user, request, now).inspect_err(|_| {
                            self.metrics.decided(Some(entry), GateResult::Error)
                        })?)
                    }
                    None => None,
                };
                self.stats.count(entry, Outcome::Allowed, now);
                self.metrics.decided(Some(entry), GateResult::Allowed);
                Ok(Verdict::Allowed(identity))
            }
            (false, None) => {
                // Counted, not audited: a crawler must not flood the audit log.
                self.stats.count(entry, Outcome::Redirected, now);
                self.metrics.decided(Some(entry), GateResult::SignInFirst);
                Ok(Verdict::SignInFirst)
            }
            (false, Some(user)) => {
                self.stats.count(entry, Outcome::Denied, now);
                self.metrics.decided(Some(entry), GateResult::Denied);
                self.audit_denial(user, request, &decision.reason, &meta())
                    .await;
                Ok(Verdict::Denied)
            }
        }
    }

    fn identity(
        &self,
        user: &User,
        request: &OriginalRequest,
        now: i64,
    ) -> Result<Identity, AssertionError> {
        let mut headers = vec![
            ("Remote-User".to_owned(), user.id.to_string()),
            ("Remote-Email".to_owned(), user.email.to_string()),
            ("Remote-Role".to_owned(), user.role.as_str().to_owned()),
        ];
        let name = match user.attributes.get("name") {
            Some(Value::String(name)) => name.clone(),
            _ => String::new(),
        };
        headers.push(("Remote-Name".to_owned(), name));
        let mut forwarded = Map::new();
        for name in self.forward_attributes.iter() {
            let text = match user.attributes.get(name) {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            if let Some(value) = user.attributes.get(name) {
                forwarded.insert(name.clone(), value.clone());
            }
            headers.push((format!("Remote-Attr-{name}"), text));
        }
        // A header value cannot carry control characters; such a value is sent
        // empty rather than mangled (the assertion still has it, escaped).
        for (_, value) in &mut headers {
            if value.chars().any(char::is_control) {
                value.clear();
            }
        }
        let assertion = self.signer.sign(
            AssertionClaims {
                iss: String::new(),
                aud: request.host.name.clone(),
                sub: user.id.to_string(),
                email: user.email.to_string(),
                role: user.role.as_str().to_owned(),
                attributes: forwarded,
                method: request.method.clone(),
                path: request.path.clone(),
                iat: 0,
                exp: 0,
            },
            now,
        )?;
        Ok(Identity { headers, assertion })
    }

    async fn audit_denial(
        &self,
        user: &User,
        request: &OriginalRequest,
        reason: &Reason,
        meta: &RequestMeta,
    ) {
        let repeat = format!(
            "{}\0{}\0{}\0{}",
            user.id, request.host.name, request.method, request.path
        );
        let now = self.clock.now();
        if self
            .audited_denials
            .get(&repeat)
            .is_some_and(|at| (0..DENIAL_AUDIT_SECONDS).contains(&(now - at)))
        {
            return;
        }
        self.audited_denials.insert(repeat, now);
        let mut event = AuditEvent::of_request("gate.denied", AuditOutcome::Denied, meta)
            .with_actor(user.id.to_string())
            .with_target(format!("{}{}", request.host.name, request.path))
            .with_detail("host", request.host.name.as_str())
            .with_detail("path", request.path.as_str())
            .with_detail("method", request.method.as_str());
        if let Reason::DeniedBy { policies } = reason {
            let ids: Vec<Value> = policies
                .iter()
                .map(|p| Value::from(p.to_string()))
                .collect();
            event = event.with_detail("policy", Value::Array(ids));
        } else {
            event = event.with_detail("policy", "default deny");
        }
        if let Err(error) = self.audit.record(event).await {
            tracing::error!(%error, "could not audit a gate denial");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_make_the_original_request() {
        let r = OriginalRequest::from_forwarded("get", "HTTPS", "App.Example.com:8443", "/a/b?x=1")
            .expect("parsed");
        assert_eq!(r.method, "GET");
        assert_eq!(r.host.name, "app.example.com");
        assert_eq!(r.host.port, Some(8443));
        assert_eq!(r.path, "/a/b");
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.url(), "https://app.example.com:8443/a/b?x=1");
        let resource = r.resource();
        assert_eq!(resource.id.as_deref(), Some("app.example.com/a/b"));
        assert_eq!(resource.attributes["port"], 8443);
        for (method, proto, host, uri) in [
            ("", "https", "a.example.com", "/"),
            ("GET", "ftp", "a.example.com", "/"),
            ("GET", "https", "a@example.com", "/"),
            ("GET", "https", "a.example.com", "relative"),
            ("G ET", "https", "a.example.com", "/"),
        ] {
            assert!(OriginalRequest::from_forwarded(method, proto, host, uri).is_err());
        }
    }

    #[test]
    fn paths_are_judged_as_apps_read_them_or_refused() {
        let judged = |uri: &str| path_and_query(uri, "X-Forwarded-Uri").map(|(path, _)| path);
        for (uri, path) in [
            ("/", "/"),
            ("/docs/", "/docs/"),
            ("/%73ecret/x", "/secret/x"),
            ("/a%7Eb%2d%5F%2E", "/a~b-_."),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a;v=1/b", "/a;v=1/b"),
            ("/..a/b.", "/..a/b."),
        ] {
            assert_eq!(judged(uri).as_deref(), Ok(path), "{uri}");
        }
        assert_eq!(
            path_and_query("/a?b=%2e%2e/../c", "f"),
            Ok(("/a".to_owned(), Some("b=%2e%2e/../c".to_owned())))
        );
        for uri in [
            "/x/../secret",
            "/..",
            "/./secret",
            "/secret/.",
            "/x/%2e%2e/secret",
            "/x/%2E./secret",
            "/x/..;/secret",
            "/x/.;a/secret",
            "//secret",
            "/a//b",
            "/x%2fsecret",
            "/x%2Fsecret",
            "/x%5csecret",
            "/x\\secret",
            "/x%00",
            "/x%zz",
            "/x%2",
            "/x%+1",
            "/public#/../secret",
            "relative",
        ] {
            assert!(judged(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn an_original_url_makes_the_original_request() {
        let r = OriginalRequest::from_original_url("POST", "http://app.example.com/?x=1")
            .expect("parsed");
        assert_eq!((r.path.as_str(), r.query.as_deref()), ("/", Some("x=1")));
        assert_eq!(r.resource().attributes["port"], 80);
        // The scheme's own port is left out of the URL sent back to.
        let r = OriginalRequest::from_original_url("GET", "https://app.example.com:443/x")
            .expect("parsed");
        assert_eq!(
            (r.url().as_str(), r.port()),
            ("https://app.example.com/x", 443)
        );
        for url in [
            "app.example.com/",
            "javascript://app.example.com/",
            "http://user@app.example.com/",
            "http:///x",
            // nginx passes `Host: app:8080?` through: the path must not hide.
            "http://app.example.com:8080?/secret",
            "http://app.example.com?/secret",
            "http://app.example.com#/secret",
        ] {
            assert!(
                OriginalRequest::from_original_url("GET", url).is_err(),
                "{url}"
            );
        }
    }
}
