-- Which passkey signed each session in (first factor or second), so deleting the
-- passkey, or suspecting a copy of it, ends the sessions it opened. Sessions opened
-- before this column existed name none.
ALTER TABLE sessions ADD COLUMN passkey_id TEXT;
CREATE INDEX sessions_passkey ON sessions (passkey_id) WHERE passkey_id IS NOT NULL;

-- When a passkey's signature counter went backwards (a sign of a copied key): from
-- then on it signs nobody in, until its owner deletes it and registers another.
ALTER TABLE passkeys ADD COLUMN clone_suspected_at INTEGER;

-- Passkey sessions opened before this column existed name no passkey, so deleting
-- their passkey could never end them: they end now (their holders sign in again).
-- The server's allow-list of live sessions is read from this table at start-up.
UPDATE sessions SET ended_at = CAST(strftime('%s', 'now') AS INTEGER), end_reason = 'passkey_unlinked'
    WHERE auth_method = 'passkey' AND ended_at IS NULL;
