-- One row the readiness probe rewrites: a committed write proves the disk and the
-- journal take writes (a rolled-back one never reaches them).
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
) STRICT;
