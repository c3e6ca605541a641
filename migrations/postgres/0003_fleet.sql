-- A fleet of replicas on one database.
--
-- catalog_log: every catalog change, in commit order, for the other replicas to apply. The trigger
-- takes a transaction-scoped advisory lock before it numbers a change, so a change's number is drawn
-- only after every earlier catalog transaction committed: a replica that read up to n has seen every
-- change numbered n or less. Each change also notifies channel qf_catalog (delivered at commit).
--
-- fleet_counters: each budget counter's spend and holds for one period, shared by every replica.
-- Admission holds a request's worst case on every capped level in one statement (qf_fleet_hold),
-- in a fixed order, each only if it still fits; settlement moves holds to spend in the ledger's
-- transaction (qf_fleet_apply).
--
-- fleet_reservations: the holds of each admitted request until its ledger row commits, with the
-- replica that holds them. A replica that stops heartbeating in fleet_replicas leaves them behind;
-- the leader settles them at their worst case with a flagged ledger row.

CREATE TABLE catalog_log (
    seq  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    id   TEXT NOT NULL
);

CREATE OR REPLACE FUNCTION qf_track_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD) ->> TG_ARGV[1];
    ELSE
        changed := to_jsonb(NEW) ->> TG_ARGV[1];
    END IF;
    PERFORM pg_advisory_xact_lock(124788441408882);
    INSERT INTO catalog_log (kind, id) VALUES (TG_ARGV[0], changed);
    PERFORM pg_notify('qf_catalog', '');
    IF to_regclass('pg_temp.catalog_changes') IS NOT NULL THEN
        INSERT INTO pg_temp.catalog_changes (kind, id) VALUES (TG_ARGV[0], changed) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TABLE fleet_counters (
    key          TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    spent        BIGINT NOT NULL DEFAULT 0,
    reserved     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key, period_start)
);

CREATE TABLE fleet_replicas (
    id           TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE fleet_reservations (
    id                 TEXT PRIMARY KEY,
    replica            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    -- What a ledger row needs if the replica dies: who, what, and the worst cases.
    started_at         BIGINT NOT NULL,
    tenant_id          TEXT NOT NULL,
    project_id         TEXT NOT NULL,
    key_id             TEXT,
    seat_id            TEXT,
    resource_id        TEXT,
    overflow           BIGINT NOT NULL,
    overage            TEXT,
    overage_project_id TEXT,
    wire_format        TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    model              TEXT NOT NULL,
    worst_micros       BIGINT NOT NULL,
    upstream_worst     BIGINT NOT NULL,
    hold_keys          TEXT[] NOT NULL,
    hold_periods       BIGINT[] NOT NULL,
    hold_amounts       BIGINT[] NOT NULL,
    -- Exclusive seats this request leased (released when it settles).
    lease_resources    TEXT[] NOT NULL DEFAULT '{}'
);

-- Exclusive seats: one holder at a time across the fleet, until the seat has been idle (nothing in
-- flight on any replica) for idle_ms. Each replica counts its own requests in flight, so a dead
-- replica's count can be dropped without touching the others'.
CREATE TABLE fleet_leases (
    resource_id TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    last_active BIGINT NOT NULL
);

CREATE TABLE fleet_lease_uses (
    resource_id TEXT NOT NULL,
    replica     TEXT NOT NULL,
    in_flight   BIGINT NOT NULL,
    PRIMARY KEY (resource_id, replica)
);

-- Holds amounts(i) on counter (keys(i), periods(i)) for every i, in the order given (callers sort
-- them), each only while spent + reserved + amount <= limits(i) (a negative limit: no cap). A new
-- counter starts at initials(i), the creator's count from the ledger. Raises SQLSTATE QF001 with the
-- index of the first level that does not fit, undoing every hold; returns each counter's spend.
CREATE FUNCTION qf_fleet_hold(keys TEXT[], periods BIGINT[], limits BIGINT[], amounts BIGINT[], initials BIGINT[])
RETURNS BIGINT[] LANGUAGE plpgsql AS $$
DECLARE
    out BIGINT[] := '{}';
    s BIGINT;
BEGIN
    FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
        UPDATE fleet_counters SET reserved = reserved + amounts[i]
         WHERE key = keys[i] AND period_start = periods[i] AND (limits[i] < 0 OR spent + reserved + amounts[i] <= limits[i])
        RETURNING spent INTO s;
        IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM fleet_counters WHERE key = keys[i] AND period_start = periods[i]) THEN
            -- A new counter: made once (by whoever comes first), then held as any other.
            INSERT INTO fleet_counters (key, period_start, spent) VALUES (keys[i], periods[i], initials[i]) ON CONFLICT DO NOTHING;
            UPDATE fleet_counters SET reserved = reserved + amounts[i]
             WHERE key = keys[i] AND period_start = periods[i] AND (limits[i] < 0 OR spent + reserved + amounts[i] <= limits[i])
            RETURNING spent INTO s;
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'QF001', MESSAGE = (i - 1)::TEXT;
        END IF;
        out := out || s;
    END LOOP;
    RETURN out;
