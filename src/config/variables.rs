//! Every configuration variable Portcullis reads, in one list. The README table,
//! the config-file key check and `keygen` all come from here, so they cannot drift.

/// One configuration variable.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub name: &'static str,
    /// The default as text, or `None` when the variable has none (required or optional).
    pub default: Option<&'static str>,
    pub secret: bool,
    pub description: &'static str,
}

const fn var(
    name: &'static str,
    default: Option<&'static str>,
    description: &'static str,
) -> Variable {
    Variable {
        name,
        default,
        secret: false,
        description,
    }
}

const fn secret(name: &'static str, description: &'static str) -> Variable {
    Variable {
        name,
        default: None,
        secret: true,
        description,
    }
}

pub const JWT_SECRET_KEY: &str = "JWT_SECRET_KEY";
pub const JWT_PREVIOUS_SECRET_KEYS: &str = "JWT_PREVIOUS_SECRET_KEYS";
pub const CREDENTIAL_ENCRYPTION_KEY: &str = "CREDENTIAL_ENCRYPTION_KEY";
pub const MFA_ENCRYPTION_KEY: &str = "MFA_ENCRYPTION_KEY";
pub const DATABASE_PATH: &str = "DATABASE_PATH";
pub const DATABASE_READ_CONNECTIONS: &str = "DATABASE_READ_CONNECTIONS";
pub const BIND_ADDRESS: &str = "BIND_ADDRESS";
pub const HTTP_WORKERS: &str = "HTTP_WORKERS";
pub const CORS_ALLOWED_ORIGINS: &str = "CORS_ALLOWED_ORIGINS";
pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
pub const BEHIND_TLS_PROXY: &str = "BEHIND_TLS_PROXY";
pub const TLS_CERT_PATH: &str = "TLS_CERT_PATH";
pub const TLS_KEY_PATH: &str = "TLS_KEY_PATH";
pub const HSTS_MAX_AGE_SECONDS: &str = "HSTS_MAX_AGE_SECONDS";
pub const MAX_JSON_BODY_BYTES: &str = "MAX_JSON_BODY_BYTES";
pub const ACCESS_TOKEN_EXPIRE_MINUTES: &str = "ACCESS_TOKEN_EXPIRE_MINUTES";
pub const REFRESH_TOKEN_EXPIRE_DAYS: &str = "REFRESH_TOKEN_EXPIRE_DAYS";
pub const DEFAULT_RATE_LIMIT_CALLS: &str = "DEFAULT_RATE_LIMIT_CALLS";
pub const DEFAULT_RATE_LIMIT_PERIOD: &str = "DEFAULT_RATE_LIMIT_PERIOD";
pub const WEBHOOK_ALLOWED_PRIVATE_NETWORKS: &str = "WEBHOOK_ALLOWED_PRIVATE_NETWORKS";
pub const ADMIN_REQUIRE_MFA: &str = "ADMIN_REQUIRE_MFA";
pub const WEBHOOK_MAX_CONSECUTIVE_FAILURES: &str = "WEBHOOK_MAX_CONSECUTIVE_FAILURES";
pub const WEBHOOK_SECRET_GRACE_HOURS: &str = "WEBHOOK_SECRET_GRACE_HOURS";
pub const WEBHOOK_RETENTION_DAYS: &str = "WEBHOOK_RETENTION_DAYS";
pub const WEBHOOK_DELIVERY_CONCURRENCY: &str = "WEBHOOK_DELIVERY_CONCURRENCY";
pub const WEBHOOK_ENDPOINT_CONCURRENCY: &str = "WEBHOOK_ENDPOINT_CONCURRENCY";
pub const RATE_LIMIT_ANONYMOUS: &str = "RATE_LIMIT_ANONYMOUS";
pub const RATE_LIMIT_LOGIN_IP: &str = "RATE_LIMIT_LOGIN_IP";
pub const RATE_LIMIT_LOGIN_ACCOUNT: &str = "RATE_LIMIT_LOGIN_ACCOUNT";
pub const RATE_LIMIT_REGISTER_IP: &str = "RATE_LIMIT_REGISTER_IP";
pub const RATE_LIMIT_MFA_IP: &str = "RATE_LIMIT_MFA_IP";
pub const RATE_LIMIT_MFA_ACCOUNT: &str = "RATE_LIMIT_MFA_ACCOUNT";
pub const RATE_LIMIT_PASSWORD_ACCOUNT: &str = "RATE_LIMIT_PASSWORD_ACCOUNT";
pub const RATE_LIMIT_REFRESH_IP: &str = "RATE_LIMIT_REFRESH_IP";
pub const RATE_LIMIT_PASSKEY_START_IP: &str = "RATE_LIMIT_PASSKEY_START_IP";
pub const RATE_LIMIT_MAX_KEYS: &str = "RATE_LIMIT_MAX_KEYS";
pub const SOFTLOCK_STEPS: &str = "SOFTLOCK_STEPS";
pub const SOFTLOCK_FORGET_AFTER_SECONDS: &str = "SOFTLOCK_FORGET_AFTER_SECONDS";
pub const PASSWORD_HASH_MEMORY_KIB: &str = "PASSWORD_HASH_MEMORY_KIB";
pub const PASSWORD_HASH_ITERATIONS: &str = "PASSWORD_HASH_ITERATIONS";
pub const PASSWORD_HASH_PARALLELISM: &str = "PASSWORD_HASH_PARALLELISM";
pub const PASSWORD_HASH_CONCURRENCY: &str = "PASSWORD_HASH_CONCURRENCY";
pub const PASSWORD_HASH_QUEUE_TIMEOUT_MS: &str = "PASSWORD_HASH_QUEUE_TIMEOUT_MS";
pub const REVOCATION_CACHE_CAPACITY: &str = "REVOCATION_CACHE_CAPACITY";
pub const SESSION_CACHE_CAPACITY: &str = "SESSION_CACHE_CAPACITY";
pub const PUBLIC_URL: &str = "PUBLIC_URL";
pub const REQUEST_BODY_TIMEOUT_SECONDS: &str = "REQUEST_BODY_TIMEOUT_SECONDS";
pub const REFRESH_REUSE_GRACE_SECONDS: &str = "REFRESH_REUSE_GRACE_SECONDS";
pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const LOG_LEVEL: &str = "LOG_LEVEL";
pub const LOG_REQUESTS: &str = "LOG_REQUESTS";
pub const WEBAUTHN_RP_ID: &str = "WEBAUTHN_RP_ID";
pub const WEBAUTHN_RP_ORIGINS: &str = "WEBAUTHN_RP_ORIGINS";
pub const GATE_PORTAL_URL: &str = "GATE_PORTAL_URL";
pub const GATE_HOSTS: &str = "GATE_HOSTS";
pub const GATE_COOKIE_DOMAIN: &str = "GATE_COOKIE_DOMAIN";
pub const GATE_ASSERTION_KEY: &str = "GATE_ASSERTION_KEY";
pub const GATE_ASSERTION_PREVIOUS_KEYS: &str = "GATE_ASSERTION_PREVIOUS_KEYS";
pub const GATE_FORWARD_ATTRIBUTES: &str = "GATE_FORWARD_ATTRIBUTES";
pub const GATE_SESSION_IDLE_MINUTES: &str = "GATE_SESSION_IDLE_MINUTES";
pub const GATE_SESSION_MAX_HOURS: &str = "GATE_SESSION_MAX_HOURS";
pub const RATE_LIMIT_GATE_USER: &str = "RATE_LIMIT_GATE_USER";
pub const RATE_LIMIT_GATE_IP: &str = "RATE_LIMIT_GATE_IP";
pub const METRICS_BIND_ADDRESS: &str = "METRICS_BIND_ADDRESS";
pub const METRICS_ALLOW_REMOTE: &str = "METRICS_ALLOW_REMOTE";

