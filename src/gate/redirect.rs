//! Where a sign-in may send the browser back to (`rd`). An open redirect on the
//! sign-in page is a phishing kit, so the rule is an allow-list, checked on the
//! parsed URL and on the raw text: an absolute `https` URL (or `http` when the
//! portal itself is `http`), a host `GATE_HOSTS` covers, no userinfo, and nothing
//! a browser might read differently from us — backslashes, control characters,
//! whitespace, or percent-signs before the path. Anything else lands on `/gate/`.

use url::Url;

use crate::model::host::{HostPattern, RequestHost, is_protected, parse_host_port};

/// The URL to return to, normalised, or `None` when `rd` is not safe.
pub fn safe_return(rd: &str, hosts: &[HostPattern], http_allowed: bool) -> Option<String> {
    // What browsers forgive and parsers disagree on is refused outright.
    if rd.is_empty()
        || rd.len() > 4096
        || rd
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let (scheme, rest) = rd.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !(scheme == "https" || (scheme == "http" && http_allowed)) {
        return None;
    }
    // The authority as written: no userinfo, no encoding, nothing but a host name.
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains(['@', '%']) {
        return None;
    }
    let host = parse_host_port(authority)?;
    let url = Url::parse(rd).ok()?;
    let same = url.scheme() == scheme
        && url.username().is_empty()
        && url.password().is_none()
        && url.host_str() == Some(host.name.as_str());
    let request_host = RequestHost {
        name: host.name,
        port: host.port,
    };
    (same && is_protected(hosts, &request_host)).then(|| url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<HostPattern> {
        [
            "app.example.com",
            "*.apps.example.com",
            "api.example.com:8443",
        ]
        .iter()
        .map(|h| HostPattern::parse(h).expect("pattern"))
        .collect()
    }

    #[test]
    fn gate_hosts_over_https_are_accepted() {
        for (rd, expected) in [
            ("https://app.example.com/", "https://app.example.com/"),
            (
                "https://app.example.com/a?b=c#d",
                "https://app.example.com/a?b=c#d",
            ),
            ("HTTPS://APP.example.com/x", "https://app.example.com/x"),
            (
                "https://wiki.apps.example.com/page",
                "https://wiki.apps.example.com/page",
            ),
            (
                "https://api.example.com:8443/v1",
                "https://api.example.com:8443/v1",
            ),
            (
                "https://app.example.com/%2F%2Fevil.com",
                "https://app.example.com/%2F%2Fevil.com",
            ),
        ] {
            assert_eq!(
                safe_return(rd, &hosts(), false).as_deref(),
                Some(expected),
                "{rd}"
            );
        }
        assert_eq!(
            safe_return("http://app.example.com/", &hosts(), true).as_deref(),
            Some("http://app.example.com/")
        );
    }

    #[test]
    fn open_redirect_variants_are_refused() {
        let refused = [
            "",
            "/",
            "/relative",
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https:\\\\evil.com",
            "https:/\\evil.com",
            "https:evil.com",
            "https:/evil.com",
            "https://evil.com/",
            "https://evil.com/https://app.example.com/",
            "https://app.example.com.evil.com/",
            "https://evilapp.example.com/",
            "https://app.example.com@evil.com/",
            "https://user:pass@app.example.com/",
            "https://evil.com#@app.example.com",
            "https://evil.com?@app.example.com",
            "https://evil.com\\@app.example.com",
            "https://app.example.com%2eevil.com/",
            "https://app%2eexample%2ecom/",
            "https%3A%2F%2Fevil.com",
            "https%253A%252F%252Fevil.com",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "javascript://app.example.com/%0Aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "ftp://app.example.com/",
            "http://app.example.com/",
            "https://app.example.com\t.evil.com/",
            "https://app.example.com\n/",
            " https://app.example.com/",
            "https://[::1]/",
            "https://127.0.0.1/",
            "https://api.example.com/",
            "https://api.example.com:443/",
            "https://apps.example.com/",
            "https://ａｐｐ.example.com/",
            "https://app.example.com:0/",
        ];
        for rd in refused {
            assert_eq!(safe_return(rd, &hosts(), false), None, "{rd:?}");
        }
        assert!(refused.len() >= 20);
    }
}
