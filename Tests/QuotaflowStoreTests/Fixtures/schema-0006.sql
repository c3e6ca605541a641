-- A database written by Quotaflow at schema version 0006 (before the storage codecs were split from API
-- validation), with every kind of row. Loaded by StoreCompatibilityTests; never regenerate it.
BEGIN TRANSACTION;
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
INSERT INTO "admin_keys" VALUES('ak_9y7hd12bJ2XqXllx8peW','ten_MWkZi24Rc5chixt9wQ6Z','finance','qf_ak_pmF57J','7bdb4146dedd005fefb5c14de85d7b44bd58bf79210dadc05cc6564bfb52ef7b','operator',1796061407316,NULL);
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
INSERT INTO "approvals" VALUES('apr_p0qJFE135qtqfABLIvhQ','ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE',NULL,'operator',NULL,'granted directly','approved',1796061407355,1796061407355,'operator',1000000,'gpt-4.1',1796147807355,'launch');
INSERT INTO "approvals" VALUES('apr_X7IiP1QJ02vRhacPgeXF','ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','key_hvpD8gTU3gKZZ9neGb8I','key:key_hvpD8gTU3gKZZ9neGb8I','fast-model','this request''s worst case ($0.000213 at 100 output tokens) exceeds the $0.000030 left of the budget of project ''tiny'' this period, which ends 2026-12-01T00:00:00Z; set max_tokens lower','denied',1796061407770,1796061407778,'operator',NULL,NULL,NULL,'no');
INSERT INTO "approvals" VALUES('apr_ykq9c2Np7wpnwOnOnTrL','ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','key_hvpD8gTU3gKZZ9neGb8I','key:key_hvpD8gTU3gKZZ9neGb8I','fast-model','this request''s worst case ($0.000213 at 100 output tokens) exceeds the $0.000030 left of the budget of project ''tiny'' this period, which ends 2026-12-01T00:00:00Z; set max_tokens lower','open',1796061407781,NULL,NULL,NULL,NULL,NULL,'');
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
INSERT INTO "audit_log" VALUES(1,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407312,'operator','tenant.create','tenant','ten_MWkZi24Rc5chixt9wQ6Z','{"id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"compat-co","status":"active","settings":{"monthly_limit_micros":900000000,"period":{"day":5,"time_zone":"Europe/Berlin"},"request_limits":{"max_output_tokens":4000,"max_input_tokens":100000,"max_cost_micros":2000000},"enforcement":"enforce","default_price":{"input_per_mtok_micros":1000000,"output_per_mtok_micros":2000000,"cached_input_per_mtok_micros":1000000,"cache_write_per_mtok_micros":1250000},"max_seat_duration_seconds":2592000,"hash_end_users":false,"lease_idle_seconds":300,"alert_thresholds":[50,80,100],"tool_call_price_micros":12000},"created_at":"2026-11-30T17:56:47.312Z","updated_at":"2026-11-30T17:56:47.312Z"}');
INSERT INTO "audit_log" VALUES(2,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407315,'operator','pricing.replace','tenant','ten_MWkZi24Rc5chixt9wQ6Z','{"entries":4}');
INSERT INTO "audit_log" VALUES(3,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407317,'operator','admin_key.create','admin_key','ak_9y7hd12bJ2XqXllx8peW','{"id":"ak_9y7hd12bJ2XqXllx8peW","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"finance","prefix":"qf_ak_pmF57J","state":"active","created_by":"operator","created_at":"2026-11-30T17:56:47.316Z","revoked_at":null}');
INSERT INTO "audit_log" VALUES(4,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407318,'operator','pool.create','pool','pool_bq32tjBi3y75kXUFAP1Q','{"id":"pool_bq32tjBi3y75kXUFAP1Q","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"engineering","description":"shared","created_at":"2026-11-30T17:56:47.318Z","updated_at":"2026-11-30T17:56:47.318Z"}');
INSERT INTO "audit_log" VALUES(5,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407321,'operator','resource.create','resource','res_KUIcas2N6ztZRt5Qwc0n','{"id":"res_KUIcas2N6ztZRt5Qwc0n","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","pool_id":"pool_bq32tjBi3y75kXUFAP1Q","name":"team-key","kind":"api_key","provider":"openai_compatible","wire_format":"openai","base_url":"http://127.0.0.1:40249/v1","credential_hint":"…ream","models":["fast-model","stream-model"],"owner":"platform","attestation":{"by":"cto@compat.example","at":"2026-11-01T00:00:00Z","note":"org plan"},"allowed_use":"engineering only","cost_basis":{"type":"per_token","input_per_mtok_micros":900000,"output_per_mtok_micros":1800000,"cached_input_per_mtok_micros":900000,"cache_write_per_mtok_micros":1125000},"limits":{"max_concurrency":8,"rpm":600,"tpm":200000,"windows":[{"requests":500,"window_seconds":18000}],"monthly_spend_cap_micros":500000000},"lease_mode":"shared","probe":{"completion":false},"state":"pending","state_reason":"waiting for the health verifier","state_changed_at":"2026-11-30T17:56:47.320Z","cooling_until":null,"manual_hold":false,"offer_id":null,"credit_cap_micros":null,"created_at":"2026-11-30T17:56:47.320Z","updated_at":"2026-11-30T17:56:47.320Z"}');
INSERT INTO "audit_log" VALUES(6,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407325,'operator','resource.create','resource','res_wHnwdTRdY0J01Vz5hLlU','{"id":"res_wHnwdTRdY0J01Vz5hLlU","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","pool_id":"pool_bq32tjBi3y75kXUFAP1Q","name":"team-seat","kind":"seat","provider":"openai_compatible","wire_format":"openai","base_url":"http://127.0.0.1:40249/v1","credential_hint":"…ream","models":["fast-model"],"owner":"ops","attestation":{"by":"cto@compat.example","at":"2026-11-01T00:00:00Z","note":"org plan"},"allowed_use":"","cost_basis":{"type":"flat_monthly","monthly_fee_micros":200000000},"limits":{"windows":[]},"lease_mode":"exclusive","probe":{"completion":true,"model":"fast-model","waiver":{"by":"cto","note":"relay"}},"state":"pending","state_reason":"waiting for the health verifier","state_changed_at":"2026-11-30T17:56:47.325Z","cooling_until":null,"manual_hold":false,"offer_id":null,"credit_cap_micros":null,"created_at":"2026-11-30T17:56:47.325Z","updated_at":"2026-11-30T17:56:47.325Z"}');
INSERT INTO "audit_log" VALUES(7,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407325,'system:verifier','resource.state','resource','res_KUIcas2N6ztZRt5Qwc0n','{"from":"pending","to":"verifying","cause":"probe 1 of 2 passed","probe":{"ok":true,"reason":"passed","status":200,"latency_ms":3,"trigger":"admission","headers":{}}}');
INSERT INTO "audit_log" VALUES(8,NULL,1796061407330,'operator','offer.create','overflow_offer','ofr_rPjEJSItAwBxf5npgfbU','{"id":"ofr_rPjEJSItAwBxf5npgfbU","name":"platform-overflow","provider":"openai","wire_format":"openai","base_url":"http://127.0.0.1:40249/v1","models":["fast-model"],"price":{"input_per_mtok_micros":3000000,"output_per_mtok_micros":6000000,"cached_input_per_mtok_micros":3000000,"cache_write_per_mtok_micros":3750000},"credential_hint":"…ream","active":true,"created_at":"2026-11-30T17:56:47.330Z","updated_at":"2026-11-30T17:56:47.330Z"}');
INSERT INTO "audit_log" VALUES(9,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407332,'operator','resource.create','resource','res_5rJQJ39hKEAwy77h5GXw','{"id":"res_5rJQJ39hKEAwy77h5GXw","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","pool_id":"pool_bq32tjBi3y75kXUFAP1Q","name":"overflow","kind":"overflow","provider":"openai","wire_format":"openai","base_url":"http://127.0.0.1:40249/v1","credential_hint":"…ream","models":["fast-model"],"owner":"","attestation":{"by":"cto@compat.example","at":"2026-11-01T00:00:00Z","note":"org plan"},"allowed_use":"","cost_basis":{"type":"per_token","input_per_mtok_micros":3000000,"output_per_mtok_micros":6000000,"cached_input_per_mtok_micros":3000000,"cache_write_per_mtok_micros":3750000},"limits":{"windows":[]},"lease_mode":"shared","probe":{"completion":false},"state":"pending","state_reason":"waiting for the health verifier","state_changed_at":"2026-11-30T17:56:47.332Z","cooling_until":null,"manual_hold":false,"offer_id":"ofr_rPjEJSItAwBxf5npgfbU","credit_cap_micros":100000000,"created_at":"2026-11-30T17:56:47.332Z","updated_at":"2026-11-30T17:56:47.332Z"}');
INSERT INTO "audit_log" VALUES(10,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407334,'operator','project.create','project','prj_Gg61GggWngzdsFtZ03KV','{"id":"prj_Gg61GggWngzdsFtZ03KV","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"division","parent_id":null,"pool_ids":["pool_bq32tjBi3y75kXUFAP1Q"],"allowed_models":[],"status":"active","overflow_allowed":false,"overflow_cap_micros":null,"budget":{"monthly_cap_micros":800000000,"period":{"day":1,"time_zone":"UTC"},"rollover_percent":0,"overage_policy":"reject","alert_thresholds":[50,75,90,100]},"request_limits":{},"rate_limits":{},"enforcement":null,"attributes":{},"created_at":"2026-11-30T17:56:47.334Z","updated_at":"2026-11-30T17:56:47.334Z"}');
INSERT INTO "audit_log" VALUES(11,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407337,'operator','project.create','project','prj_MMnLPC2sEDRqXBQkGQPE','{"id":"prj_MMnLPC2sEDRqXBQkGQPE","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"checkout","parent_id":"prj_Gg61GggWngzdsFtZ03KV","pool_ids":["pool_bq32tjBi3y75kXUFAP1Q"],"allowed_models":["fast-model","stream-model","cheap-model"],"status":"active","overflow_allowed":true,"overflow_cap_micros":50000000,"budget":{"monthly_cap_micros":100000000,"period":{"day":1,"time_zone":"UTC"},"rollover_percent":20,"overage_policy":"fallback_model","fallback":{"model":"cheap-model","max_output_tokens":256,"cap_micros":10000000},"alert_thresholds":[50,90]},"request_limits":{"max_output_tokens":1000},"rate_limits":{"rpm":100,"rpm_per_key":50,"rpm_per_user":10,"tpm":100000},"enforcement":"audit","attributes":{"cost_center":"ENG-42","owner":"ada"},"created_at":"2026-11-30T17:56:47.336Z","updated_at":"2026-11-30T17:56:47.336Z"}');
INSERT INTO "audit_log" VALUES(12,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407339,'operator','key.create','project_key','key_F4T0BnttzN59DU3qFn0X','{"id":"key_F4T0BnttzN59DU3qFn0X","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_MMnLPC2sEDRqXBQkGQPE","name":"svc","prefix":"qf_pk_KQmQmV","state":"active","allowed_models":["fast-model","stream-model"],"budget_cap_micros":5000000,"rpm":30,"created_by":"operator","created_at":"2026-11-30T17:56:47.339Z","revoked_at":null}');
INSERT INTO "audit_log" VALUES(13,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407341,'operator','key.create','project_key','key_MhDdjwNFB0GIRze0UKbC','{"id":"key_MhDdjwNFB0GIRze0UKbC","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_MMnLPC2sEDRqXBQkGQPE","name":"old","prefix":"qf_pk_IVlEaU","state":"active","allowed_models":[],"budget_cap_micros":null,"rpm":null,"created_by":"operator","created_at":"2026-11-30T17:56:47.341Z","revoked_at":null}');
INSERT INTO "audit_log" VALUES(14,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407343,'operator','key.revoke','project_key','key_MhDdjwNFB0GIRze0UKbC','{}');
INSERT INTO "audit_log" VALUES(15,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407346,'operator','seat.issue','seat','seat_ncA3MKJ9rZQwJVC9H34Y','{"id":"seat_ncA3MKJ9rZQwJVC9H34Y","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_MMnLPC2sEDRqXBQkGQPE","holder":"Ada (contractor)","contact":"ada@example.com","note":"sprint","prefix":"qf_sk_y7PTaU","state":"active","expires_at":"2026-12-14T17:56:47.345Z","budget_cap_micros":40000000,"rpm":20,"allowed_models":["fast-model"],"previous_key_valid_until":null,"revoked_at":null,"expired_at":null,"spent_micros":0,"total_spent_micros":0,"requests":0,"last_used_at":null,"created_by":"operator","created_at":"2026-11-30T17:56:47.345Z","updated_at":"2026-11-30T17:56:47.345Z"}');
INSERT INTO "audit_log" VALUES(16,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407348,'operator','seat.rotate','seat','seat_ncA3MKJ9rZQwJVC9H34Y','{"prefix":"qf_sk_gtlb8u","previous_key_valid_until":"2026-11-30T18:56:47.348Z"}');
INSERT INTO "audit_log" VALUES(17,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407350,'operator','seat.issue','seat','seat_Rq6QHoGtK4OhG8A33zpQ','{"id":"seat_Rq6QHoGtK4OhG8A33zpQ","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_MMnLPC2sEDRqXBQkGQPE","holder":"Bob","contact":"","note":"","prefix":"qf_sk_DliVbF","state":"active","expires_at":"2026-12-01T17:56:47.350Z","budget_cap_micros":null,"rpm":null,"allowed_models":[],"previous_key_valid_until":null,"revoked_at":null,"expired_at":null,"spent_micros":0,"total_spent_micros":0,"requests":0,"last_used_at":null,"created_by":"operator","created_at":"2026-11-30T17:56:47.350Z","updated_at":"2026-11-30T17:56:47.350Z"}');
INSERT INTO "audit_log" VALUES(18,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407353,'operator','seat.revoke','seat','seat_Rq6QHoGtK4OhG8A33zpQ','{"holder":"Bob"}');
INSERT INTO "audit_log" VALUES(19,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407355,'operator','approval.grant','approval','apr_p0qJFE135qtqfABLIvhQ','{"id":"apr_p0qJFE135qtqfABLIvhQ","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_MMnLPC2sEDRqXBQkGQPE","key_id":null,"requested_by":"operator","model":null,"detail":"granted directly","status":"approved","requested_at":"2026-11-30T17:56:47.355Z","decided_at":"2026-11-30T17:56:47.355Z","decided_by":"operator","grant_micros":1000000,"grant_model":"gpt-4.1","grant_until":"2026-12-01T17:56:47.355Z","note":"launch"}');
INSERT INTO "audit_log" VALUES(20,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407357,'operator','webhook.create','webhook','wh_OBkKrJvLXScAJJfkGAIM','{"id":"wh_OBkKrJvLXScAJJfkGAIM","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_MMnLPC2sEDRqXBQkGQPE","url":"http://127.0.0.1:9/hook","format":"slack","secret_hint":"…xcDZ","active":true,"created_at":"2026-11-30T17:56:47.357Z","updated_at":"2026-11-30T17:56:47.357Z"}');
INSERT INTO "audit_log" VALUES(21,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407359,'operator','webhook.create','webhook','wh_XxOKzdqoBrBLeZphEfRG','{"id":"wh_XxOKzdqoBrBLeZphEfRG","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":null,"url":"http://127.0.0.1:9/all","format":"json","secret_hint":"…OU4c","active":true,"created_at":"2026-11-30T17:56:47.359Z","updated_at":"2026-11-30T17:56:47.359Z"}');
INSERT INTO "audit_log" VALUES(22,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407372,'system:verifier','resource.state','resource','res_wHnwdTRdY0J01Vz5hLlU','{"from":"pending","to":"verifying","cause":"probe 1 of 2 passed","probe":{"ok":true,"reason":"passed","status":200,"latency_ms":2,"trigger":"admission","headers":{}}}');
INSERT INTO "audit_log" VALUES(23,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407372,'system:verifier','resource.state','resource','res_KUIcas2N6ztZRt5Qwc0n','{"from":"verifying","to":"active","cause":"admitted after 2 passing probes","probe":{"ok":true,"reason":"passed","status":200,"latency_ms":45,"trigger":"admission","headers":{}}}');
INSERT INTO "audit_log" VALUES(24,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407416,'system:verifier','resource.state','resource','res_5rJQJ39hKEAwy77h5GXw','{"from":"pending","to":"verifying","cause":"probe 1 of 2 passed","probe":{"ok":true,"reason":"passed","status":200,"latency_ms":41,"trigger":"admission","headers":{}}}');
INSERT INTO "audit_log" VALUES(25,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407461,'system:verifier','resource.state','resource','res_wHnwdTRdY0J01Vz5hLlU','{"from":"verifying","to":"active","cause":"admitted after 2 passing probes","probe":{"ok":true,"reason":"passed","status":200,"latency_ms":42,"trigger":"admission","headers":{}}}');
INSERT INTO "audit_log" VALUES(26,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407505,'system:verifier','resource.state','resource','res_5rJQJ39hKEAwy77h5GXw','{"from":"verifying","to":"active","cause":"admitted after 2 passing probes","probe":{"ok":true,"reason":"passed","status":200,"latency_ms":42,"trigger":"admission","headers":{}}}');
INSERT INTO "audit_log" VALUES(27,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407764,'operator','project.create','project','prj_0o2xuWFGe6J6UHAcu0Ry','{"id":"prj_0o2xuWFGe6J6UHAcu0Ry","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"tiny","parent_id":null,"pool_ids":["pool_bq32tjBi3y75kXUFAP1Q"],"allowed_models":[],"status":"active","overflow_allowed":false,"overflow_cap_micros":null,"budget":{"monthly_cap_micros":30,"period":{"day":1,"time_zone":"UTC"},"rollover_percent":0,"overage_policy":"approval","alert_thresholds":[50,75,90,100]},"request_limits":{},"rate_limits":{},"enforcement":null,"attributes":{},"created_at":"2026-11-30T17:56:47.764Z","updated_at":"2026-11-30T17:56:47.764Z"}');
INSERT INTO "audit_log" VALUES(28,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407767,'operator','key.create','project_key','key_hvpD8gTU3gKZZ9neGb8I','{"id":"key_hvpD8gTU3gKZZ9neGb8I","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","project_id":"prj_0o2xuWFGe6J6UHAcu0Ry","name":"t","prefix":"qf_pk_OMwc6U","state":"active","allowed_models":[],"budget_cap_micros":null,"rpm":null,"created_by":"operator","created_at":"2026-11-30T17:56:47.767Z","revoked_at":null}');
INSERT INTO "audit_log" VALUES(29,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407770,'key:key_hvpD8gTU3gKZZ9neGb8I','approval.open','approval','apr_X7IiP1QJ02vRhacPgeXF','{"project_id":"prj_0o2xuWFGe6J6UHAcu0Ry","detail":"this request''s worst case ($0.000213 at 100 output tokens) exceeds the $0.000030 left of the budget of project ''tiny'' this period, which ends 2026-12-01T00:00:00Z; set max_tokens lower"}');
INSERT INTO "audit_log" VALUES(30,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407778,'operator','approval.deny','approval','apr_X7IiP1QJ02vRhacPgeXF','{"note":"no"}');
INSERT INTO "audit_log" VALUES(31,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407781,'key:key_hvpD8gTU3gKZZ9neGb8I','approval.open','approval','apr_ykq9c2Np7wpnwOnOnTrL','{"project_id":"prj_0o2xuWFGe6J6UHAcu0Ry","detail":"this request''s worst case ($0.000213 at 100 output tokens) exceeds the $0.000030 left of the budget of project ''tiny'' this period, which ends 2026-12-01T00:00:00Z; set max_tokens lower"}');
INSERT INTO "audit_log" VALUES(32,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407783,'operator','resource.suspend','resource','res_wHnwdTRdY0J01Vz5hLlU','{"from":"active","to":"suspended","reason":"maintenance"}');
INSERT INTO "audit_log" VALUES(33,'ten_MWkZi24Rc5chixt9wQ6Z',1796061407786,'operator','pool.create','pool','pool_bUebXBEa6esZTJ0HNupG','{"id":"pool_bUebXBEa6esZTJ0HNupG","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","name":"spare","description":"","created_at":"2026-11-30T17:56:47.786Z","updated_at":"2026-11-30T17:56:47.786Z"}');
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
, tool_calls INTEGER NOT NULL DEFAULT 0);
INSERT INTO "ledger" VALUES(1,'d22eb69300c91d2e1bede586ed568328',1796061407464,1796061407420,'ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','key_F4T0BnttzN59DU3qFn0X',NULL,'user-0','res_KUIcas2N6ztZRt5Qwc0n','pool_bq32tjBi3y75kXUFAP1Q',0,'openai_compatible','openai','chat.completions','fast-model','fast-model',0,10,5,0,0,20,18,2013,200,NULL,'',NULL,NULL,44588,44463,1,0);
INSERT INTO "ledger" VALUES(2,'d22eb69300c91d2e1bede586ed568329',1796061407508,1796061407467,'ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','key_F4T0BnttzN59DU3qFn0X',NULL,'user-1','res_wHnwdTRdY0J01Vz5hLlU','pool_bq32tjBi3y75kXUFAP1Q',0,'openai_compatible','openai','chat.completions','fast-model','fast-model',0,10,5,0,0,20,0,2013,200,NULL,'',NULL,NULL,41534,41470,1,0);
INSERT INTO "ledger" VALUES(3,'d22eb69300c91d2e1bede586ed56832a',1796061407553,1796061407511,'ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','key_F4T0BnttzN59DU3qFn0X',NULL,'user-2','res_KUIcas2N6ztZRt5Qwc0n','pool_bq32tjBi3y75kXUFAP1Q',0,'openai_compatible','openai','chat.completions','fast-model','fast-model',0,10,5,0,0,20,18,2013,200,NULL,'',NULL,NULL,42157,42023,1,0);
INSERT INTO "ledger" VALUES(4,'d22eb69300c91d2e1bede586ed56832b',1796061407759,1796061407555,'ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','key_F4T0BnttzN59DU3qFn0X',NULL,NULL,'res_KUIcas2N6ztZRt5Qwc0n','pool_bq32tjBi3y75kXUFAP1Q',0,'openai_compatible','openai','chat.completions','stream-model','stream-model',1,10,5,0,0,20,18,17,200,NULL,'',NULL,NULL,203361,1788,1,0);
INSERT INTO "ledger" VALUES(5,'d22eb69300c91d2e1bede586ed56832c',1796061407761,1796061407761,'ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','key_F4T0BnttzN59DU3qFn0X',NULL,NULL,NULL,NULL,0,NULL,'openai','chat.completions','nope-model',NULL,0,0,0,0,0,0,0,0,503,'no_capacity','would_refuse:model_not_allowed',NULL,NULL,266,NULL,0,0);
INSERT INTO "ledger" VALUES(6,'d22eb69300c91d2e1bede586ed56832f',1796061407771,1796061407770,'ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','key_hvpD8gTU3gKZZ9neGb8I',NULL,NULL,NULL,NULL,0,NULL,'openai','chat.completions','fast-model',NULL,0,0,0,0,0,0,0,0,403,'approval_required','',NULL,NULL,1048,NULL,0,0);
INSERT INTO "ledger" VALUES(7,'d22eb69300c91d2e1bede586ed568330',1796061407773,1796061407772,'ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','key_hvpD8gTU3gKZZ9neGb8I',NULL,NULL,NULL,NULL,0,NULL,'openai','chat.completions','fast-model',NULL,0,0,0,0,0,0,0,0,403,'approval_required','',NULL,NULL,262,NULL,0,0);
INSERT INTO "ledger" VALUES(8,'d22eb69300c91d2e1bede586ed568331',1796061407774,1796061407774,'ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','key_hvpD8gTU3gKZZ9neGb8I',NULL,NULL,NULL,NULL,0,NULL,'openai','chat.completions','fast-model',NULL,0,0,0,0,0,0,0,0,403,'approval_required','',NULL,NULL,255,NULL,0,0);
INSERT INTO "ledger" VALUES(9,'d22eb69300c91d2e1bede586ed568334',1796061407781,1796061407781,'ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','key_hvpD8gTU3gKZZ9neGb8I',NULL,NULL,NULL,NULL,0,NULL,'openai','chat.completions','fast-model',NULL,0,0,0,0,0,0,0,0,403,'approval_required','',NULL,NULL,700,NULL,0,0);
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
INSERT INTO "outbox" VALUES(1,'ten_MWkZi24Rc5chixt9wQ6Z','wh_OBkKrJvLXScAJJfkGAIM','evt_vN3d2dojmSJ8dSVYmOpL','webhook.test','{"text":"Quotaflow: test delivery"}','pending',1,1796061412362,NULL,'the endpoint could not be reached',1796061407361,NULL);
INSERT INTO "outbox" VALUES(2,'ten_MWkZi24Rc5chixt9wQ6Z','wh_XxOKzdqoBrBLeZphEfRG','evt_apr_X7IiP1QJ02vRhacPgeXF','approval.requested','{"id":"evt_apr_X7IiP1QJ02vRhacPgeXF","type":"approval.requested","created_at":"2026-11-30T17:56:47.771Z","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","data":{"approval_id":"apr_X7IiP1QJ02vRhacPgeXF","project_id":"prj_0o2xuWFGe6J6UHAcu0Ry","detail":"this request''s worst case ($0.000213 at 100 output tokens) exceeds the $0.000030 left of the budget of project ''tiny'' this period, which ends 2026-12-01T00:00:00Z; set max_tokens lower","model":"fast-model"}}','pending',1,1796061412771,NULL,'the endpoint could not be reached',1796061407771,NULL);
INSERT INTO "outbox" VALUES(3,'ten_MWkZi24Rc5chixt9wQ6Z','wh_XxOKzdqoBrBLeZphEfRG','evt_apr_ykq9c2Np7wpnwOnOnTrL','approval.requested','{"id":"evt_apr_ykq9c2Np7wpnwOnOnTrL","type":"approval.requested","created_at":"2026-11-30T17:56:47.781Z","tenant_id":"ten_MWkZi24Rc5chixt9wQ6Z","data":{"approval_id":"apr_ykq9c2Np7wpnwOnOnTrL","project_id":"prj_0o2xuWFGe6J6UHAcu0Ry","detail":"this request''s worst case ($0.000213 at 100 output tokens) exceeds the $0.000030 left of the budget of project ''tiny'' this period, which ends 2026-12-01T00:00:00Z; set max_tokens lower","model":"fast-model"}}','pending',1,1796061412782,NULL,'the endpoint could not be reached',1796061407781,NULL);
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
INSERT INTO "overflow_offers" VALUES('ofr_rPjEJSItAwBxf5npgfbU','platform-overflow','openai','openai','http://127.0.0.1:40249/v1','["fast-model"]','{"input_per_mtok_micros":3000000,"output_per_mtok_micros":6000000,"cached_input_per_mtok_micros":3000000,"cache_write_per_mtok_micros":3750000}',X'6E1DFD81F84BB2BD4C3BB7469515E69439BAE9B3039BD9F376C5F3F29965697BAD67A47631838E34A4943A7D10','…ream',1,1796061407330,1796061407330);
CREATE TABLE pools (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
INSERT INTO "pools" VALUES('pool_bq32tjBi3y75kXUFAP1Q','ten_MWkZi24Rc5chixt9wQ6Z','engineering','shared',1796061407318,1796061407318);
INSERT INTO "pools" VALUES('pool_bUebXBEa6esZTJ0HNupG','ten_MWkZi24Rc5chixt9wQ6Z','spare','',1796061407786,1796061407786);
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
INSERT INTO "price_entries" VALUES('ten_MWkZi24Rc5chixt9wQ6Z','fast-model',1000000,2000000,1000000,1250000,1796061407315);
INSERT INTO "price_entries" VALUES('ten_MWkZi24Rc5chixt9wQ6Z','stream-model',1000000,2000000,1000000,1250000,1796061407315);
INSERT INTO "price_entries" VALUES('ten_MWkZi24Rc5chixt9wQ6Z','cheap-model',1000000,2000000,1000000,1250000,1796061407315);
INSERT INTO "price_entries" VALUES('ten_MWkZi24Rc5chixt9wQ6Z','gpt-4.1*',2000000,8000000,500000,2500000,1796061407315);
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
INSERT INTO "probe_results" VALUES(1,'ten_MWkZi24Rc5chixt9wQ6Z','res_KUIcas2N6ztZRt5Qwc0n',1796061407325,1,3,200,'passed','[{"check":"reachable","ok":true,"detail":"answered in 3 ms"},{"check":"credential","ok":true,"detail":"accepted"},{"check":"models","ok":true,"detail":"the models list includes the claimed models"}]','{}','admission');
INSERT INTO "probe_results" VALUES(2,'ten_MWkZi24Rc5chixt9wQ6Z','res_wHnwdTRdY0J01Vz5hLlU',1796061407372,1,2,200,'passed','[{"check":"reachable","ok":true,"detail":"answered in 2 ms"},{"check":"credential","ok":true,"detail":"accepted"},{"check":"models","ok":true,"detail":"the models list includes the claimed models"},{"check":"completion","ok":true,"detail":"1-token completion with fast-model succeeded"}]','{}','admission');
INSERT INTO "probe_results" VALUES(3,'ten_MWkZi24Rc5chixt9wQ6Z','res_KUIcas2N6ztZRt5Qwc0n',1796061407372,1,45,200,'passed','[{"check":"reachable","ok":true,"detail":"answered in 45 ms"},{"check":"credential","ok":true,"detail":"accepted"},{"check":"models","ok":true,"detail":"the models list includes the claimed models"}]','{}','admission');
INSERT INTO "probe_results" VALUES(4,'ten_MWkZi24Rc5chixt9wQ6Z','res_5rJQJ39hKEAwy77h5GXw',1796061407416,1,41,200,'passed','[{"check":"reachable","ok":true,"detail":"answered in 41 ms"},{"check":"credential","ok":true,"detail":"accepted"},{"check":"models","ok":true,"detail":"the models list includes the claimed models"}]','{}','admission');
INSERT INTO "probe_results" VALUES(5,'ten_MWkZi24Rc5chixt9wQ6Z','res_wHnwdTRdY0J01Vz5hLlU',1796061407461,1,42,200,'passed','[{"check":"reachable","ok":true,"detail":"answered in 42 ms"},{"check":"credential","ok":true,"detail":"accepted"},{"check":"models","ok":true,"detail":"the models list includes the claimed models"},{"check":"completion","ok":true,"detail":"1-token completion with fast-model succeeded"}]','{}','admission');
INSERT INTO "probe_results" VALUES(6,'ten_MWkZi24Rc5chixt9wQ6Z','res_5rJQJ39hKEAwy77h5GXw',1796061407505,1,42,200,'passed','[{"check":"reachable","ok":true,"detail":"answered in 42 ms"},{"check":"credential","ok":true,"detail":"accepted"},{"check":"models","ok":true,"detail":"the models list includes the claimed models"}]','{}','admission');
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
INSERT INTO "project_keys" VALUES('key_F4T0BnttzN59DU3qFn0X','ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','svc','qf_pk_KQmQmV','58f1abc286a9321365bb31e42851964ec5cdd731bdf22ac41a453a0ce3f4eebc','["fast-model","stream-model"]',5000000,30,'operator',1796061407339,NULL);
INSERT INTO "project_keys" VALUES('key_MhDdjwNFB0GIRze0UKbC','ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','old','qf_pk_IVlEaU','bbdc344ed3e58dac49e5a99fed69aae3a026b9527b3b777119e0f21d730c5c2e','[]',NULL,NULL,'operator',1796061407341,1796061407343);
INSERT INTO "project_keys" VALUES('key_hvpD8gTU3gKZZ9neGb8I','ten_MWkZi24Rc5chixt9wQ6Z','prj_0o2xuWFGe6J6UHAcu0Ry','t','qf_pk_OMwc6U','a75d305122f914d8e9216bb5a9248a13dc99bc0659ef8743459830b598801d45','[]',NULL,NULL,'operator',1796061407767,NULL);
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
INSERT INTO "projects" VALUES('prj_Gg61GggWngzdsFtZ03KV','ten_MWkZi24Rc5chixt9wQ6Z','division',NULL,'["pool_bq32tjBi3y75kXUFAP1Q"]','[]','active','{"overflow_allowed":false,"budget":{"monthly_cap_micros":800000000,"period":{"day":1,"time_zone":"UTC"},"rollover_percent":0,"overage_policy":"reject","alert_thresholds":[50,75,90,100]},"request_limits":{},"rate_limits":{}}','{}',1796061407334,1796061407334);
INSERT INTO "projects" VALUES('prj_MMnLPC2sEDRqXBQkGQPE','ten_MWkZi24Rc5chixt9wQ6Z','checkout','prj_Gg61GggWngzdsFtZ03KV','["pool_bq32tjBi3y75kXUFAP1Q"]','["fast-model","stream-model","cheap-model"]','active','{"overflow_allowed":true,"overflow_cap_micros":50000000,"budget":{"monthly_cap_micros":100000000,"period":{"day":1,"time_zone":"UTC"},"rollover_percent":20,"overage_policy":"fallback_model","fallback":{"model":"cheap-model","max_output_tokens":256,"cap_micros":10000000},"alert_thresholds":[50,90]},"request_limits":{"max_output_tokens":1000},"rate_limits":{"rpm":100,"rpm_per_key":50,"rpm_per_user":10,"tpm":100000},"enforcement":"audit"}','{"cost_center":"ENG-42","owner":"ada"}',1796061407336,1796061407336);
INSERT INTO "projects" VALUES('prj_0o2xuWFGe6J6UHAcu0Ry','ten_MWkZi24Rc5chixt9wQ6Z','tiny',NULL,'["pool_bq32tjBi3y75kXUFAP1Q"]','[]','active','{"overflow_allowed":false,"budget":{"monthly_cap_micros":30,"period":{"day":1,"time_zone":"UTC"},"rollover_percent":0,"overage_policy":"approval","alert_thresholds":[50,75,90,100]},"request_limits":{},"rate_limits":{}}','{}',1796061407764,1796061407764);
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
    updated_at            INTEGER NOT NULL, health_json TEXT NOT NULL DEFAULT '{}', egress_exempt INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, name)
);
INSERT INTO "resources" VALUES('res_KUIcas2N6ztZRt5Qwc0n','ten_MWkZi24Rc5chixt9wQ6Z','pool_bq32tjBi3y75kXUFAP1Q','team-key','api_key','openai_compatible','openai','http://127.0.0.1:40249/v1',X'F1CAC4039608EF0A0D182E1C57B5B42F5B4356CF346EE96265157A58AA02BD943D9B56C510B9F97D2811402B2F','…ream','["fast-model","stream-model"]','platform','{"by":"cto@compat.example","at":"2026-11-01T00:00:00Z","note":"org plan"}','engineering only','{"type":"per_token","input_per_mtok_micros":900000,"output_per_mtok_micros":1800000,"cached_input_per_mtok_micros":900000,"cache_write_per_mtok_micros":1125000}','{"max_concurrency":8,"rpm":600,"tpm":200000,"windows":[{"requests":500,"window_seconds":18000}],"monthly_spend_cap_micros":500000000}','shared','{"completion":false}','active','admitted after 2 passing probes',1796061407372,NULL,0,NULL,NULL,1796061407320,1796061407372,'{"consecutive_ok":2,"consecutive_fail":0,"last_probe_at":1796061407372,"next_probe_at":1796061684475,"learned":{}}',1);
INSERT INTO "resources" VALUES('res_wHnwdTRdY0J01Vz5hLlU','ten_MWkZi24Rc5chixt9wQ6Z','pool_bq32tjBi3y75kXUFAP1Q','team-seat','seat','openai_compatible','openai','http://127.0.0.1:40249/v1',X'3E1ECD4B33F70CD6F390F8F6B9F367B2EB3F5957BB27E036766D0F58CF59F2FE594536C00F38653C1E0462332A','…ream','["fast-model"]','ops','{"by":"cto@compat.example","at":"2026-11-01T00:00:00Z","note":"org plan"}','','{"type":"flat_monthly","monthly_fee_micros":200000000}','{"windows":[]}','exclusive','{"completion":true,"model":"fast-model","waiver":{"by":"cto","note":"relay"}}','suspended','suspended by operator: maintenance',1796061407783,NULL,1,NULL,NULL,1796061407325,1796061407783,'{"consecutive_ok":2,"consecutive_fail":0,"last_probe_at":1796061407461,"next_probe_at":1796061691395,"learned":{}}',1);
INSERT INTO "resources" VALUES('res_5rJQJ39hKEAwy77h5GXw','ten_MWkZi24Rc5chixt9wQ6Z','pool_bq32tjBi3y75kXUFAP1Q','overflow','overflow','openai','openai','http://127.0.0.1:40249/v1',NULL,'…ream','["fast-model"]','','{"by":"cto@compat.example","at":"2026-11-01T00:00:00Z","note":"org plan"}','','{"type":"per_token","input_per_mtok_micros":3000000,"output_per_mtok_micros":6000000,"cached_input_per_mtok_micros":3000000,"cache_write_per_mtok_micros":3750000}','{"windows":[]}','shared','{"completion":false}','active','admitted after 2 passing probes',1796061407505,NULL,0,'ofr_rPjEJSItAwBxf5npgfbU',100000000,1796061407332,1796061407505,'{"consecutive_ok":2,"consecutive_fail":0,"last_probe_at":1796061407505,"next_probe_at":1796061690891,"learned":{}}',0);
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
INSERT INTO "schema_migrations" VALUES(1,'0001_foundation.sql',1796061407288);
INSERT INTO "schema_migrations" VALUES(2,'0002_data_plane.sql',1796061407288);
INSERT INTO "schema_migrations" VALUES(3,'0003_seats.sql',1796061407288);
INSERT INTO "schema_migrations" VALUES(4,'0004_budgets_alerts.sql',1796061407289);
INSERT INTO "schema_migrations" VALUES(5,'0005_health.sql',1796061407289);
INSERT INTO "schema_migrations" VALUES(6,'0006_hardening.sql',1796061407290);
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
INSERT INTO "seats" VALUES('seat_ncA3MKJ9rZQwJVC9H34Y','ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','Ada (contractor)','ada@example.com','sprint','qf_sk_gtlb8u','de52fbe0020ee0cb073344d549334f7c33cb314ecbcc5fee2b36a960b9fbf493','4bbc84f937cd05a0e6f2e0fb41c429e9d813885b00b0e8b0c29106fcea86f42b',1796065007348,1797271007345,40000000,20,'["fast-model"]',NULL,NULL,'operator',1796061407345,1796061407348);
INSERT INTO "seats" VALUES('seat_Rq6QHoGtK4OhG8A33zpQ','ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','Bob','','','qf_sk_DliVbF','b274419a182209a50c6108a3a9f63818b89575e5950b2b7d20c719779af51af8',NULL,NULL,1796147807350,NULL,NULL,'[]',1796061407353,NULL,'operator',1796061407350,1796061407353);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO "settings" VALUES('master_key_check','lpq/IAYNF1oPta9gUL+P/PY0CPfumjuJtvx/NFEfIsstgqW12Nfl7xUJXWEGj0h5kvbBuNdO');
CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    settings_json TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
INSERT INTO "tenants" VALUES('ten_MWkZi24Rc5chixt9wQ6Z','compat-co','active','{"monthly_limit_micros":900000000,"period":{"day":5,"time_zone":"Europe/Berlin"},"request_limits":{"max_output_tokens":4000,"max_input_tokens":100000,"max_cost_micros":2000000},"enforcement":"enforce","default_price":{"input_per_mtok_micros":1000000,"output_per_mtok_micros":2000000,"cached_input_per_mtok_micros":1000000,"cache_write_per_mtok_micros":1250000},"max_seat_duration_seconds":2592000,"hash_end_users":false,"lease_idle_seconds":300,"alert_thresholds":[50,80,100],"tool_call_price_micros":12000}',1796061407312,1796061407312);
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
INSERT INTO "webhooks" VALUES('wh_OBkKrJvLXScAJJfkGAIM','ten_MWkZi24Rc5chixt9wQ6Z','prj_MMnLPC2sEDRqXBQkGQPE','http://127.0.0.1:9/hook','slack',X'B7341D6633A1E4950B35869448E411E2F2CEC87AF01B35D27CC6F68CB4C6204A1CE263D4467C0AC14D8DAE3B739D46D3B506A82F735816687DE6CAD70C202E6DA43B','…xcDZ',1,1796061407357,1796061407357);
INSERT INTO "webhooks" VALUES('wh_XxOKzdqoBrBLeZphEfRG','ten_MWkZi24Rc5chixt9wQ6Z',NULL,'http://127.0.0.1:9/all','json',X'34BEBCD07F8B073AE5719442C011D2173FD43DD5D6274DA657717F0BD2DE5C0EC207054CF175BB36CE47476045ADF1DBF5F4F4CB0EE96392B379CE8F7CE421D2E653','…OU4c',1,1796061407359,1796061407359);
CREATE INDEX admin_keys_tenant ON admin_keys(tenant_id);
CREATE INDEX resources_pool ON resources(pool_id);
CREATE INDEX project_keys_project ON project_keys(project_id);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
CREATE INDEX ledger_tenant_seq ON ledger(tenant_id, seq);
CREATE INDEX ledger_tenant_at ON ledger(tenant_id, at);
CREATE INDEX seats_project ON seats(tenant_id, project_id);
CREATE INDEX approvals_tenant ON approvals(tenant_id, status);
CREATE INDEX webhooks_tenant ON webhooks(tenant_id);
CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
CREATE INDEX outbox_tenant ON outbox(tenant_id, id);
CREATE INDEX probe_results_resource ON probe_results(resource_id, id);
CREATE UNIQUE INDEX approvals_one_open ON approvals(project_id, COALESCE(key_id, '')) WHERE status = 'open';
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('audit_log',33);
INSERT INTO "sqlite_sequence" VALUES('probe_results',6);
INSERT INTO "sqlite_sequence" VALUES('outbox',3);
COMMIT;
