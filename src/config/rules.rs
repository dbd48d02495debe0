//! Pure validation rules for individual values. Every error string here is safe to
//! print: it describes the problem, never the value, because values may be secrets.

use std::collections::BTreeSet;

use ipnet::IpNet;
use secrecy::SecretString;

/// Minimum length of an HMAC signing secret (256 bits of text).
pub const MIN_SECRET_LEN: usize = 32;
/// Fewer distinct characters than this means a pattern, not a random key.
pub const MIN_DISTINCT_CHARS: usize = 10;

/// Fragments found in sample configurations and tutorials. A key containing one was
/// copied, not generated.
const PLACEHOLDER_FRAGMENTS: &[&str] = &[
    "change-in-production",
    "change_in_production",
    "changeinproduction",
    "changeme",
    "change-me",
    "change_me",
    "secret-key",
    "secret_key",
    "secretkey",
    "example",
    "placeholder",
    "your-secret",
    "your_secret",
    "replace-me",
    "replace_me",
    "dummy",
    "insecure",
    "not-a-secret",
];

/// Why a signing secret is refused; `None` when it is acceptable.
pub fn weak_secret_reason(value: &str) -> Option<String> {
    let len = value.chars().count();
    if len < MIN_SECRET_LEN {
        return Some(format!(
            "is too short ({len} characters, at least {MIN_SECRET_LEN} required)"
        ));
    }
    let lower = value.to_ascii_lowercase();
    if PLACEHOLDER_FRAGMENTS.iter().any(|p| lower.contains(p)) {
        return Some("is a known placeholder value, not a generated secret".to_owned());
    }
    let distinct = value.chars().collect::<BTreeSet<_>>().len();
    if distinct < MIN_DISTINCT_CHARS {
        return Some(format!(
            "has too little entropy ({distinct} distinct characters, at least {MIN_DISTINCT_CHARS} required)"
        ));
    }
    None
}

/// Splits a comma list, trimming items; an empty item is an error.
pub fn split_list(value: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err("contains an empty entry; remove the stray comma".to_owned());
    }
    Ok(items)
}

/// A list of Fernet keys: first encrypts, all decrypt.
pub fn fernet_keys(value: &str) -> Result<Vec<SecretString>, String> {
    let items = split_list(value)?;
    let mut keys = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if fernet::Fernet::new(item).is_none() {
            let which = if items.len() == 1 {
                "is".to_owned()
            } else {
                format!("entry {} is", index + 1)
            };
            return Err(format!(
                "{which} not a valid Fernet key (32 bytes, url-safe base64); generate one with `portcullis keygen`"
            ));
        }
        keys.push(SecretString::from(*item));
    }
    Ok(keys)
}

/// A browser origin exactly as browsers send it: `scheme://host[:port]`, lower-cased.
pub fn origin(value: &str) -> Result<String, String> {
    if value == "*" {
        return Err("`*` would let any website call the API; list exact origins".to_owned());
    }
    if value.eq_ignore_ascii_case("null") {
        return Err(
            "`null` is sent by sandboxed frames and local files and cannot be trusted".to_owned(),
        );
    }
    let invalid = || {
        format!(
            "`{value}` is not an origin of the form scheme://host[:port] (no path, no trailing slash)"
        )
    };
    let lower = value.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(invalid)?;
    if scheme != "http" && scheme != "https" {
        return Err(invalid());
    }
    let (host, port) = split_host_port(rest).ok_or_else(invalid)?;
    if !valid_host(host) {
        return Err(invalid());
    }
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
    {
        return Err(invalid());
    }
    Ok(lower)
}

fn split_host_port(rest: &str) -> Option<(&str, Option<&str>)> {
    if let Some(after_bracket) = rest.strip_prefix('[') {
        let (inside, tail) = after_bracket.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let host = &rest[..inside.len() + 2];
        return match tail {
            "" => Some((host, None)),
            t => t.strip_prefix(':').map(|p| (host, Some(p))),
        };
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((rest, None)),
    }
}

fn valid_host(host: &str) -> bool {
    // IPv6 in brackets is checked while splitting; names by the gate's one rule.
    host.starts_with('[') || crate::model::host::is_host_name(&host.to_ascii_lowercase())
}

/// A rate: `calls/seconds`, e.g. `5/60`.
pub fn quota(value: &str) -> Result<(u32, u32), String> {
    let invalid = || format!("`{value}` is not a rate of the form calls/seconds, such as 5/60");
    let (calls, seconds) = value.split_once('/').ok_or_else(invalid)?;
    let calls: u32 = calls.trim().parse().map_err(|_| invalid())?;
    let seconds: u32 = seconds.trim().parse().map_err(|_| invalid())?;
    if !(1..=1_000_000).contains(&calls) || !(1..=86_400).contains(&seconds) {
        return Err(format!(
            "`{value}` is out of range: 1–1000000 calls per 1–86400 seconds"
        ));
    }
    Ok((calls, seconds))
}

