//! Carrying a portal sign-in to an app host the portal's cookie cannot reach (no
//! `GATE_COOKIE_DOMAIN`, or apps under other domains than the portal's): the
//! handoff. Each such host gets a session cookie of its own, host-only, set by
//! Portcullis at `/.portcullis/handoff` on that host (every proxy configuration
//! routes that one path there):
//!
//! 1. A signed-out browser on the app host is sent to `/.portcullis/handoff?rd=URL`
//!    on that host. It gets a random *state* in a cookie of that host (path
//!    `/.portcullis/`, so no app sees it) and goes on to the portal, whose `rd` is
//!    the handoff again, carrying the state.
//! 2. Signed in at the portal (just now, or already), the portal mints a one-time
//!    *code* bound to that host, the state, the return URL and the portal session,
//!    and sends the browser to `/.portcullis/handoff?code=C` on the host.
//! 3. There the code is redeemed once, within a minute, only on the host it was
//!    minted for and only by the browser holding the state's cookie: a new session
//!    riding on the same account session, so signing out anywhere ends it too.
//!
//! The state is what stops login CSRF: a code minted for someone else's account
//! (an attacker's) is useless in a browser that did not start that handoff. A code
//! is stored only as its hash, and is burned by any attempt to redeem it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::accounts::browser_sessions::{BrowserSession, SessionRef};
use crate::cache::{Cache, hasher};
use crate::clock::Clock;
use crate::crypto::keys::{RandomnessUnavailable, random_bytes};
use crate::model::host::{default_port, parse_host_port};

/// The one path of an app host that the proxy hands to Portcullis.
pub const PATH: &str = "/.portcullis/handoff";
/// Portcullis's own paths on every app host. The state cookie is scoped to it, so
/// no app ever receives it.
pub const PREFIX: &str = "/.portcullis/";
/// How long a started handoff's state is kept by the browser.
pub const STATE_SECONDS: i64 = 10 * 60;
/// How long a minted code may wait for its redemption (a redirect takes less).
pub const CODE_SECONDS: i64 = 60;
/// Codes waiting at once; the least recently minted go first when more are.
const CODES_HELD: u64 = 10_000;
/// Codes one portal session may have minted within a code's lifetime: a few
/// apps opened at once, never enough to push other visitors' codes out.
const CODES_PER_SESSION: u32 = 20;

/// A fresh random value (256 bits, base64url): a state or a code.
pub fn random_token() -> Result<String, RandomnessUnavailable> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// Whether `value` has the shape [`random_token`] gives.
pub fn is_token(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// `scheme://authority` of an absolute URL, as written (no path).
pub fn origin_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..url.len() - rest.len() + end])
}

/// Whether the request's `Host` names the origin's host and port (the scheme's own
/// port when neither names one).
pub fn host_matches(origin: &str, host_header: &str) -> bool {
    let (Some((scheme, _)), Some((name, port)), Some(actual)) = (
        origin.split_once("://"),
        host_and_port(origin),
        parse_host_port(host_header),
    ) else {
        return false;
    };
    actual.name == name && actual.port.unwrap_or(default_port(scheme)) == port
}

/// The host name and port (the scheme's own when none is named) of an origin.
pub fn host_and_port(origin: &str) -> Option<(String, u16)> {
    let (scheme, authority) = origin.split_once("://")?;
    parse_host_port(authority).map(|host| (host.name, host.port.unwrap_or(default_port(scheme))))
}

/// Where a signed-out browser on `url`'s host starts a handoff.
pub fn start_url(url: &str) -> Option<String> {
    let origin = origin_of(url)?;
    Some(format!("{origin}{PATH}?rd={}", encode(url)))
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The return address a started handoff gives the portal: the handoff on the app
/// host again, with the state and the URL to end at.
pub fn portal_return(rd: &str, state: &str) -> Option<String> {
    let origin = origin_of(rd)?;
    Some(format!(
        "{origin}{PATH}?state={}&rd={}",
        encode(state),
        encode(rd)
    ))
}

/// A return address that asks the portal to hand its sign-in to an app host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffReturn {
    /// `scheme://authority` of the app host.
    pub origin: String,
    pub state: String,
    /// Where the browser ends, on that host.
    pub rd: String,
}

