//! Token settings: the JWT signing keys (current and verify-only) and the lifetimes
//! of access tokens and sessions.
use secrecy::SecretString;

use super::Reader;
use super::rules::{self, weak_secret_reason};
use super::variables as v;

/// Defaults that `check-config` compares against when warning about loosened limits.
pub const DEFAULT_ACCESS_TOKEN_MINUTES: u32 = 15;
pub const DEFAULT_REFRESH_TOKEN_DAYS: u32 = 7;

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub secret: SecretString,
    /// Verify-only keys, for rotation.
    pub previous_secrets: Vec<SecretString>,
    pub access_token_minutes: u32,
    pub refresh_token_days: u32,
    /// Revocations (and cut-offs) the in-memory cache may hold.
    pub revocation_cache_capacity: u64,
    /// Live sessions the in-memory allow-list may hold.
    pub session_cache_capacity: usize,
    /// A refresh token presented again this soon after its rotation gets the same
    /// successor pair (0: never).
    pub refresh_reuse_grace_seconds: u32,
}

impl JwtSettings {
    pub fn access_token_seconds(&self) -> i64 {
        i64::from(self.access_token_minutes) * 60
    }

    pub fn refresh_token_seconds(&self) -> i64 {
        i64::from(self.refresh_token_days) * 86_400
    }
}

impl Reader<'_> {
    pub(super) fn jwt(&mut self) -> Option<JwtSettings> {
        let secret = match self.raw.get(v::JWT_SECRET_KEY) {
            None => {
                self.findings.fail(
                    v::JWT_SECRET_KEY,
                    "is missing; set it to a random value of at least 32 characters (`portcullis keygen` prints one)",
                );
                None
            }
            Some(value) => match weak_secret_reason(value) {
                Some(reason) => {
                    self.findings.fail(
                        v::JWT_SECRET_KEY,
                        format!("{reason}; replace it with the value `portcullis keygen` prints"),
                    );
                    None
                }
                None => {
                    self.findings.pass(v::JWT_SECRET_KEY, "strong signing key");
                    Some(SecretString::from(value))
                }
            },
        };
        let previous_secrets = match self.raw.get(v::JWT_PREVIOUS_SECRET_KEYS) {
            None => Some(Vec::new()),
            Some(list) => self.previous_jwt_keys(list),
        };
        let access_token_minutes = self.number(v::ACCESS_TOKEN_EXPIRE_MINUTES, 1, 24 * 60);
        if let Some(minutes) = access_token_minutes {
            if minutes > DEFAULT_ACCESS_TOKEN_MINUTES {
                self.findings.warn(
                    v::ACCESS_TOKEN_EXPIRE_MINUTES,
                    format!("access tokens live {minutes} minutes (default {DEFAULT_ACCESS_TOKEN_MINUTES}); a stolen token stays useful longer"),
                );
            } else {
                self.findings
                    .pass(v::ACCESS_TOKEN_EXPIRE_MINUTES, format!("{minutes} minutes"));
            }
        }
        let refresh_token_days = self.number(v::REFRESH_TOKEN_EXPIRE_DAYS, 1, 365);
        if let Some(days) = refresh_token_days {
            if days > DEFAULT_REFRESH_TOKEN_DAYS {
                self.findings.warn(
                    v::REFRESH_TOKEN_EXPIRE_DAYS,
                    format!(
                        "refresh tokens live {days} days (default {DEFAULT_REFRESH_TOKEN_DAYS})"
                    ),
                );
            } else {
                self.findings
                    .pass(v::REFRESH_TOKEN_EXPIRE_DAYS, format!("{days} days"));
            }
        }
        let revocation_cache_capacity =
            self.number::<u64>(v::REVOCATION_CACHE_CAPACITY, 1, 100_000_000);
        let session_cache_capacity =
            self.number::<usize>(v::SESSION_CACHE_CAPACITY, 1, 100_000_000);
        let refresh_reuse_grace_seconds = self.number::<u32>(v::REFRESH_REUSE_GRACE_SECONDS, 0, 30);
        Some(JwtSettings {
            revocation_cache_capacity: revocation_cache_capacity?,
            session_cache_capacity: session_cache_capacity?,
            refresh_reuse_grace_seconds: refresh_reuse_grace_seconds?,
            secret: secret?,
            previous_secrets: previous_secrets?,
            access_token_minutes: access_token_minutes?,
            refresh_token_days: refresh_token_days?,
        })
    }

    pub(super) fn previous_jwt_keys(&mut self, list: &str) -> Option<Vec<SecretString>> {
        let items = self.checked(v::JWT_PREVIOUS_SECRET_KEYS, rules::split_list(list))?;
        let mut keys = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Some(reason) = weak_secret_reason(item) {
                self.findings.fail(
                    v::JWT_PREVIOUS_SECRET_KEYS,
                    format!("entry {} {reason}; remove it", index + 1),
                );
                return None;
            }
            keys.push(SecretString::from(*item));
        }
        self.findings.pass(
            v::JWT_PREVIOUS_SECRET_KEYS,
            format!("{} verify-only key(s) for rotation", keys.len()),
        );
        Some(keys)
    }
}
