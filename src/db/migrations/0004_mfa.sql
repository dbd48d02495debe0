-- TOTP MFA. `secret` is a secret-box value (see crypto::secret_box): Fernet under
-- MFA_ENCRYPTION_KEY, or, for a row imported from an older system, legacy plaintext
-- until `portcullis migrate-secrets` seals it. A factor with `enabled_at` NULL is a
-- pending setup, not yet confirmed with a code.
CREATE TABLE mfa_factors (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    enabled_at INTEGER,
    -- The last TOTP time step accepted: a code is good once, and never one older.
    last_used_step INTEGER
) STRICT;

-- Single-use backup codes, stored as SHA-256 digests salted with the user id.
CREATE TABLE mfa_backup_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- One known value per key purpose, sealed at first start, so a wrong key is found
-- at startup rather than at the first login that needs it.
CREATE TABLE secret_canaries (
    purpose TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