impl HandoffReturn {
    /// Reads a return address ([`portal_return`]'s shape) that has already passed
    /// the `rd` rules; `safe` checks the URL inside. `None` when it is anything
    /// else: an ordinary `rd`.
    pub fn parse(rd: &str, safe: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let url = url::Url::parse(rd).ok()?;
        if url.path() != PATH {
            return None;
        }
        let (mut state, mut inner) = (None, None);
        for (key, value) in url.query_pairs() {
            let slot = match key.as_ref() {
                "state" => &mut state,
                "rd" => &mut inner,
                _ => return None,
            };
            if slot.replace(value.into_owned()).is_some() {
                return None;
            }
        }
        let (state, inner) = (state.filter(|s| is_token(s))?, safe(&inner?)?);
        let origin = origin_of(rd)?.to_ascii_lowercase();
        // The URL to end at is on the host the handoff is for.
        (origin_of(&inner)? == origin).then_some(Self {
            origin,
            state,
            rd: inner,
        })
    }
}

/// A minted code's promise: who may redeem it, where, and on whose behalf.
pub struct Grant {
    pub origin: String,
    pub rd: String,
    /// The portal session the new one joins (its account session).
    pub source: SessionRef,
    state: [u8; 32],
    minted_at: i64,
}

/// Why a code was not redeemed. Each is the same to the browser (start again);
/// the distinction is for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandoffRefused {
    #[error("the code is unknown, spent or expired")]
    Unknown,
    #[error("the code was minted for another host")]
    OtherHost,
    #[error("the browser does not hold the state the code was minted for")]
    StateMismatch,
}

/// Why no code was minted.
#[derive(Debug, thiserror::Error)]
pub enum MintRefused {
    #[error("this session minted too many handoff codes within a minute")]
    TooMany,
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
}

/// Codes minted and not yet redeemed, by their hash.
#[derive(Clone)]
pub struct Handoffs {
    clock: Clock,
    codes: Cache<[u8; 32], Arc<Grant>>,
    /// Codes minted lately, by the portal session that minted them: when its
    /// minute began (by the injected clock), and how many since.
    minted: Cache<String, Arc<std::sync::Mutex<(i64, u32)>>>,
}

impl Handoffs {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            // Least recently used out first, and gone after their minute: a code
            // is never read before it is redeemed, so the default policy (which
            // admits a new entry only if it is read more often than the one it
            // would evict) would let old, unredeemed codes keep new ones out.
            codes: moka::sync::Cache::builder()
                .max_capacity(CODES_HELD)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .time_to_live(std::time::Duration::from_secs(CODE_SECONDS.unsigned_abs()))
                .build_with_hasher(hasher()),
            minted: moka::sync::Cache::builder()
                .max_capacity(CODES_HELD)
                .time_to_live(std::time::Duration::from_secs(CODE_SECONDS.unsigned_abs()))
                .build_with_hasher(hasher()),
        }
    }

    /// A one-time code for handing `source` to the host of `to`; refused past
    /// [`CODES_PER_SESSION`] within a code's lifetime.
    pub fn mint(&self, to: HandoffReturn, source: &BrowserSession) -> Result<String, MintRefused> {
        let source = source.reference();
        let now = self.clock.now();
        let window = self.minted.get_with(source.id_hash.clone(), || {
            Arc::new(std::sync::Mutex::new((now, 0)))
        });
        {
            // A poisoned count (a panic mid-update) refuses: fail closed.
            let mut window = window.lock().map_err(|_| MintRefused::TooMany)?;
            if now - window.0 >= CODE_SECONDS {
                *window = (now, 0);
            }
            if window.1 >= CODES_PER_SESSION {
                return Err(MintRefused::TooMany);
            }
            window.1 += 1;
        }
        let code = random_token()?;
        self.codes.insert(
            digest(&code),
            Arc::new(Grant {
                origin: to.origin,
                rd: to.rd,
                source,
                state: digest(&to.state),
                minted_at: self.clock.now(),
            }),
        );
        Ok(code)
    }

    /// Redeems `code` at a request to `host_header` from a browser holding the
    /// state cookie `state` (if any). The code is spent whatever the outcome.
    pub fn redeem(
        &self,
        code: &str,
        host_header: &str,
        state: Option<&str>,
    ) -> Result<Arc<Grant>, HandoffRefused> {
        let grant = self
            .codes
            .remove(&digest(code))
            .filter(|g| self.clock.now() - g.minted_at <= CODE_SECONDS)
            .ok_or(HandoffRefused::Unknown)?;
        if !host_matches(&grant.origin, host_header) {
            return Err(HandoffRefused::OtherHost);
        }
        let held = state.map(digest).unwrap_or([0; 32]);
        if state.is_none() || !bool::from(held.ct_eq(&grant.state)) {
            return Err(HandoffRefused::StateMismatch);
        }
        Ok(grant)
    }
}

