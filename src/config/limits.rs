//! Rate limits per route class, the key-table bound, and the account softlock.
use super::variables as v;
use super::{Reader, default_of, rules};

/// Defaults that `check-config` compares against when warning about loosened limits.
pub const DEFAULT_RATE_LIMIT_CALLS: u32 = 100;
pub const DEFAULT_RATE_LIMIT_PERIOD: u32 = 60;

/// A rate: `calls` per `period_seconds`, as a bucket of `calls` refilled evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    pub calls: u32,
    pub period_seconds: u32,
}

impl RateQuota {
    pub const fn new(calls: u32, period_seconds: u32) -> Self {
        Self {
            calls,
            period_seconds,
        }
    }

    /// Whether this rate allows more than `other` (compared without floats).
    pub fn looser_than(self, other: RateQuota) -> bool {
        u64::from(self.calls) * u64::from(other.period_seconds)
            > u64::from(other.calls) * u64::from(self.period_seconds)
    }
}

impl std::fmt::Display for RateQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.calls, self.period_seconds)
    }
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// Per user, for requests with a valid access token.
    pub authenticated: RateQuota,
    /// Per client IP, for every other request.
    pub anonymous: RateQuota,
    pub login_ip: RateQuota,
    pub login_account: RateQuota,
    pub register_ip: RateQuota,
    /// MFA code checks per client IP (the second sign-in step has its own budget,
    /// apart from the password step's).
    pub mfa_ip: RateQuota,
    pub mfa_account: RateQuota,
    /// The password entered again (change, re-authentication), per account.
    pub password_account: RateQuota,
    pub refresh_ip: RateQuota,
    /// Passkey ceremonies started per client IP (the sign-in itself spends a
    /// login attempt).
    pub passkey_start_ip: RateQuota,
    /// Gate decisions per signed-in user, and per client address.
    pub gate_user: RateQuota,
    pub gate_ip: RateQuota,
    /// Keys each limiter tracks before newcomers share the overflow bucket.
    pub max_keys: usize,
    pub softlock: SoftlockSettings,
}

/// Account softlock after consecutive failed logins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftlockSettings {
    /// (consecutive failures, lock seconds), ascending.
    pub steps: Vec<(u32, u32)>,
    /// A failure this long after the previous one starts the count afresh, so a lock
    /// cannot be kept up forever by one attempt per lock period.
    pub forget_after_seconds: u32,
}

impl Reader<'_> {
    pub(super) fn rate_limits(&mut self) -> Option<RateLimitSettings> {
        let calls = self.number(v::DEFAULT_RATE_LIMIT_CALLS, 1, 1_000_000);
        let period = self.number(v::DEFAULT_RATE_LIMIT_PERIOD, 1, 86_400);
        let authenticated = match (calls, period) {
            (Some(calls), Some(period)) => {
                let quota = RateQuota::new(calls, period);
                let default = RateQuota::new(DEFAULT_RATE_LIMIT_CALLS, DEFAULT_RATE_LIMIT_PERIOD);
                if quota.looser_than(default) {
                    self.findings.warn(
                        v::DEFAULT_RATE_LIMIT_CALLS,
                        format!("{calls} calls per {period} s is looser than the default {DEFAULT_RATE_LIMIT_CALLS} per {DEFAULT_RATE_LIMIT_PERIOD} s"),
                    );
                } else {
                    self.findings.pass(
                        v::DEFAULT_RATE_LIMIT_CALLS,
                        format!("{calls} calls per {period} s per user"),
                    );
                }
                Some(quota)
            }
            _ => None,
        };
        let anonymous = self.quota(v::RATE_LIMIT_ANONYMOUS);
        let login_ip = self.quota(v::RATE_LIMIT_LOGIN_IP);
        let login_account = self.quota(v::RATE_LIMIT_LOGIN_ACCOUNT);
        let register_ip = self.quota(v::RATE_LIMIT_REGISTER_IP);
        let mfa_ip = self.quota(v::RATE_LIMIT_MFA_IP);
        let mfa_account = self.quota(v::RATE_LIMIT_MFA_ACCOUNT);
        let password_account = self.quota(v::RATE_LIMIT_PASSWORD_ACCOUNT);
        let refresh_ip = self.quota(v::RATE_LIMIT_REFRESH_IP);
        let passkey_start_ip = self.quota(v::RATE_LIMIT_PASSKEY_START_IP);
        let gate_user = self.quota(v::RATE_LIMIT_GATE_USER);
        let gate_ip = self.quota(v::RATE_LIMIT_GATE_IP);
        let max_keys = self.number::<usize>(v::RATE_LIMIT_MAX_KEYS, 1, 10_000_000);
        let steps_text = self
            .raw
            .get(v::SOFTLOCK_STEPS)
            .unwrap_or(default_of(v::SOFTLOCK_STEPS));
        let softlock_steps = self.checked(v::SOFTLOCK_STEPS, rules::softlock_steps(steps_text));
        let forget_after = self.number::<u32>(v::SOFTLOCK_FORGET_AFTER_SECONDS, 60, 30 * 86_400);
        Some(RateLimitSettings {
            authenticated: authenticated?,
            anonymous: anonymous?,
            login_ip: login_ip?,
            login_account: login_account?,
            register_ip: register_ip?,
            mfa_ip: mfa_ip?,
            mfa_account: mfa_account?,
            password_account: password_account?,
            refresh_ip: refresh_ip?,
            passkey_start_ip: passkey_start_ip?,
            gate_user: gate_user?,
            gate_ip: gate_ip?,
            max_keys: max_keys?,
            softlock: SoftlockSettings {
                steps: softlock_steps?,
                forget_after_seconds: forget_after?,
            },
        })
    }

    /// A `calls/seconds` rate; warns when it is looser than the variable's default.
    pub(super) fn quota(&mut self, name: &'static str) -> Option<RateQuota> {
        let text = self.raw.get(name).unwrap_or(default_of(name));
        let (calls, period) = self.checked(name, rules::quota(text))?;
        let quota = RateQuota::new(calls, period);
        let default = rules::quota(default_of(name))
            .map(|(c, p)| RateQuota::new(c, p))
            .unwrap_or(quota);
        if quota.looser_than(default) {
            self.findings.warn(
                name,
                format!("{quota} is looser than the default {default}; brute force gets easier"),
            );
        }
        Some(quota)
    }
}
