-- Health verifier: probe history per resource, and each resource's probe streaks, schedule and
-- learned upstream limits.

CREATE TABLE probe_results (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    at           INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    latency_ms   INTEGER NOT NULL,
    status       INTEGER,
    reason       TEXT NOT NULL,
    checks_json  TEXT NOT NULL DEFAULT '[]',
    headers_json TEXT NOT NULL DEFAULT '{}',
    trigger      TEXT NOT NULL
);
CREATE INDEX probe_results_resource ON probe_results(resource_id, id);

ALTER TABLE resources ADD COLUMN health_json TEXT NOT NULL DEFAULT '{}';
