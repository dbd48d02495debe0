//! The reverse-proxy configurations the gate is documented, demonstrated and tested
//! with — one renderer, so what `portcullis gate-config` prints, what the demo writes
//! and what the tests run behind real nginx, Caddy and Traefik are the same text.
//!
//! What every configuration guarantees, because the gate's answers are only as good
//! as the proxy that acts on them:
//!
//! - **The identity headers are the gate's, never the client's**: each one is set
//!   from the gate's answer (nginx drops a header set to an empty value and
//!   ignores names with `_` or `.`; Caddy deletes every `Remote` and `Portcullis`
//!   spelling with `-`, `_` or `.` before asking; Traefik deletes every header its
//!   `authResponseHeadersRegex` matches, then copies the matching ones of the
//!   gate's answer).
//! - **The URL the gate judges is the one the proxy routes**: nginx sends `$host`
//!   (the server it chose, from an absolute-form request line too, never a raw
//!   `Host` header) and `$server_port`, with `$request_uri`; Traefik
//!   (`trustForwardHeader: false`) writes the `X-Forwarded-*` it sends from the
//!   request it routes, never from a client's.
//! - **The gate's doors answer the proxy, not clients**: the portal's site proxies
//!   everything to Portcullis except `/api/v1/gate/`, so nobody can ask the gate
//!   about a URL of their choosing through the trusted proxy.
//! - **The handoff is Portcullis's**: every app host sends its one path
//!   `/.portcullis/handoff` (exactly) to Portcullis, never to the app, so the
//!   one-time code a portal sign-in is carried over with never reaches an app (the
//!   gate refuses to judge any `/.portcullis/` path, should a proxy ask).
//! - **Portcullis's session cookie stays out of the apps**: it is removed from the
//!   request the app receives, so one compromised app cannot sign in as its users
//!   elsewhere (nginx and Caddy edit the `Cookie` header; Traefik, which cannot,
//!   sets it from the gate's answer, which holds the request's cookies without
//!   Portcullis's).

use std::fmt::Write as _;

use crate::config::GateSettings;
use crate::gate::handoff::PATH as HANDOFF;
use crate::gate::identity_headers;

/// The gate's session cookie, as the proxies strip it.
const SESSION_COOKIE: &str = "portcullis_gate";
/// nginx's name for Portcullis, whose connections it keeps open (the gate is asked
/// once per request: a new connection each time would double its cost).
const NGINX_UPSTREAM: &str = "portcullis_gate";
/// The Traefik entry point the dynamic configuration's routers name: the static
/// configuration defines it.
pub const TRAEFIK_ENTRY_POINT: &str = "portcullis-gate";
const NGINX_KEEPALIVE: &str =
    "        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n";

/// What a configuration is rendered from.
#[derive(Debug, Clone)]
pub struct ProxyPlan {
    /// Portcullis as the proxy reaches it, `host:port`.
    pub portcullis: String,
    /// The protected app, `host:port`.
    pub upstream: String,
    /// Where the proxy listens: an address (`127.0.0.1`) or `None` for every one.
    pub listen_address: Option<String>,
    pub listen_port: u16,
    /// The proxy terminates TLS (https sites).
    pub tls: bool,
    /// The portal's own host, or `None` when the portal lives on the app hosts
    /// under `/gate/` (the demo).
    pub portal_host: Option<String>,
    /// The protected hosts, as server names: `app.example.com`, `*.example.com`.
    pub app_hosts: Vec<String>,
    /// `GATE_FORWARD_ATTRIBUTES`.
    pub forward_attributes: Vec<String>,
}

/// The host part of `scheme://host[:port]`.
fn host_of(origin: &str) -> (&str, Option<u16>) {
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().ok()),
        None => (authority, None),
    }
}

/// The nginx variable that carries a header of the gate's answer.
fn nginx_variable(header_variable: &str) -> String {
    if header_variable.starts_with("portcullis_") {
        header_variable.to_owned()
    } else {
        format!("portcullis_{header_variable}")
    }
}

