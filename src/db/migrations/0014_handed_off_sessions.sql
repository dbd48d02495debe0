-- The app host a gate session was handed to (`name:port`), for a session made by
-- the gate's handoff: it is good on that host alone, never at the portal or on
-- another app. NULL for the portal's own sessions and the admin pages'.
ALTER TABLE browser_sessions ADD COLUMN host TEXT;
