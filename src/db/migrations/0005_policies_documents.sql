-- ABAC policies. `actions`, `conditions` and `principals` are JSON, validated before
-- they are stored. Every change also lands in `policy_versions` as a full snapshot.
CREATE TABLE policies (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    effect TEXT NOT NULL CHECK (effect IN ('allow', 'deny')),
    resource_type TEXT NOT NULL,
    actions TEXT NOT NULL,
    conditions TEXT,
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    principals TEXT NOT NULL,
    version INTEGER NOT NULL,
    system INTEGER NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at INTEGER NOT NULL,
    updated_by TEXT,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE policy_versions (
    policy_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    -- created | updated | deleted
    change TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    changed_by TEXT,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (policy_id, version)
) STRICT;

-- The built-in owner policy: visible, deactivatable, never deletable.
INSERT INTO policies (id, name, description, effect, resource_type, actions, conditions,
                      priority, status, principals, version, system, created_by,
                      created_at, updated_by, updated_at)
VALUES ('00000000-0000-4000-8000-000000000001',
        'Owners may do anything to what they own',
        'Built in. Grants every action on a resource to its owner (resource.owner_id). Deactivate it to make ownership grant nothing by itself.',
        'allow', '*', '["*"]',
        '{"attribute":"subject.id","operator":"eq","value":{"attribute":"resource.owner_id"}}',
        1000, 'active', '{"type":"everyone"}', 1, 1, 'system',
        CAST(strftime('%s', 'now') AS INTEGER), 'system', CAST(strftime('%s', 'now') AS INTEGER));

INSERT INTO policy_versions (policy_id, version, change, snapshot, changed_by, changed_at)
SELECT id, 1, 'created',
       json_object('name', name, 'effect', effect, 'resource_type', resource_type,
                   'actions', json(actions), 'conditions', json(conditions),
                   'priority', priority, 'status', status, 'principals', json(principals)),
       'system', created_at
FROM policies;

-- Owned documents. `owner_id` is always the creating user, never client input.
CREATE TABLE documents (
    id TEXT PRIMARY KEY NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    classification TEXT NOT NULL CHECK (classification IN ('public', 'internal', 'confidential')),
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
