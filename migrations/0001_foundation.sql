-- Foundation: settings, tenants, admin keys, pools, resources, projects, project keys, audit log.
-- Times are integer milliseconds since the Unix epoch; money is integer micro-USD.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    settings_json TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE admin_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    digest      TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX admin_keys_tenant ON admin_keys(tenant_id);

CREATE TABLE pools (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE resources (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    pool_id               TEXT NOT NULL REFERENCES pools(id),
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    provider              TEXT NOT NULL,
    wire_format           TEXT NOT NULL,
    base_url              TEXT NOT NULL,
    credential_ciphertext BLOB,
    credential_hint       TEXT NOT NULL DEFAULT '',
    models_json           TEXT NOT NULL DEFAULT '[]',
    owner                 TEXT NOT NULL DEFAULT '',
    attestation_json      TEXT,
    allowed_use           TEXT NOT NULL DEFAULT '',
    cost_basis_json       TEXT NOT NULL DEFAULT '{}',
    limits_json           TEXT NOT NULL DEFAULT '{}',
    lease_mode            TEXT NOT NULL,
    probe_json            TEXT NOT NULL DEFAULT '{}',
    state                 TEXT NOT NULL,
    state_reason          TEXT NOT NULL DEFAULT '',
    state_changed_at      INTEGER NOT NULL,
    cooling_until         INTEGER,
    manual_hold           INTEGER NOT NULL DEFAULT 0,
    offer_id              TEXT,
    credit_cap_micros     INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX resources_pool ON resources(pool_id);

CREATE TABLE projects (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    name                TEXT NOT NULL,
    parent_id           TEXT REFERENCES projects(id),
    pool_ids_json       TEXT NOT NULL DEFAULT '[]',
    allowed_models_json TEXT NOT NULL DEFAULT '[]',
    status              TEXT NOT NULL CHECK (status IN ('active', 'archived')),
    policy_json         TEXT NOT NULL DEFAULT '{}',
    attributes_json     TEXT NOT NULL DEFAULT '{}',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE project_keys (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    project_id          TEXT NOT NULL REFERENCES projects(id),
    name                TEXT NOT NULL,
    prefix              TEXT NOT NULL,
    digest              TEXT NOT NULL UNIQUE,
    allowed_models_json TEXT NOT NULL DEFAULT '[]',
    budget_cap_micros   INTEGER,
    rpm                 INTEGER,
    created_by          TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    revoked_at          INTEGER
);
CREATE INDEX project_keys_project ON project_keys(project_id);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    summary_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
