-- When the session's holder last proved the password again (and the second factor,
-- with MFA on): sensitive changes within minutes of it need no new proof.
ALTER TABLE sessions ADD COLUMN reauthenticated_at INTEGER;
