-- Account softlock: consecutive failed logins, and until when the account refuses
-- logins because of them. Separate from `status`, which only an admin changes.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
