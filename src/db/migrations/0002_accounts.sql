-- Accounts, login sessions, refresh tokens and token revocations.
-- Times are Unix seconds (UTC).
CREATE TABLE users (
    id                 TEXT PRIMARY KEY,                 -- UUID v4
    email              TEXT NOT NULL UNIQUE,             -- lower-cased
    password_hash      TEXT NOT NULL,                    -- PHC string (argon2id; legacy bcrypt until rehashed)
    role               TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    attributes         TEXT NOT NULL DEFAULT '{}'
                       CHECK (json_valid(attributes) AND json_type(attributes) = 'object'),
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'disabled')),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- Access tokens issued before this instant are dead (logout-all, password change, lock).
    tokens_valid_after INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per login. A session lives until it ends or REFRESH_TOKEN_EXPIRE_DAYS pass.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,                       -- UUID v4, the access token's `sid`
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family       TEXT NOT NULL UNIQUE,                   -- the refresh-token rotation chain
    ip           TEXT,
    user_agent   TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    end_reason   TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id, ended_at);

-- Refresh tokens are stored only as SHA-256. A rotated token is kept (rotated_at set)
-- so that presenting it again is recognised as reuse.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  INTEGER NOT NULL,
    rotated_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Revoked access tokens (by jti) and ended sessions (by sid), kept until no access
-- token they could match is still unexpired.
CREATE TABLE revocations (
    kind       TEXT NOT NULL CHECK (kind IN ('token', 'session')),
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) STRICT, WITHOUT ROWID;
CREATE INDEX revocations_expires_at ON revocations (expires_at);
