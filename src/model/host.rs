//! The hosts the gate protects (`GATE_HOSTS`): an exact name (`app.example.com`) or
//! every name under a domain (`*.example.com`, which is not `example.com` itself),
//! optionally on one port only (`app.example.com:8443`). Names are compared as the
//! gate sees them — lower-cased, with no trailing dot — so `APP.example.com.` is
//! `app.example.com`, and nothing but letters, digits, `-` and `.` is ever a name.

use std::fmt;

/// One `GATE_HOSTS` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// The exact name, or the domain after `*.`.
    name: String,
    wildcard: bool,
    port: Option<u16>,
}

/// A host as a request names it: its name, lower-cased, and its port when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    pub name: String,
    pub port: Option<u16>,
}

/// Whether `name` is a DNS host name (LDH labels) or an IPv4 address; lower case
/// expected.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `host[:port]` → its parts, the name normalised. `None` for anything that is not
/// a plain host name (userinfo, brackets, spaces, an empty or zero port …).
pub fn parse_host_port(text: &str) -> Option<RequestHost> {
    let text = text.trim();
    let (name, port) = match text.rsplit_once(':') {
        Some((name, port)) => {
            let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
            (name, Some(port))
        }
        None => (text, None),
    };
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
    is_host_name(&name).then_some(RequestHost { name, port })
}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || {
            format!(
                "`{text}` is not a host name, `*.domain` or either with `:port` (e.g. app.example.com, *.example.com:8443)"
            )
        };
        let (wildcard, rest) = match text.trim().strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let host = parse_host_port(rest).ok_or_else(invalid)?;
        if wildcard && !host.name.contains('.') && host.name != "localhost" {
            return Err(format!(
                "`{text}` would cover a whole top-level domain; name the domain (e.g. *.example.com)"
            ));
        }
        Ok(Self {
            name: host.name,
            wildcard,
            port: host.port,
        })
    }

    /// Whether a request to `host` is under this entry: the name matches, and the
    /// port too when the entry names one.
    pub fn matches(&self, host: &RequestHost) -> bool {
        let port_ok = self.port.is_none() || self.port == host.port;
        port_ok && self.covers_name(&host.name)
    }

    /// Whether the name alone matches (any port).
    pub fn covers_name(&self, name: &str) -> bool {
        if self.wildcard {
            name.strip_suffix(self.name.as_str())
                .and_then(|head| head.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty())
        } else {
            name == self.name
        }
    }

    /// Whether a cookie for `domain` reaches every host this entry covers.
    pub fn is_covered_by_cookie_domain(&self, domain: &str) -> bool {
        is_within(&self.name, domain)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The port a URL of `scheme` means when it names none.
pub fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

/// Whether host `name` is `domain` or a name under it: what a cookie scoped to
/// `domain` reaches.
pub fn is_within(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .is_some_and(|head| head.is_empty() || head.ends_with('.'))
}

/// Whether any entry of `patterns` covers `host`.
pub fn is_protected(patterns: &[HostPattern], host: &RequestHost) -> bool {
    patterns.iter().any(|p| p.matches(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_takes_in_itself_and_the_names_under_it_only() {
        assert!(is_within("example.com", "example.com"));
        assert!(is_within("a.b.example.com", "example.com"));
        assert!(!is_within("badexample.com", "example.com"));
        assert!(!is_within("example.com.evil", "example.com"));
        assert_eq!((default_port("HTTPS"), default_port("http")), (443, 80));
    }

    fn host(text: &str) -> RequestHost {
        parse_host_port(text).expect("host")
    }

    #[test]
    fn exact_names_match_on_any_port_unless_one_is_named() {
        let exact = HostPattern::parse("App.Example.com").expect("pattern");
        assert!(exact.matches(&host("app.example.com")));
        assert!(exact.matches(&host("APP.example.com.:8443")));
        assert!(!exact.matches(&host("app.example.com.evil.org")));
        assert!(!exact.matches(&host("evilapp.example.com")));
        let on_port = HostPattern::parse("app.example.com:8443").expect("pattern");
        assert!(on_port.matches(&host("app.example.com:8443")));
        assert!(!on_port.matches(&host("app.example.com")));
        assert!(!on_port.matches(&host("app.example.com:443")));
    }

    #[test]
    fn wildcards_cover_subdomains_not_the_domain_or_lookalikes() {
        let wild = HostPattern::parse("*.example.com").expect("pattern");
        assert!(wild.matches(&host("a.example.com")));
        assert!(wild.matches(&host("a.b.example.com:80")));
        assert!(!wild.matches(&host("example.com")));
        assert!(!wild.matches(&host("badexample.com")));
        assert!(!wild.matches(&host("example.com.evil.org")));
        assert!(HostPattern::parse("*.localhost").is_ok());
        assert!(HostPattern::parse("*.com").is_err());
    }

    #[test]
    fn junk_is_no_host() {
        for bad in [
            "",
            "user@app.example.com",
            "app example.com",
            "[::1]",
            "app.example.com:0",
            "app.example.com:99999",
            "-app.example.com",
            "app..example.com",
            "app.example.com/path",
            "äpp.example.com",
        ] {
            assert!(parse_host_port(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cookie_domains_must_cover_the_hosts() {
        let wild = HostPattern::parse("*.example.com").expect("pattern");
        assert!(wild.is_covered_by_cookie_domain("example.com"));
        assert!(!wild.is_covered_by_cookie_domain("other.com"));
        let exact = HostPattern::parse("app.example.com").expect("pattern");
        assert!(exact.is_covered_by_cookie_domain("example.com"));
        assert!(exact.is_covered_by_cookie_domain("app.example.com"));
        assert!(!exact.is_covered_by_cookie_domain("ample.com"));
    }
}