/// Softlock steps: `failures:seconds` pairs, failures strictly ascending.
pub fn softlock_steps(value: &str) -> Result<Vec<(u32, u32)>, String> {
    let invalid =
        |item: &str| format!("`{item}` is not a step of the form failures:seconds, such as 5:60");
    let mut steps: Vec<(u32, u32)> = Vec::new();
    for item in split_list(value)? {
        let (failures, seconds) = item.split_once(':').ok_or_else(|| invalid(item))?;
        let failures: u32 = failures.trim().parse().map_err(|_| invalid(item))?;
        let seconds: u32 = seconds.trim().parse().map_err(|_| invalid(item))?;
        if failures == 0 || seconds == 0 || seconds > 31 * 86_400 {
            return Err(format!(
                "`{item}` needs at least 1 failure and 1 s to 31 days of lock"
            ));
        }
        if steps
            .last()
            .is_some_and(|&(previous, _)| previous >= failures)
        {
            return Err("steps must be in ascending order of failures".to_owned());
        }
        steps.push((failures, seconds));
    }
    Ok(steps)
}

/// A list of IP addresses or CIDR networks; a bare address is its own /32 or /128.
pub fn networks(value: &str) -> Result<Vec<IpNet>, String> {
    split_list(value)?
        .into_iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| format!("`{item}` is not an IP address or CIDR network"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_need_length_entropy_and_no_placeholder() {
        assert!(weak_secret_reason("short").is_some());
        assert!(
            weak_secret_reason("your-secret-key-change-in-production-please")
                .is_some_and(|r| r.contains("placeholder"))
        );
        assert!(
            weak_secret_reason("abababababababababababababababababab")
                .is_some_and(|r| r.contains("entropy"))
        );
        assert!(weak_secret_reason("q8Zr2VxN4kLm7Tc1Hw9Jd3Fy6Bg5Ps0A").is_none());
        // The entropy bar, at its edge: 9 distinct characters fail, 10 pass.
        assert!(weak_secret_reason(&"abcdefghi".repeat(4)).is_some_and(|r| r.contains("entropy")));
        assert!(weak_secret_reason(&"abcdefghij".repeat(4)).is_none());
        // Length at its edge: 31 fail, 32 pass.
        assert!(weak_secret_reason(&"q8Zr2VxN4kLm7Tc1Hw9Jd3Fy6Bg5Ps0A"[..31]).is_some());
    }

    #[test]
    fn fernet_lists() {
        let key = fernet::Fernet::generate_key();
        assert_eq!(fernet_keys(&key).map(|k| k.len()), Ok(1));
        let two = format!("{key}, {}", fernet::Fernet::generate_key());
        assert_eq!(fernet_keys(&two).map(|k| k.len()), Ok(2));
        assert!(fernet_keys("not-a-key").is_err());
        assert!(fernet_keys(&format!("{key},")).is_err());
        let err = fernet_keys(&format!("{key},bad")).err().unwrap_or_default();
        assert!(err.contains("entry 2"));
        assert!(!err.contains(&key));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://App.Example.com").as_deref(),
            Ok("https://app.example.com")
        );
        assert!(origin("http://localhost:3000").is_ok());
        assert!(origin("http://[::1]:8080").is_ok());
        assert!(origin("http://127.0.0.1").is_ok());
        for bad in [
            "*",
            "null",
            "NULL",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://example.com",
            "example.com",
            "https://",
            "https://exa mple.com",
            "https://user@example.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://[zz::1]",
        ] {
            assert!(origin(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn quotas_and_steps() {
        assert_eq!(quota("5/60"), Ok((5, 60)));
        assert!(quota("0/60").is_err() && quota("5").is_err() && quota("5/0").is_err());
        assert_eq!(softlock_steps("5:60,10:300"), Ok(vec![(5, 60), (10, 300)]));
        assert!(softlock_steps("10:60,5:300").is_err());
        assert!(softlock_steps("5:0").is_err());
    }

    #[test]
    fn network_lists() {
        let nets = networks("10.0.0.0/8, 192.168.1.7, ::1").unwrap_or_default();
        assert_eq!(nets.len(), 3);
        assert_eq!(nets[1].prefix_len(), 32);
        assert!(networks("10.0.0.0/33").is_err());
        assert!(networks("proxy.local").is_err());
    }
}
