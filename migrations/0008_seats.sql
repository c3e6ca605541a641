-- Subscription seats within their terms: lease modes renamed (shared becomes pooled) with
-- passthrough added, each resource's plan, OAuth credentials for organisation resources (the
-- refresh token rotates under a compare-and-swap on its version, and a claim keeps two processes
-- from spending one refresh token), the usage windows each credential reports (current state and
-- coalesced samples), limit hits, and why the router chose a resource.

UPDATE resources SET lease_mode = 'pooled' WHERE lease_mode = 'shared';

-- The plan as JSON ({"kind", "name", "weight"}); '' for rows written before 0008: the kind's default.
ALTER TABLE resources ADD COLUMN plan_json TEXT NOT NULL DEFAULT '';
-- Non-secret OAuth settings (token URL, client id, grant, scope); NULL for static credentials.
ALTER TABLE resources ADD COLUMN oauth_json TEXT;

CREATE TABLE resource_oauth (
    resource_id              TEXT PRIMARY KEY,
    tenant_id                TEXT NOT NULL,
    -- Bumped by every write of the secrets; writers compare and swap on it.
    version                  INTEGER NOT NULL,
    refresh_ciphertext       BLOB,
    client_secret_ciphertext BLOB,
    access_ciphertext        BLOB,
    access_expires_at        INTEGER,
    -- A process about to spend the refresh token claims it first; others wait for the new version.
    claim_owner              TEXT,
    claim_until              INTEGER,
    failures                 INTEGER NOT NULL DEFAULT 0,
    next_attempt_at          INTEGER,
    last_error               TEXT NOT NULL DEFAULT '',
    refreshed_at             INTEGER,
    refresh_count            INTEGER NOT NULL DEFAULT 0,
    updated_at               INTEGER NOT NULL
);

-- The latest windows of each credential: holder '' is the resource's own credential, a key id a
-- passthrough holder's own subscription. Written on a change of status, else at most every few seconds.
CREATE TABLE credential_windows (
    resource_id   TEXT NOT NULL,
    holder        TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    readings_json TEXT NOT NULL,
    status        TEXT,
    observed_at   INTEGER NOT NULL,
    PRIMARY KEY (resource_id, holder)
) WITHOUT ROWID;

CREATE TABLE window_samples (
    id             INTEGER PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    holder         TEXT NOT NULL,
    window_seconds INTEGER NOT NULL,
    scope          TEXT NOT NULL,
    utilization    REAL NOT NULL,
    resets_at      INTEGER,
    rejected       INTEGER NOT NULL,
    observed_at    INTEGER NOT NULL
);
CREATE INDEX window_samples_by_resource ON window_samples(tenant_id, resource_id, observed_at);

-- 429s: with a window reset (the window's limit) or without (recorded as their own cause).
CREATE TABLE limit_hits (
    id          INTEGER PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    holder      TEXT NOT NULL,
    at          INTEGER NOT NULL,
    until       INTEGER,
    windows     TEXT NOT NULL,
    cause       TEXT NOT NULL
);
CREATE INDEX limit_hits_by_resource ON limit_hits(tenant_id, resource_id, at);

ALTER TABLE ledger ADD COLUMN route_reason TEXT;
ALTER TABLE ledger ADD COLUMN session_moved_from TEXT;
