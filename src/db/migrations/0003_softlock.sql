-- Account softlock: consecutive failed logins, when the last one was, and until when
-- the account refuses logins because of them. Separate from `status`, which only an
-- admin changes.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_failed_login_at INTEGER;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
