-- Admin page sessions (cookie). The cookie holds a random 256-bit id; only its
-- SHA-256 is stored. Each rides on an account session (`sessions`), so ending one
-- ends the other, and the usual revocation applies.
CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ended_at INTEGER
) STRICT;
