-- Data plane: per-tenant pricing, operator overflow offers, and the request ledger.

CREATE TABLE price_entries (
    tenant_id                   TEXT NOT NULL REFERENCES tenants(id),
    model                       TEXT NOT NULL,
    input_per_mtok_micros       INTEGER NOT NULL,
    output_per_mtok_micros      INTEGER NOT NULL,
    cached_input_per_mtok_micros INTEGER NOT NULL,
    cache_write_per_mtok_micros INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, model)
);

CREATE TABLE overflow_offers (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    provider              TEXT NOT NULL,
    wire_format           TEXT NOT NULL,
    base_url              TEXT NOT NULL,
    models_json           TEXT NOT NULL,
    price_json            TEXT NOT NULL,
    credential_ciphertext BLOB NOT NULL,
    credential_hint       TEXT NOT NULL,
    active                INTEGER NOT NULL DEFAULT 1,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- One row per data-plane request. Never prompt or response content. Rows are never deleted, so the
-- rowid alias `seq` only grows (no AUTOINCREMENT: it would cost a sqlite_sequence write per commit).
CREATE TABLE ledger (
    seq                  INTEGER PRIMARY KEY,
    request_id           TEXT NOT NULL,
    at                   INTEGER NOT NULL,
    started_at           INTEGER NOT NULL,
    tenant_id            TEXT NOT NULL,
    project_id           TEXT NOT NULL,
    key_id               TEXT,
    seat_id              TEXT,
    user_digest          TEXT,
    resource_id          TEXT,
    pool_id              TEXT,
    overflow             INTEGER NOT NULL DEFAULT 0,
    provider             TEXT,
    wire_format          TEXT NOT NULL,
    endpoint             TEXT NOT NULL,
    model_requested      TEXT NOT NULL,
    model_served         TEXT,
    stream               INTEGER NOT NULL DEFAULT 0,
    tokens_in            INTEGER NOT NULL DEFAULT 0,
    tokens_out           INTEGER NOT NULL DEFAULT 0,
    tokens_cached        INTEGER NOT NULL DEFAULT 0,
    tokens_cache_write   INTEGER NOT NULL DEFAULT 0,
    cost_micros          INTEGER NOT NULL DEFAULT 0,
    upstream_cost_micros INTEGER NOT NULL DEFAULT 0,
    reserved_micros      INTEGER NOT NULL DEFAULT 0,
    status               INTEGER NOT NULL,
    reason               TEXT,
    flags                TEXT NOT NULL DEFAULT '',
    overage              TEXT,
    overage_project_id   TEXT,
    latency_us           INTEGER NOT NULL,
    ttfb_us              INTEGER,
    attempts             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ledger_tenant_seq ON ledger(tenant_id, seq);
CREATE INDEX ledger_tenant_at ON ledger(tenant_id, at);