impl ProxyPlan {
    /// The plan for a configured gate: its portal, hosts and attributes, with the
    /// proxy on the portal's scheme and port.
    pub fn for_gate(gate: &GateSettings, portcullis: &str, upstream: &str) -> Self {
        let tls = gate.portal_is_https();
        let (portal, port) = host_of(&gate.portal_url);
        let mut app_hosts: Vec<String> = Vec::new();
        for host in &gate.hosts {
            let text = host.to_string();
            let name = text.rsplit_once(':').map_or(text.as_str(), |(n, _)| n);
            if !app_hosts.iter().any(|h| h == name) {
                app_hosts.push(name.to_owned());
            }
        }
        // A portal on a host of its own gets a site of its own (an exact name wins
        // over a wildcard that covers it in both proxies); a portal on an app's
        // exact host is served there, under /gate/.
        let portal_is_an_app = app_hosts.iter().any(|h| h == portal);
        Self {
            portcullis: portcullis.to_owned(),
            upstream: upstream.to_owned(),
            listen_address: None,
            listen_port: port.unwrap_or(if tls { 443 } else { 80 }),
            tls,
            portal_host: (!portal_is_an_app).then(|| portal.to_owned()),
            app_hosts,
            forward_attributes: gate.forward_attributes.clone(),
        }
    }

