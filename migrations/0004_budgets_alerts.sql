-- Budgets: approval requests and grants, alert webhooks, the durable delivery outbox, and which
-- alert thresholds fired in which period.

CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    project_id     TEXT NOT NULL REFERENCES projects(id),
    key_id         TEXT,
    requested_by   TEXT NOT NULL,
    model          TEXT,
    detail         TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL CHECK (status IN ('open', 'approved', 'denied')),
    requested_at   INTEGER NOT NULL,
    decided_at     INTEGER,
    decided_by     TEXT,
    grant_micros   INTEGER,
    grant_model    TEXT,
    grant_until    INTEGER,
    note           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_tenant ON approvals(tenant_id, status);

CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    project_id        TEXT REFERENCES projects(id),
    url               TEXT NOT NULL,
    format            TEXT NOT NULL CHECK (format IN ('json', 'slack')),
    secret_ciphertext BLOB NOT NULL,
    secret_hint       TEXT NOT NULL,
    active            INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks(tenant_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    webhook_id      TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload_json    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
CREATE INDEX outbox_tenant ON outbox(tenant_id, id);

CREATE TABLE alerts_fired (
    budget_key   TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    threshold    INTEGER NOT NULL,
    tenant_id    TEXT NOT NULL,
    fired_at     INTEGER NOT NULL,
    spent_micros INTEGER NOT NULL,
    cap_micros   INTEGER NOT NULL,
    PRIMARY KEY (budget_key, period_start, threshold)
);
