-- The admin pages' sessions and the gate portal's are one kind of thing: a cookie
-- whose hash is stored, riding on an account session. One table, told apart by
-- `kind`, so both get the same SQL and the same rules.
ALTER TABLE admin_sessions RENAME TO browser_sessions;
ALTER TABLE browser_sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'admin' CHECK (kind IN ('admin', 'gate'));
CREATE INDEX browser_sessions_by_session ON browser_sessions (session_id);