    fn headers(&self) -> Vec<String> {
        identity_headers(&self.forward_attributes)
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    fn nginx_listen(&self) -> String {
        let address = self
            .listen_address
            .as_ref()
            .map(|a| format!("{a}:"))
            .unwrap_or_default();
        let ssl = if self.tls { " ssl" } else { "" };
        let mut text = format!("    listen {address}{}{ssl};\n", self.listen_port);
        if self.tls {
            text.push_str(
                "    # Your certificate for these names:\n    ssl_certificate     /etc/ssl/certs/portcullis-gate.pem;\n    ssl_certificate_key /etc/ssl/private/portcullis-gate.key;\n",
            );
        }
        text
    }

    /// Locations that hand a request to Portcullis itself: as the client wrote
    /// it, or at `path` (nginx then sends its own normalised path, never the raw
    /// one, which could name another of Portcullis's routes).
    fn nginx_to_portcullis(&self, path: &str) -> String {
        format!(
            "        proxy_pass http://{NGINX_UPSTREAM}{path};\n{NGINX_KEEPALIVE}        proxy_set_header Host $http_host;\n        proxy_set_header X-Forwarded-For $remote_addr;\n        proxy_set_header X-Forwarded-Proto $scheme;\n"
        )
    }

    /// Server blocks (and the cookie map) for nginx's `http { }` context, for
    /// `auth_request`.
    pub fn nginx(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Portcullis gate for nginx (auth_request): include inside http {{ }}.\n\
             # The app receives the request without Portcullis's session cookie.\n\
             map $http_cookie $portcullis_app_cookie {{\n    default $http_cookie;\n    \
             \"~^(?<portcullis_before>(?:.*;)?)\\s*{SESSION_COOKIE}=[^;]*;?\\s*(?<portcullis_after>.*)$\" \
             \"$portcullis_before$portcullis_after\";\n}}\n\n\
             upstream {NGINX_UPSTREAM} {{\n    server {};\n    keepalive 16;\n}}\n",
            self.portcullis
        );
        if let Some(portal) = &self.portal_host {
            let _ = writeln!(
                out,
                "# The portal: Portcullis itself, except the gate's doors, which answer the\n\
                 # proxy's own subrequests and never a client.\n\
                 server {{\n{}    server_name {portal};\n    location /api/v1/gate/ {{\n        return 404;\n    }}\n    location / {{\n{}    }}\n}}\n",
                self.nginx_listen(),
                self.nginx_to_portcullis("")
            );
        }
        let _ = write!(
            out,
            "# Every app behind the gate.\nserver {{\n{}    server_name {};\n",
            self.nginx_listen(),
            self.app_hosts.join(" ")
        );
        if self.portal_host.is_none() {
            let _ = write!(
                out,
                "    # The portal lives on the app's host: its pages, stylesheet and keys.\n    location /gate/ {{\n{0}    }}\n    location = /static/admin.css {{\n        proxy_pass http://{NGINX_UPSTREAM};\n{NGINX_KEEPALIVE}    }}\n    location = /.well-known/jwks.json {{\n        proxy_pass http://{NGINX_UPSTREAM};\n{NGINX_KEEPALIVE}    }}\n",
                self.nginx_to_portcullis("")
            );
        }
        let _ = write!(
            out,
            "    # The handoff of a portal sign-in to this host: Portcullis's, never the app's.\n    location = {HANDOFF} {{\n{}    }}\n",
            self.nginx_to_portcullis(HANDOFF)
        );
        let _ = write!(
            out,
            "    location = /__portcullis {{\n        internal;\n        proxy_pass http://{NGINX_UPSTREAM}/api/v1/gate/auth-request;\n{NGINX_KEEPALIVE}        proxy_pass_request_body off;\n        proxy_set_header Content-Length \"\";\n        # $host: the server nginx chose, never a raw Host header.\n        proxy_set_header X-Original-URL $scheme://$host:$server_port$request_uri;\n        proxy_set_header X-Original-Method $request_method;\n        proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n    location @portcullis_sign_in {{\n        if ($portcullis_login = \"\") {{\n            return 401;\n        }}\n        return 302 $portcullis_login;\n    }}\n    location / {{\n        auth_request /__portcullis;\n        auth_request_set $portcullis_login $upstream_http_location;\n"
        );
        let variables: Vec<(String, String)> = self
            .headers()
            .into_iter()
            .map(|header| {
                let variable = header.to_ascii_lowercase().replace('-', "_");
                (header, variable)
            })
            .collect();
        for (_, variable) in &variables {
            let _ = writeln!(
                out,
                "        auth_request_set ${} $upstream_http_{variable};",
                nginx_variable(variable)
            );
        }
        out.push_str(
            "        error_page 401 = @portcullis_sign_in;\n        # The gate's answer, whatever the client sent (empty: the header is dropped).\n",
        );
        for (header, variable) in &variables {
            let _ = writeln!(
                out,
                "        proxy_set_header {header} ${};",
                nginx_variable(variable)
            );
        }
        let _ = write!(
            out,
            "        proxy_set_header Cookie $portcullis_app_cookie;\n        proxy_pass http://{};\n    }}\n}}\n",
            self.upstream
        );
        out
    }

    fn caddy_site(&self, host: &str) -> String {
        if self.tls && self.listen_port == 443 {
            host.to_owned()
        } else {
            format!("{}://{host}:{}", self.scheme(), self.listen_port)
        }
    }

    fn caddy_bind(&self) -> String {
        self.listen_address
            .as_ref()
            .map(|a| format!("    bind {a}\n"))
            .unwrap_or_default()
    }

    /// Site blocks for a Caddyfile, for `forward_auth`.
    pub fn caddy(&self) -> String {
        let mut out = String::from("# Portcullis gate for Caddy (forward_auth).\n");
        if let Some(portal) = &self.portal_host {
            let _ = writeln!(
                out,
                "# The portal: Portcullis itself, except the gate's doors, which answer the\n\
                 # proxy's own requests and never a client.\n\
                 {} {{\n{}    route {{\n        respond /api/v1/gate/* 404\n        reverse_proxy {}\n    }}\n}}\n",
                self.caddy_site(portal),
                self.caddy_bind(),
                self.portcullis
            );
        }
        let sites: Vec<String> = self.app_hosts.iter().map(|h| self.caddy_site(h)).collect();
        let _ = write!(
            out,
            "# Every app behind the gate.\n{} {{\n{}",
            sites.join(", "),
            self.caddy_bind()
        );
        if self.portal_host.is_none() {
            let _ = write!(
                out,
                "    # The portal lives on the app's host: its pages, stylesheet and keys.\n    handle /gate/* {{\n        reverse_proxy {0}\n    }}\n    handle /static/admin.css {{\n        reverse_proxy {0}\n    }}\n    handle /.well-known/jwks.json {{\n        reverse_proxy {0}\n    }}\n",
                self.portcullis
            );
        }
        let _ = write!(
            out,
            "    # The handoff of a portal sign-in to this host: Portcullis's, never the app's.\n    handle {HANDOFF} {{\n        reverse_proxy {}\n    }}\n",
            self.portcullis
        );
        let _ = write!(
            out,
            "    handle {{\n        # In this order (a route keeps it): drop every spelling of the identity\n        # headers a client sent, ask the gate (its answer sets them), take\n        # Portcullis's session cookie out, then pass the request on.\n        route {{\n            request_header -Remote-*\n            request_header -Remote_*\n            request_header -Remote.*\n            request_header -Portcullis-*\n            request_header -Portcullis_*\n            request_header -Portcullis.*\n            forward_auth {} {{\n                uri /api/v1/gate/forward-auth\n                copy_headers {}\n            }}\n            request_header Cookie \"(^|; *){SESSION_COOKIE}=[^;]*(; *)?\" \"$1\"\n            reverse_proxy {}\n        }}\n    }}\n}}\n",
            self.portcullis,
            self.headers().join(" "),
            self.upstream
        );
        out
    }

    /// A Traefik rule matching the app hosts: `Host()` for exact names,
    /// `HostRegexp()` (Go syntax, Traefik v3) for `*.example.com`, which covers
    /// subdomains at any depth, as `GATE_HOSTS` does. Single-quoted in YAML (no
    /// escapes there); a host name holds no quote.
    fn traefik_app_rule(&self) -> String {
        let hosts: Vec<String> = self
            .app_hosts
            .iter()
            .map(|host| match host.strip_prefix("*.") {
                Some(domain) => format!("HostRegexp(`^.+\\.{}$`)", domain.replace('.', "\\.")),
                None => format!("Host(`{host}`)"),
            })
            .collect();
        let mut rule = if hosts.len() == 1 {
            hosts.join("")
        } else {
            format!("({})", hosts.join(" || "))
        };
        if let Some(portal) = &self.portal_host {
            // The portal's host is never an app (its gate doors would be reached
            // through the app's router otherwise).
            let _ = write!(rule, " && !Host(`{portal}`)");
        }
        rule
    }

    /// A router's entry point, and TLS where the plan has it.
    fn traefik_router_tail(&self) -> String {
        let mut text = format!("      entryPoints: [{TRAEFIK_ENTRY_POINT}]\n");
        if self.tls {
            text.push_str("      tls: {}\n");
        }
        text
    }

    /// A complete Traefik v3 dynamic configuration (YAML, for the file provider):
    /// routers for the portal and the apps, the `portcullis` `forwardAuth`
    /// middleware and the two services. The leading comment holds the static
    /// configuration it needs.
    pub fn traefik(&self) -> String {
        let address = self.listen_address.as_deref().unwrap_or("");
        let mut out = format!(
            "# Portcullis gate for Traefik v3 (forwardAuth): a dynamic configuration for the\n\
             # file provider. The static configuration (traefik.yml) it needs:\n\
             #\n\
             #   entryPoints:\n\
             #     {TRAEFIK_ENTRY_POINT}:\n\
             #       address: \"{address}:{port}\"\n\
             #   providers:\n\
             #     file:\n\
             #       filename: /etc/traefik/portcullis-gate.yml   # this file\n\
             #\n\
             # Leave forwardedHeaders.trustedIPs unset on that entry point: Traefik then\n\
             # replaces the X-Forwarded-* headers a client sends, and the gate judges the\n\
             # request Traefik routes. The app receives the request without Portcullis's\n\
             # session cookie: the gate answers the Cookie header the app gets.\n\
             http:\n  routers:\n",
            port = self.listen_port,
        );
        if let Some(portal) = &self.portal_host {
            let _ = write!(
                out,
                "    # The portal: Portcullis itself, except the gate's doors, which answer the\n\
                 \x20   # proxy's own requests and never a client (no router: 404).\n\
                 \x20   portcullis-portal:\n\
                 \x20     rule: 'Host(`{portal}`) && !PathPrefix(`/api/v1/gate/`)'\n\
                 \x20     priority: 20\n\
                 \x20     service: portcullis\n{}",
                self.traefik_router_tail()
            );
        }
        let apps = self.traefik_app_rule();
        if self.portal_host.is_none() {
            let _ = write!(
                out,
                "    # The portal lives on the app's host: its pages, stylesheet and keys.\n\
                 \x20   portcullis-portal:\n\
                 \x20     rule: '({apps}) && (PathPrefix(`/gate/`) || Path(`/static/admin.css`) || Path(`/.well-known/jwks.json`))'\n\
                 \x20     priority: 20\n\
                 \x20     service: portcullis\n{}",
                self.traefik_router_tail()
            );
        }
        let _ = write!(
            out,
            "    # The handoff of a portal sign-in to an app host: Portcullis's, never the app's.\n\
             \x20   portcullis-handoff:\n\
             \x20     rule: '({apps}) && Path(`{HANDOFF}`)'\n\
             \x20     priority: 30\n\
             \x20     service: portcullis\n{}",
            self.traefik_router_tail()
        );
        let _ = write!(
            out,
            "    # Every app behind the gate.\n\
             \x20   portcullis-apps:\n\
             \x20     rule: '{apps}'\n\
             \x20     priority: 10\n\
             \x20     middlewares: [portcullis]\n\
             \x20     service: portcullis-app\n{}\
             \x20 middlewares:\n\
             \x20   portcullis:\n\
             \x20     forwardAuth:\n\
             \x20       address: \"http://{portcullis}/api/v1/gate/forward-auth\"\n\
             \x20       trustForwardHeader: false\n\
             \x20       # Every request header that matches is removed, then set from the gate's\n\
             \x20       # answer: every spelling of the identity headers (Remote-User, Remote_User,\n\
             \x20       # Remote.User, ...), and the Cookie header (the request's cookies without\n\
             \x20       # Portcullis's; absent when none is left).\n\
             \x20       authResponseHeadersRegex: \"(?i)^((remote|portcullis)[^a-z0-9]|cookie$)\"\n\
             \x20       # The gate's answers are small; a bigger one is refused, never passed.\n\
             \x20       maxResponseBodySize: 65536\n\
             \x20 services:\n\
             \x20   portcullis:\n\
             \x20     loadBalancer:\n\
             \x20       servers:\n\
             \x20         - url: \"http://{portcullis}\"\n\
             \x20   portcullis-app:\n\
             \x20     loadBalancer:\n\
             \x20       servers:\n\
             \x20         - url: \"http://{upstream}\"\n",
            self.traefik_router_tail(),
            portcullis = self.portcullis,
            upstream = self.upstream,
        );
        if self.tls {
            out.push_str(
                "# Your certificate for these names:\ntls:\n  certificates:\n    - certFile: /etc/ssl/certs/portcullis-gate.pem\n      keyFile: /etc/ssl/private/portcullis-gate.key\n",
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(portal: Option<&str>) -> ProxyPlan {
        ProxyPlan {
            portcullis: "127.0.0.1:8080".to_owned(),
            upstream: "127.0.0.1:3000".to_owned(),
            listen_address: None,
            listen_port: 443,
            tls: true,
            portal_host: portal.map(str::to_owned),
            app_hosts: vec!["*.example.com".to_owned()],
            forward_attributes: vec!["department".to_owned()],
        }
    }

    #[test]
    fn nginx_sets_every_identity_header_from_the_gate_and_closes_the_doors() {
        let text = plan(Some("auth.example.com")).nginx();
        for header in identity_headers(&["department".to_owned()]) {
            let variable = header.to_ascii_lowercase().replace('-', "_");
            assert!(
                text.contains(&format!(
                    "proxy_set_header {header} ${};",
                    nginx_variable(&variable)
                )),
                "{header}"
            );
            assert!(
                text.contains(&format!("$upstream_http_{variable};")),
                "{header}"
            );
        }
        assert!(text.contains("X-Original-URL $scheme://$host:$server_port$request_uri"));
        assert!(!text.contains("$http_host$request_uri"));
        assert!(text.contains("location /api/v1/gate/ {\n        return 404;"));
        assert!(text.contains("proxy_set_header Cookie $portcullis_app_cookie;"));
        assert!(text.contains("ssl_certificate"));
        // The handoff, exactly, is Portcullis's (and asks no gate).
        let handoff = text
            .split("location = /.portcullis/handoff {\n")
            .nth(1)
            .and_then(|rest| rest.split("    }\n").next())
            .expect("the handoff's location");
        assert!(
            handoff.contains("proxy_pass http://portcullis_gate/.portcullis/handoff;"),
            "{handoff}"
        );
        assert!(!handoff.contains("auth_request"), "{handoff}");
    }

    #[test]
    fn caddy_strips_every_spelling_before_asking_and_the_cookie_after() {
        let text = plan(Some("auth.example.com")).caddy();
        let order = [
            "request_header -Remote-*",
            "request_header -Remote_*",
            "request_header -Remote.*",
            "request_header -Portcullis-*",
            "request_header -Portcullis_*",
            "request_header -Portcullis.*",
            "forward_auth 127.0.0.1:8080",
            "request_header Cookie",
            "reverse_proxy 127.0.0.1:3000",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|needle| text.find(needle).unwrap_or_else(|| panic!("{needle}")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(text.contains("respond /api/v1/gate/* 404"));
        assert!(text.contains(
            "    handle /.portcullis/handoff {\n        reverse_proxy 127.0.0.1:8080\n    }\n"
        ));
        assert!(text.contains("copy_headers Remote-User Remote-Email Remote-Role Remote-Name Remote-Attr-department Portcullis-Assertion"));
    }

    #[test]
    fn traefik_routes_portal_and_apps_and_sets_headers_and_cookie_from_the_gate() {
        let mut plan = plan(Some("auth.example.com"));
        plan.app_hosts.push("app.example.org".to_owned());
        let text = plan.traefik();
        assert!(text.contains(&format!(
            "#     {TRAEFIK_ENTRY_POINT}:\n#       address: \":443\""
        )));
        assert!(text.contains("#     file:\n#       filename: "));
        assert!(text.contains(
            "rule: 'Host(`auth.example.com`) && !PathPrefix(`/api/v1/gate/`)'\n      priority: 20\n      service: portcullis\n"
        ));
        assert!(text.contains(
            "rule: '(HostRegexp(`^.+\\.example\\.com$`) || Host(`app.example.org`)) && !Host(`auth.example.com`)'\n      priority: 10\n      middlewares: [portcullis]\n      service: portcullis-app\n"
        ));
        assert!(text.contains(
            "rule: '((HostRegexp(`^.+\\.example\\.com$`) || Host(`app.example.org`)) && !Host(`auth.example.com`)) && Path(`/.portcullis/handoff`)'\n      priority: 30\n      service: portcullis\n"
        ), "{text}");
        assert!(text.contains("address: \"http://127.0.0.1:8080/api/v1/gate/forward-auth\""));
        assert!(text.contains("trustForwardHeader: false"));
        assert!(
            text.contains(
                "authResponseHeadersRegex: \"(?i)^((remote|portcullis)[^a-z0-9]|cookie$)\""
            )
        );
        assert!(text.contains("- url: \"http://127.0.0.1:8080\""));
        assert!(text.contains("- url: \"http://127.0.0.1:3000\""));
        assert_eq!(
            text.matches(&format!(
                "entryPoints: [{TRAEFIK_ENTRY_POINT}]\n      tls: {{}}"
            ))
            .count(),
            3,
            "{text}"
        );
        assert!(text.contains("tls:\n  certificates:\n    - certFile: "));
    }

    #[test]
    fn a_portal_on_the_app_host_is_served_under_gate() {
        let mut demo = plan(None);
        demo.tls = false;
        demo.listen_port = 8088;
        demo.app_hosts = vec!["app.localhost".to_owned()];
        assert!(demo.caddy().contains("http://app.localhost:8088 {"));
        assert!(demo.caddy().contains("handle /gate/* {"));
        assert!(demo.nginx().contains("location /gate/ {"));
        assert!(!demo.nginx().contains("ssl"));
        let traefik = demo.traefik();
        assert!(traefik.contains("rule: '(Host(`app.localhost`)) && (PathPrefix(`/gate/`) || Path(`/static/admin.css`) || Path(`/.well-known/jwks.json`))'"));
        assert!(traefik.contains("rule: 'Host(`app.localhost`)'\n      priority: 10\n"));
        assert!(traefik.contains("address: \":8088\""));
        assert!(!traefik.contains("tls"));
    }
}
