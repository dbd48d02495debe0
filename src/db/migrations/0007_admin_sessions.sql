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

-- The built-in administrator policy: every admin-page action (resource type
-- `admin`) is decided by the engine, and this grants them to administrators. It is
-- read-only, so no change through the pages can lock every administrator out.
INSERT INTO policies (id, name, description, effect, resource_type, actions, conditions,
                      priority, status, principals, version, system, created_by,
                      created_at, updated_by, updated_at)
VALUES ('00000000-0000-4000-8000-000000000002',
        'Administrators run the admin pages',
        'Built in and read-only. Grants every admin-page action (resource type admin) to the admin role. A deny policy on resource type admin still takes precedence.',
        'allow', 'admin', '["*"]', NULL,
        1000, 'active', '{"type":"roles","roles":["admin"]}', 1, 1, 'system',
        CAST(strftime('%s', 'now') AS INTEGER), 'system', CAST(strftime('%s', 'now') AS INTEGER));
