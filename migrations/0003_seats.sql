-- Virtual seats: temporary, expiring data-plane keys for one named holder.

CREATE TABLE seats (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    project_id           TEXT NOT NULL REFERENCES projects(id),
    holder               TEXT NOT NULL,
    contact              TEXT NOT NULL DEFAULT '',
    note                 TEXT NOT NULL DEFAULT '',
    prefix               TEXT NOT NULL,
    digest               TEXT NOT NULL UNIQUE,
    previous_digest      TEXT,
    previous_valid_until INTEGER,
    expires_at           INTEGER NOT NULL,
    budget_cap_micros    INTEGER,
    rpm                  INTEGER,
    allowed_models_json  TEXT NOT NULL DEFAULT '[]',
    revoked_at           INTEGER,
    expired_at           INTEGER,
    created_by           TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX seats_project ON seats(tenant_id, project_id);