pub const ALL: &[Variable] = &[
    secret(
        JWT_SECRET_KEY,
        "Signs access tokens (HS256). At least 32 characters, at least 10 distinct, not a placeholder. Required.",
    ),
    secret(
        JWT_PREVIOUS_SECRET_KEYS,
        "Comma list of retired JWT keys: they still verify tokens but never sign. For rotation.",
    ),
    secret(
        CREDENTIAL_ENCRYPTION_KEY,
        "Fernet key(s) for webhook credentials. Comma list: the first encrypts, all decrypt. Required.",
    ),
    secret(
        MFA_ENCRYPTION_KEY,
        "Fernet key(s) for TOTP secrets. Comma list: the first encrypts, all decrypt. Required.",
    ),
    var(
        DATABASE_PATH,
        Some("data/portcullis.db"),
        "SQLite database file. Its directory must be writable.",
    ),
    var(
        DATABASE_READ_CONNECTIONS,
        Some("4"),
        "Size of the read-only connection pool (writes use one connection).",
    ),
    var(
        BIND_ADDRESS,
        Some("127.0.0.1:8080"),
        "Address and port the server listens on.",
    ),
    var(
        HTTP_WORKERS,
        None,
        "Worker threads; defaults to the number of CPU cores.",
    ),
    var(
        CORS_ALLOWED_ORIGINS,
        Some(""),
        "Comma list of browser origins (scheme://host[:port]) allowed to call the API. No `*`, no `null`.",
    ),
    var(
        TRUSTED_PROXIES,
        Some(""),
        "Comma list of proxy IPs/CIDRs whose X-Forwarded-For is believed. Empty: trust no one.",
    ),
    var(
        PUBLIC_URL,
        None,
        "The origin browsers reach the server at (scheme://host[:port]), e.g. https://auth.example.org; the admin pages accept form posts from it only. Unset: the bind address and the Host header.",
    ),
    var(
        BEHIND_TLS_PROXY,
        Some("false"),
        "Set to true when a TLS-terminating proxy sits in front: enables HSTS without local TLS.",
    ),
    var(
        TLS_CERT_PATH,
        None,
        "PEM certificate chain; with TLS_KEY_PATH enables TLS 1.2+.",
    ),
    var(TLS_KEY_PATH, None, "PEM private key for TLS_CERT_PATH."),
    var(
        HSTS_MAX_AGE_SECONDS,
        Some("31536000"),
        "HSTS max-age when TLS is on or BEHIND_TLS_PROXY=true; 0 disables HSTS.",
    ),
    var(
        MAX_JSON_BODY_BYTES,
        Some("65536"),
        "Largest request body accepted; larger bodies get 413.",
    ),
    var(
        REQUEST_BODY_TIMEOUT_SECONDS,
        Some("10"),
        "How long a request body may take to arrive, whole (1-300); a slower one is cut off with 408.",
    ),
    var(
        ACCESS_TOKEN_EXPIRE_MINUTES,
        Some("15"),
        "Access token lifetime.",
    ),
    var(
        REFRESH_TOKEN_EXPIRE_DAYS,
        Some("7"),
        "Lifetime of a login session and its refresh tokens.",
    ),
    var(
        REVOCATION_CACHE_CAPACITY,
        Some("100000"),
        "Revocations held in memory; beyond it, checks fall back to the database.",
    ),
    var(
        REFRESH_REUSE_GRACE_SECONDS,
        Some("2"),
        "A refresh token presented again within this many seconds of its use gets the same successor pair instead of ending the session (two tabs, a retry). 0 turns it off; at most 30.",
    ),
    var(
        SESSION_CACHE_CAPACITY,
        Some("100000"),
        "Live sessions held in memory (every access token needs one); beyond it, checks fall back to the database.",
    ),
    var(
        PASSWORD_HASH_MEMORY_KIB,
        Some("19456"),
        "argon2id memory in KiB (OWASP minimum 19456; may only be raised).",
    ),
    var(
        PASSWORD_HASH_ITERATIONS,
        Some("2"),
        "argon2id passes (minimum 2; may only be raised).",
    ),
    var(
        PASSWORD_HASH_PARALLELISM,
        Some("1"),
        "argon2id lanes (minimum 1).",
    ),
    var(
        PASSWORD_HASH_CONCURRENCY,
        None,
        "Passwords hashed at once; defaults to the number of CPU cores.",
    ),
    var(
        PASSWORD_HASH_QUEUE_TIMEOUT_MS,
        Some("2000"),
        "How long a login may wait for a hashing slot before getting 503.",
    ),
    var(
        DEFAULT_RATE_LIMIT_CALLS,
        Some("100"),
        "Requests allowed per user per DEFAULT_RATE_LIMIT_PERIOD.",
    ),
    var(
        DEFAULT_RATE_LIMIT_PERIOD,
        Some("60"),
        "Rate limit window in seconds.",
    ),
    var(
        RATE_LIMIT_ANONYMOUS,
        Some("100/60"),
        "Unauthenticated requests per client IP, as calls/seconds.",
    ),
    var(
        RATE_LIMIT_LOGIN_IP,
        Some("5/60"),
        "Login attempts per client IP.",
    ),
    var(
        RATE_LIMIT_LOGIN_ACCOUNT,
        Some("10/60"),
        "Login attempts per account (e-mail), from anywhere.",
    ),
    var(
        RATE_LIMIT_REGISTER_IP,
        Some("3/3600"),
        "Registrations per client IP; only those that create an account or find the e-mail taken (201, 409) count.",
    ),
    var(
        RATE_LIMIT_MFA_IP,
        Some("10/60"),
        "MFA code checks (the second sign-in step) per client IP; apart from the login attempts.",
    ),
    var(
        RATE_LIMIT_MFA_ACCOUNT,
        Some("5/60"),
        "MFA code checks per account.",
    ),
    var(
        RATE_LIMIT_PASSWORD_ACCOUNT,
        Some("5/60"),
        "Passwords entered again per account (password change, re-authentication for a sensitive change).",
    ),
    var(
        RATE_LIMIT_REFRESH_IP,
        Some("30/60"),
        "Token refreshes per client IP.",
    ),
    var(
        RATE_LIMIT_PASSKEY_START_IP,
        Some("30/60"),
        "Passkey ceremonies started per client IP (a sign-in page starts one as it loads, for the browser's autofill); finishing a passkey sign-in spends a login attempt as a password does.",
    ),
    var(
        RATE_LIMIT_MAX_KEYS,
        Some("100000"),
        "Keys each limiter tracks; beyond it, newcomers share one strict overflow bucket.",
    ),
    var(
        SOFTLOCK_STEPS,
        Some("5:60,10:300,20:3600"),
        "Consecutive failed logins:lock seconds, ascending. Each failure at or past a step locks the account that long.",
    ),
    var(
        SOFTLOCK_FORGET_AFTER_SECONDS,
        Some("3600"),
        "A failed login this long after the previous one starts the count afresh.",
    ),
    var(
        WEBHOOK_ALLOWED_PRIVATE_NETWORKS,
        Some(""),
        "Comma list of CIDRs webhooks may reach despite the SSRF guard. Empty in production.",
    ),
    var(
        WEBHOOK_MAX_CONSECUTIVE_FAILURES,
        Some("20"),
        "Failed delivery attempts in a row after which a webhook is disabled (1–10000).",
    ),
    var(
        WEBHOOK_SECRET_GRACE_HOURS,
        Some("24"),
        "How long a rotated-out signing secret keeps signing too (0–720 hours).",
    ),
    var(
        WEBHOOK_RETENTION_DAYS,
        Some("30"),
        "Delivered webhook deliveries and their attempts older than this are deleted in the background (1–3650 days). Failed and pending ones are kept.",
    ),
    var(
        WEBHOOK_DELIVERY_CONCURRENCY,
        Some("32"),
        "Webhook deliveries in flight at once (1–1024).",
    ),
    var(
        WEBHOOK_ENDPOINT_CONCURRENCY,
        Some("4"),
        "Deliveries in flight at once to one webhook (1–64), so a receiver that hangs holds only its own.",
    ),
    var(
        ADMIN_REQUIRE_MFA,
        Some("true"),
        "Administrators need MFA to sign in to the admin pages (the demo turns it off, with a banner).",
    ),
    var(
        WEBAUTHN_RP_ID,
        None,
        "Passkeys' relying party id: a domain every origin in WEBAUTHN_RP_ORIGINS is, or is under (e.g. example.com), within its registrable domain; never a public suffix (co.uk, github.io: the Public Suffix List is compiled in) or an IP. Unset: the host of the first origin.",
    ),
    var(
        WEBAUTHN_RP_ORIGINS,
        None,
        "Comma list of origins passkeys may be used on (https, or http://localhost). Unset: PUBLIC_URL, plus GATE_PORTAL_URL when the gate is on; with neither, passkeys are off.",
    ),
    var(
        GATE_PORTAL_URL,
        None,
        "The gate's sign-in portal origin (e.g. https://auth.example.com). Set: forward-auth is on, and GATE_HOSTS, GATE_ASSERTION_KEY and TRUSTED_PROXIES are required.",
    ),
    var(
        GATE_HOSTS,
        None,
        "Comma list of hosts the gate protects: `app.example.com`, `*.example.com`, optionally `:port`. Also the only hosts a sign-in may return to.",
    ),
    var(
        GATE_COOKIE_DOMAIN,
        None,
        "Domain of the portal cookie (e.g. `example.com` for `*.example.com` apps); must cover every gate host. Unset: host-only.",
    ),
    secret(
        GATE_ASSERTION_KEY,
        "Ed25519 key (32 bytes, base64url) that signs `Portcullis-Assertion`; `portcullis keygen` prints one. Required with the gate.",
    ),
    secret(
        GATE_ASSERTION_PREVIOUS_KEYS,
        "Comma list of retired GATE_ASSERTION_KEY values: their public keys stay in /.well-known/jwks.json. For rotation.",
    ),
    var(
        GATE_FORWARD_ATTRIBUTES,
        Some(""),
        "Comma list of account attributes passed upstream as `Remote-Attr-<name>` and in the assertion.",
    ),
    var(
        GATE_SESSION_IDLE_MINUTES,
        Some("60"),
        "A portal session ends after this many minutes without a request (1–10080).",
    ),
    var(
        GATE_SESSION_MAX_HOURS,
        Some("12"),
        "A portal session ends this many hours after sign-in, however active (1–720).",
    ),
    var(
        RATE_LIMIT_GATE_USER,
        Some("1200/60"),
        "Gate decisions per signed-in user (a page load asks once per asset).",
    ),
    var(
        RATE_LIMIT_GATE_IP,
        Some("1200/60"),
        "Gate decisions per client address, signed in or not.",
    ),
    var(LOG_FORMAT, Some("text"), "`text` or `json`."),
    var(
        LOG_LEVEL,
        Some("info"),
        "Log filter, e.g. `info` or `portcullis=debug,actix_web=info`.",
    ),
    var(
        LOG_REQUESTS,
        Some("failures"),
        "Which requests get a line of their own: `all`, `failures` (4xx and 5xx; the default) or `server-errors` (5xx). Every line logged while a request is served carries its id either way.",
    ),
    var(
        METRICS_BIND_ADDRESS,
        None,
        "Address and port of the Prometheus metrics listener (`GET /metrics`), e.g. 127.0.0.1:9464. Unset: no metrics listener. A non-loopback address is refused unless METRICS_ALLOW_REMOTE=true.",
    ),
    var(
        METRICS_ALLOW_REMOTE,
        Some("false"),
        "`true` lets METRICS_BIND_ADDRESS be a non-loopback address (it has no authentication: firewall it to Prometheus).",
    ),
];

/// The variable with this exact name, if Portcullis knows it.
pub fn find(name: &str) -> Option<&'static Variable> {
    ALL.iter().find(|v| v.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_documents_every_variable() {
        let readme = include_str!("../../README.md");
        for variable in super::ALL {
            assert!(
                readme.contains(&format!("| `{}` |", variable.name)),
                "README configuration table lacks {}",
                variable.name
            );
        }
    }
}
