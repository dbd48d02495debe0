-- Passkeys (WebAuthn credentials). `passkey` is the webauthn-rs `Passkey` as JSON: the
-- credential id, its public key, the signature counter and the backup flags. It
-- holds no secret (the private key never leaves the authenticator), so it is stored
-- as it is, not sealed. `credential_id` is the id base64url without padding, unique
-- across all accounts: a discoverable sign-in finds the passkey by it alone.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,                      -- UUID v4
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    passkey       TEXT NOT NULL CHECK (json_valid(passkey)),
    name          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
) STRICT;
CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

-- How each session was signed in to, for `subject.auth_method`. Sessions opened
-- before this column existed were password sign-ins, with a code when the account
-- has MFA on.
ALTER TABLE sessions ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password'
    CHECK (auth_method IN ('password', 'password+totp', 'passkey'));
UPDATE sessions SET auth_method = 'password+totp'
    WHERE user_id IN (SELECT user_id FROM mfa_factors WHERE enabled_at IS NOT NULL);
