-- Append-only, hash-chained security log. Each row's hash covers the previous row's
-- hash and its own content (see src/audit.rs), so an edited, removed or reordered row
-- breaks the chain at that point.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,             -- RFC 3339, UTC
    actor       TEXT,                      -- user id, 'system', or NULL
    ip          TEXT,
    event       TEXT NOT NULL,             -- e.g. app.started, auth.login_failed
    target      TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    request_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}', -- JSON object, secrets redacted
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
) STRICT;

CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_event ON audit_events (event, occurred_at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