END
$$;

-- Settles: deletes the reservations named (releasing exactly what each still holds; one already
-- settled by someone else releases nothing) and adds spend. Every counter is changed once, in key
-- order, so concurrent settlements and holds cannot deadlock. Returns (key, period_start, spent).
CREATE FUNCTION qf_fleet_apply(ids TEXT[], keys TEXT[], periods BIGINT[], amounts BIGINT[], initials BIGINT[], now_ms BIGINT)
RETURNS TABLE (key TEXT, period_start BIGINT, spent BIGINT) LANGUAGE plpgsql AS $$
BEGIN
    -- plpgsql rather than SQL: its statements' plans are kept for the session.
    RETURN QUERY
    WITH gone AS (
        DELETE FROM fleet_reservations r WHERE r.id = ANY(ids)
        RETURNING r.replica, r.hold_keys, r.hold_periods, r.hold_amounts, r.lease_resources
    ), leases AS (
        SELECT u.res, gone.replica, count(*) AS n FROM gone, unnest(gone.lease_resources) AS u(res) GROUP BY u.res, gone.replica
    ), used AS (
        UPDATE fleet_lease_uses f SET in_flight = greatest(f.in_flight - l.n, 0) FROM leases l
         WHERE f.resource_id = l.res AND f.replica = l.replica RETURNING f.resource_id
    ), touched AS (
        UPDATE fleet_leases f SET last_active = greatest(f.last_active, now_ms) WHERE f.resource_id IN (SELECT u.resource_id FROM used u)
        RETURNING f.resource_id
    ), deltas AS (
        SELECT c.k, c.p, sum(c.released)::BIGINT AS released, sum(c.charged)::BIGINT AS charged, max(c.initial) AS initial FROM (
            SELECT u.k, u.p, u.a AS released, 0::BIGINT AS charged, 0::BIGINT AS initial
              FROM gone, unnest(gone.hold_keys, gone.hold_periods, gone.hold_amounts) AS u(k, p, a)
            UNION ALL
            SELECT u.k, u.p, 0, u.a, u.i FROM unnest(keys, periods, amounts, initials) AS u(k, p, a, i)
        ) c GROUP BY c.k, c.p
    )
    INSERT INTO fleet_counters AS f (key, period_start, spent, reserved)
    SELECT d.k, d.p, d.initial + d.charged, -d.released FROM deltas d ORDER BY d.k, d.p
    ON CONFLICT ON CONSTRAINT fleet_counters_pkey DO UPDATE
       SET spent = f.spent + excluded.spent - (SELECT d2.initial FROM deltas d2 WHERE d2.k = f.key AND d2.p = f.period_start),
           reserved = greatest(f.reserved + excluded.reserved, 0)
    RETURNING f.key, f.period_start, f.spent;
END
$$;

-- Rate limits shared by the fleet: one GCRA state (theoretical arrival time, ms) per limiter.
CREATE TABLE fleet_limiters (
    key TEXT PRIMARY KEY,
    tat DOUBLE PRECISION NOT NULL
);