/// The URL of the handoff that redeems `code`, on `origin`.
pub fn redeem_url(origin: &str, code: &str) -> String {
    format!("{origin}{PATH}?code={}", encode(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_are_kept_when_the_store_is_full_of_unredeemed_ones() {
        let handoffs = Handoffs::new(Clock::manual(1_000));
        let grant = |n: u64| {
            Arc::new(Grant {
                origin: format!("http://app{n}.example.test"),
                rd: String::new(),
                source: SessionRef {
                    id_hash: String::new(),
                    session_id: uuid::Uuid::nil(),
                    expires_at: 0,
                },
                state: [0; 32],
                minted_at: 1_000,
            })
        };
        for n in 0..CODES_HELD + 500 {
            handoffs.codes.insert(digest(&n.to_string()), grant(n));
        }
        handoffs.codes.run_pending_tasks();
        let fresh = "fresh";
        handoffs.codes.insert(digest(fresh), grant(0));
        handoffs.codes.run_pending_tasks();
        assert!(handoffs.codes.contains_key(&digest(fresh)));
    }

    fn safe(rd: &str) -> Option<String> {
        rd.starts_with("http://app.example.test")
            .then(|| rd.to_owned())
    }

    #[test]
    fn a_started_handoff_round_trips_to_the_portal_and_back() {
        let state = random_token().expect("random");
        assert!(is_token(&state));
        let rd = "http://app.example.test:8088/reports?q=1&x=%2F";
        assert_eq!(
            start_url(rd).as_deref(),
            Some(
                "http://app.example.test:8088/.portcullis/handoff?rd=http%3A%2F%2Fapp.example.test%3A8088%2Freports%3Fq%3D1%26x%3D%252F"
            )
        );
        let back = portal_return(rd, &state).expect("return");
        let parsed = HandoffReturn::parse(&back, safe).expect("a handoff");
        assert_eq!(parsed.origin, "http://app.example.test:8088");
        assert_eq!(parsed.state, state);
        assert_eq!(parsed.rd, rd);
    }

    #[test]
    fn anything_else_is_an_ordinary_return() {
        let state = random_token().expect("random");
        let ok = |query: &str| format!("http://app.example.test{PATH}?{query}");
        for rd in [
            "http://app.example.test/reports".to_owned(),
            ok(&format!("state={state}")),
            ok("state=short&rd=http%3A%2F%2Fapp.example.test%2F"),
            ok(&format!(
                "state={state}&rd=http%3A%2F%2Fapp.example.test%2F&rd=http%3A%2F%2Fapp.example.test%2Fx"
            )),
            ok(&format!(
                "state={state}&rd=http%3A%2F%2Fapp.example.test%2F&extra=1"
            )),
            // The URL inside is on another host, or not safe at all.
            ok(&format!(
                "state={state}&rd=http%3A%2F%2Fapp.example.test.evil%2F"
            )),
            ok(&format!("state={state}&rd=https%3A%2F%2Fevil.test%2F")),
            format!(
                "http://app.example.test/.portcullis/handoff/x?state={state}&rd=http%3A%2F%2Fapp.example.test%2F"
            ),
        ] {
            assert_eq!(HandoffReturn::parse(&rd, safe), None, "{rd}");
        }
        // Another port is another origin.
        let other_port = format!(
            "http://app.example.test:81{PATH}?state={state}&rd=http%3A%2F%2Fapp.example.test%2F"
        );
        assert_eq!(
            HandoffReturn::parse(&other_port, |r| Some(r.to_owned())),
            None
        );
    }

    #[test]
    fn hosts_match_by_name_and_effective_port() {
        assert!(host_matches("http://app.test", "app.test"));
        assert!(host_matches("http://app.test", "APP.test:80"));
        assert!(host_matches("https://app.test:8443", "app.test:8443"));
        assert!(!host_matches("https://app.test", "app.test:80"));
        assert!(!host_matches("http://app.test", "other.test"));
        assert!(!host_matches("http://app.test:8088", "app.test"));
        assert!(!host_matches("http://app.test", "app.test@evil"));
    }
}