-- Takes costs(i) units of limits(i) per minute from every limiter keys(i) (in the order given;
-- callers sort them), or none: raises SQLSTATE QF002 with "index wait_ms" for the first that is
-- exhausted. now_ms is the caller's clock.
CREATE FUNCTION qf_fleet_take(keys TEXT[], limits BIGINT[], costs BIGINT[], now_ms BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    cur DOUBLE PRECISION;
    nt DOUBLE PRECISION;
BEGIN
    FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
        INSERT INTO fleet_limiters (key, tat) VALUES (keys[i], 0) ON CONFLICT DO NOTHING;
        SELECT l.tat INTO cur FROM fleet_limiters l WHERE l.key = keys[i] FOR UPDATE;
        nt := greatest(cur, now_ms::DOUBLE PRECISION) + 60000.0 / limits[i] * greatest(costs[i], 0);
        IF now_ms < nt - 60000 THEN
            RAISE EXCEPTION USING ERRCODE = 'QF002', MESSAGE = (i - 1)::TEXT || ' ' || ceil(nt - 60000 - now_ms)::BIGINT::TEXT;
        END IF;
        UPDATE fleet_limiters SET tat = nt WHERE key = keys[i];
    END LOOP;
END
$$;

-- Leases res to who for one more request on replica rep, or raises SQLSTATE QF003 when another
-- holder has it and it is not idle.
CREATE FUNCTION qf_fleet_lease(res TEXT, who TEXT, rep TEXT, idle_ms BIGINT, now_ms BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    cur_holder TEXT;
    cur_active BIGINT;
    busy BIGINT;
BEGIN
    INSERT INTO fleet_leases (resource_id, holder, last_active) VALUES (res, who, now_ms) ON CONFLICT DO NOTHING;
    SELECT l.holder, l.last_active INTO cur_holder, cur_active FROM fleet_leases l WHERE l.resource_id = res FOR UPDATE;
    IF cur_holder <> who THEN
        SELECT coalesce(sum(u.in_flight), 0) INTO busy FROM fleet_lease_uses u WHERE u.resource_id = res;
        IF busy > 0 OR now_ms - cur_active < idle_ms THEN
            RAISE EXCEPTION USING ERRCODE = 'QF003', MESSAGE = res;
        END IF;
    END IF;
    UPDATE fleet_leases SET holder = who, last_active = greatest(last_active, now_ms) WHERE resource_id = res;
    INSERT INTO fleet_lease_uses (resource_id, replica, in_flight) VALUES (res, rep, 1)
    ON CONFLICT (resource_id, replica) DO UPDATE SET in_flight = fleet_lease_uses.in_flight + 1;
    RETURN TRUE;
END
$$;

-- Admission's one round trip: records reservation id (the fields a ledger row needs if its replica
-- dies), holds its levels (qf_fleet_hold) and leases its exclusive seat (when lease_res is not null),
-- all or nothing. Returns each level's spend as text. One function call, so its statements' plans
-- are kept for the session.
CREATE FUNCTION qf_fleet_reserve(
    p_id TEXT, p_replica TEXT, p_started_at BIGINT, p_tenant TEXT, p_project TEXT, p_key TEXT, p_seat TEXT, p_resource TEXT,
    p_overflow BIGINT, p_overage TEXT, p_overage_project TEXT, p_wire_format TEXT, p_endpoint TEXT, p_model TEXT,
    p_worst BIGINT, p_upstream_worst BIGINT,
    keys TEXT[], periods BIGINT[], limits BIGINT[], amounts BIGINT[], initials BIGINT[],
    lease_res TEXT, lease_holder TEXT, lease_idle_ms BIGINT, lease_now BIGINT)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    spent BIGINT[];
BEGIN
    INSERT INTO fleet_reservations (id, replica, created_at, started_at, tenant_id, project_id, key_id, seat_id, resource_id, overflow,
        overage, overage_project_id, wire_format, endpoint, model, worst_micros, upstream_worst, hold_keys, hold_periods, hold_amounts,
        lease_resources)
    VALUES (p_id, p_replica, (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, p_started_at, p_tenant, p_project, p_key, p_seat,
        p_resource, p_overflow, p_overage, p_overage_project, p_wire_format, p_endpoint, p_model, p_worst, p_upstream_worst, keys, periods,
        amounts, CASE WHEN lease_res IS NULL THEN '{}'::TEXT[] ELSE ARRAY[lease_res] END);
    spent := qf_fleet_hold(keys, periods, limits, amounts, initials);
    IF lease_res IS NOT NULL THEN
        PERFORM qf_fleet_lease(lease_res, lease_holder, p_replica, lease_idle_ms, lease_now);
    END IF;
    RETURN spent::TEXT;
END
$$;
