"""
The PostgreSQL state backend's schema: its tables and the ``admit`` function (rings of admission
times, one transaction under an advisory lock on the scope), in one DDL text per schema.
"""

from __future__ import annotations

from airflow_provider_bridge.state.adaptive import KEEP_SECONDS, REPROBE_SECONDS

#: bump when the tables or functions change (the set-up re-runs when the stored one differs)
SCHEMA_VERSION = "4"
#: the server's clock, in UNIX seconds: every time the backend keeps is the server's
NOW = "extract(epoch from clock_timestamp())"


#: seconds without a 429 after which a learned cap is forgotten; how long a learned record is kept
REPROBE = repr(REPROBE_SECONDS)
KEEP = repr(KEEP_SECONDS)


def ddl(schema: str) -> str:
    """The tables and functions of the backend in ``schema`` (idempotent)."""
    return f"""
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.meta (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS {schema}.kv (
    namespace text NOT NULL, key text NOT NULL, value text NOT NULL,
    version bigint NOT NULL, expires_at double precision, updated_at double precision NOT NULL,
    PRIMARY KEY (namespace, key));
CREATE TABLE IF NOT EXISTS {schema}.locks (
    name text PRIMARY KEY, holder text NOT NULL, fence bigint NOT NULL,
    expires_at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {schema}.pauses (scope text PRIMARY KEY, until double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {schema}.rate_head (
    wkey text PRIMARY KEY, scope text NOT NULL, lim integer NOT NULL, seconds double precision NOT NULL,
    next_n bigint NOT NULL, last_at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {schema}.rate_ring (
    wkey text NOT NULL, slot integer NOT NULL, at double precision NOT NULL, PRIMARY KEY (wkey, slot));

-- the first step of every admission: lock the scope for the transaction, read the server's
-- clock, and say how long the scope's shared pause still holds (0: none)
CREATE OR REPLACE FUNCTION {schema}.lock_scope(
    p_scope text, OUT now double precision, OUT paused double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_until double precision;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('{schema}|' || p_scope, 0));
    now := {NOW};
    SELECT p.until INTO v_until FROM {schema}.pauses p WHERE p.scope = p_scope;
    paused := greatest(0, coalesce(v_until, 0) - now);
END $$;

CREATE OR REPLACE FUNCTION {schema}.admit(
    p_scope text, p_keys text[], p_limits integer[], p_seconds double precision[])
RETURNS TABLE (wait double precision, paused boolean, server_now double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision;
    v_until double precision;
    v_wait double precision := 0;
    v_next bigint;
    v_at double precision;
    v_nexts bigint[] := '{{}}';
BEGIN
    SELECT l.now, l.paused INTO v_now, v_until FROM {schema}.lock_scope(p_scope) l;
    IF v_until > 0 THEN
        RETURN QUERY SELECT v_until, true, v_now;
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        SELECT h.next_n INTO v_next FROM {schema}.rate_head h WHERE h.wkey = p_keys[i];
        v_next := coalesce(v_next, 0);
        v_nexts := v_nexts || v_next;
        IF v_next >= p_limits[i] THEN
            SELECT r.at INTO v_at FROM {schema}.rate_ring r
                WHERE r.wkey = p_keys[i] AND r.slot = (v_next % p_limits[i])::integer;
            IF v_at IS NOT NULL AND v_at + p_seconds[i] > v_now THEN
                v_wait := greatest(v_wait, v_at + p_seconds[i] - v_now);
            END IF;
        END IF;
    END LOOP;
    IF v_wait > 0 THEN
        RETURN QUERY SELECT v_wait, false, v_now;
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        INSERT INTO {schema}.rate_ring AS r (wkey, slot, at)
            VALUES (p_keys[i], (v_nexts[i] % p_limits[i])::integer, v_now)
            ON CONFLICT (wkey, slot) DO UPDATE SET at = excluded.at;
        INSERT INTO {schema}.rate_head AS h (wkey, scope, lim, seconds, next_n, last_at)
            VALUES (p_keys[i], p_scope, p_limits[i], p_seconds[i], v_nexts[i] + 1, v_now)
            ON CONFLICT (wkey) DO UPDATE SET next_n = excluded.next_n, last_at = excluded.last_at;
    END LOOP;
    RETURN QUERY SELECT 0::double precision, false, v_now;
END $$;

-- a ring of p_size admissions under a limit of p_eff (<= p_size): when it next admits
CREATE OR REPLACE FUNCTION {schema}.ring_free_at(
    p_key text, p_size integer, p_eff integer, p_seconds double precision, p_next bigint,
    p_now double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    v_at double precision;
BEGIN
    IF p_next >= p_eff THEN
        SELECT r.at INTO v_at FROM {schema}.rate_ring r
            WHERE r.wkey = p_key AND r.slot = ((p_next - p_eff) % p_size)::integer;
        IF v_at IS NOT NULL AND v_at + p_seconds > p_now THEN
            RETURN v_at + p_seconds;
        END IF;
    END IF;
    RETURN p_now;
END $$;

-- adaptive windows: the algorithm of backend.ring_admit with learned limits (state/adaptive.py)
CREATE OR REPLACE FUNCTION {schema}.admit_adaptive(
    p_scope text, p_keys text[], p_limits integer[], p_seconds double precision[], p_adaptive jsonb)
RETURNS TABLE (wait double precision, paused boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision;
    v_until double precision;
    v_wait double precision := 0;
    v_next bigint;
    v_nexts bigint[] := '{{}}';
    v_eff integer;
    v_cap integer;
    v_learn jsonb;
    v_rec jsonb;
    v_free double precision;
    v_quiet double precision;
BEGIN
    SELECT l.now, l.paused INTO v_now, v_until FROM {schema}.lock_scope(p_scope) l;
    IF v_until > 0 THEN
        RETURN QUERY SELECT v_until, true;
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        v_next := NULL;
        SELECT h.next_n INTO v_next FROM {schema}.rate_head h WHERE h.wkey = p_keys[i];
        v_next := coalesce(v_next, 0);
        v_nexts := v_nexts || v_next;
        v_learn := p_adaptive->(i - 1);
        IF v_learn IS NULL OR jsonb_typeof(v_learn) <> 'object' THEN
            v_free := {schema}.ring_free_at(p_keys[i], p_limits[i], p_limits[i], p_seconds[i], v_next, v_now);
        ELSE
            v_rec := NULL;
            SELECT k.value::jsonb INTO v_rec FROM {schema}.kv k
                WHERE k.namespace = 'rate_learned' AND k.key = v_learn->>'key'
                AND (k.expires_at IS NULL OR k.expires_at > v_now);
            IF v_rec IS NULL THEN  -- learning starts now: the first quiet period counts from here
                v_rec := jsonb_build_object('eff', (v_learn->>'start')::integer, 'cap', p_limits[i],
                    'changed', v_now, 'last_429', 0, 'lowered', 0,
                    'scope', p_scope, 'seconds', p_seconds[i], 'ceiling', p_limits[i]);
                INSERT INTO {schema}.kv AS k (namespace, key, value, version, expires_at, updated_at)
                    VALUES ('rate_learned', v_learn->>'key', v_rec::text, 1, v_now + {KEEP}, v_now)
                    ON CONFLICT (namespace, key) DO NOTHING;
            END IF;
            v_eff := (v_rec->>'eff')::integer;
            v_free := {schema}.ring_free_at(p_keys[i], p_limits[i], v_eff, p_seconds[i], v_next, v_now);
            IF v_free > v_now THEN
                v_cap := CASE WHEN v_now - (v_rec->>'last_429')::double precision >= {REPROBE}
                    THEN p_limits[i] ELSE (v_rec->>'cap')::integer END;
                v_quiet := (v_learn->>'quiet')::double precision;
                IF v_now - (v_rec->>'changed')::double precision >= v_quiet
                   AND v_now - (v_rec->>'last_429')::double precision >= v_quiet AND v_eff < v_cap THEN
                    v_eff := least(v_cap, v_eff + (v_learn->>'step')::integer);
                    v_rec := v_rec || jsonb_build_object('eff', v_eff, 'cap', v_cap, 'changed', v_now,
                        'scope', p_scope, 'seconds', p_seconds[i], 'ceiling', p_limits[i]);
                    INSERT INTO {schema}.kv AS k (namespace, key, value, version, expires_at, updated_at)
                        VALUES ('rate_learned', v_learn->>'key', v_rec::text, 1, v_now + {KEEP}, v_now)
                        ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
                            version = k.version + 1, expires_at = excluded.expires_at,
                            updated_at = excluded.updated_at;
                    v_free := {schema}.ring_free_at(
                        p_keys[i], p_limits[i], v_eff, p_seconds[i], v_next, v_now);
                END IF;
            END IF;
        END IF;
        v_wait := greatest(v_wait, v_free - v_now);
    END LOOP;
    IF v_wait > 0 THEN
        RETURN QUERY SELECT v_wait, false;
        RETURN;
    END IF;
    FOR i IN 1 .. cardinality(p_keys) LOOP
        PERFORM {schema}.ring_take(p_keys[i], p_scope, p_limits[i], p_seconds[i], v_nexts[i], v_now);
    END LOOP;
    RETURN QUERY SELECT 0::double precision, false;
END $$;

-- one ring: how many admissions it holds, and when it next has a free slot (p_now: free now)
CREATE OR REPLACE FUNCTION {schema}.ring_free(
    p_key text, p_size integer, p_seconds double precision, p_now double precision,
    OUT used bigint, OUT free_at double precision)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT h.next_n INTO used FROM {schema}.rate_head h WHERE h.wkey = p_key;
    used := coalesce(used, 0);
    free_at := {schema}.ring_free_at(p_key, p_size, p_size, p_seconds, used, p_now);
END $$;

CREATE OR REPLACE FUNCTION {schema}.ring_take(
    p_key text, p_scope text, p_size integer, p_seconds double precision, p_used bigint,
    p_now double precision)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.rate_ring AS r (wkey, slot, at)
        VALUES (p_key, (p_used % p_size)::integer, p_now)
        ON CONFLICT (wkey, slot) DO UPDATE SET at = excluded.at;
    INSERT INTO {schema}.rate_head AS h (wkey, scope, lim, seconds, next_n, last_at)
        VALUES (p_key, p_scope, p_size, p_seconds, p_used + 1, p_now)
        ON CONFLICT (wkey) DO UPDATE SET next_n = excluded.next_n, last_at = excluded.last_at;
END $$;

-- priority classes: the algorithm of budget_classes.class_admit, on the same rings, in one call
CREATE OR REPLACE FUNCTION {schema}.admit_classes(p_scope text, p_ask jsonb)
RETURNS TABLE (wait double precision, paused boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision;
    v_until double precision;
    v_me integer := (p_ask->>'me')::integer;
    v_waiting double precision[] := '{{}}';
    v_higher double precision := 0;
    v_wait double precision := 0;
    v_window jsonb;
    v_ring jsonb;
    v_entry jsonb;
    v_taken jsonb := '[]';
    v_seconds double precision;
    v_size integer;
    v_owner integer;
    v_count bigint;
    v_gfree double precision;
    v_used bigint;
    v_free double precision;
    v_last double precision;
    v_best double precision;
    v_choice jsonb;
    v_chosen bigint;
BEGIN
    SELECT l.now, l.paused INTO v_now, v_until FROM {schema}.lock_scope(p_scope) l;
    IF v_until > 0 THEN
        RETURN QUERY SELECT v_until, true;
        RETURN;
    END IF;
    FOR i IN 0 .. jsonb_array_length(p_ask->'waiting') - 1 LOOP
        v_until := NULL;
        SELECT k.value::double precision INTO v_until FROM {schema}.kv k
            WHERE k.namespace = 'rate_waiting' AND k.key = p_ask->'waiting'->>i AND k.expires_at > v_now;
        v_until := coalesce(v_until, 0);
        v_waiting := v_waiting || v_until;
        IF i < v_me AND v_until > v_now THEN
            v_higher := greatest(v_higher, v_until);
        END IF;
    END LOOP;
    FOR v_window IN SELECT value FROM jsonb_array_elements(p_ask->'windows') LOOP
        v_seconds := (v_window->>'seconds')::double precision;
        SELECT f.used, f.free_at INTO v_count, v_gfree
            FROM {schema}.ring_free(v_window->>'key', (v_window->>'limit')::integer, v_seconds, v_now) f;
        v_best := 'Infinity';
        v_choice := NULL;
        FOR v_ring IN SELECT value FROM jsonb_array_elements(v_window->'rings') LOOP
            v_size := (v_ring->>'size')::integer;
            v_owner := (v_ring->>'owner')::integer;
            SELECT f.used, f.free_at INTO v_used, v_free
                FROM {schema}.ring_free(v_ring->>'key', v_size, v_seconds, v_now) f;
            IF v_owner <> v_me THEN
                v_free := greatest(v_free, v_higher);
                IF v_owner >= 0 THEN
                    IF v_waiting[v_owner + 1] > v_now THEN
                        v_free := greatest(v_free, v_waiting[v_owner + 1]);
                    END IF;
                    IF v_used > 0 THEN
                        v_last := NULL;
                        SELECT r.at INTO v_last FROM {schema}.rate_ring r
                            WHERE r.wkey = v_ring->>'key' AND r.slot = ((v_used - 1) % v_size)::integer;
                        IF v_last IS NOT NULL THEN
                            v_free := greatest(v_free, v_last + v_seconds / v_size);
                        END IF;
                    END IF;
                    IF v_size >= 2 AND v_used >= v_size - 1 THEN  -- one slot stays for its owner
                        v_last := NULL;
                        SELECT r.at INTO v_last FROM {schema}.rate_ring r
                            WHERE r.wkey = v_ring->>'key' AND r.slot = ((v_used + 1) % v_size)::integer;
                        IF v_last IS NOT NULL THEN
                            v_free := greatest(v_free, v_last + v_seconds);
                        END IF;
                    END IF;
                END IF;
            END IF;
            IF v_free < v_best THEN
                v_best := v_free;
                v_choice := v_ring;
                v_chosen := v_used;
            END IF;
        END LOOP;
        v_wait := greatest(v_wait, greatest(v_gfree, v_best) - v_now);
        v_taken := v_taken || jsonb_build_array(jsonb_build_object(
            'window', v_window, 'count', v_count, 'ring', v_choice, 'used', v_chosen));
    END LOOP;
    IF v_wait > 0 THEN
        IF v_wait <= (p_ask->>'max_wait')::double precision THEN
            v_until := v_now + v_wait + (p_ask->>'grace')::double precision;
            INSERT INTO {schema}.kv AS k (namespace, key, value, version, expires_at, updated_at)
                VALUES ('rate_waiting', p_ask->'waiting'->>v_me, v_until::text, 1, v_until, v_now)
                ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,
                    version = k.version + 1, expires_at = excluded.expires_at,
                    updated_at = excluded.updated_at
                WHERE k.expires_at IS NULL OR k.expires_at < excluded.expires_at;
        END IF;
        RETURN QUERY SELECT v_wait, false;
        RETURN;
    END IF;
    FOR v_entry IN SELECT value FROM jsonb_array_elements(v_taken) LOOP
        PERFORM {schema}.ring_take(v_entry->'window'->>'key', p_scope,
            (v_entry->'window'->>'limit')::integer, (v_entry->'window'->>'seconds')::double precision,
            (v_entry->>'count')::bigint, v_now);
        PERFORM {schema}.ring_take(v_entry->'ring'->>'key', v_entry->'ring'->>'label',
            (v_entry->'ring'->>'size')::integer, (v_entry->'window'->>'seconds')::double precision,
            (v_entry->>'used')::bigint, v_now);
    END LOOP;
    RETURN QUERY SELECT 0::double precision, false;
END $$;

CREATE OR REPLACE FUNCTION {schema}.cleanup() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_now double precision := {NOW};
    v_count integer := 0;
    v_rows integer;
    v_scope text;
BEGIN
    DELETE FROM {schema}.kv WHERE expires_at IS NOT NULL AND expires_at < v_now;
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_count := v_count + v_rows;
    DELETE FROM {schema}.pauses WHERE until < v_now;
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_count := v_count + v_rows;
    -- a lock's row keeps its fence counter for a day after its last lease
    DELETE FROM {schema}.locks WHERE expires_at < v_now - 86400;
    GET DIAGNOSTICS v_rows = ROW_COUNT; v_count := v_count + v_rows;
    FOR v_scope IN SELECT DISTINCT h.scope FROM {schema}.rate_head h WHERE h.last_at + h.seconds < v_now
    LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('{schema}|' || v_scope, 0));
        WITH gone AS (
            DELETE FROM {schema}.rate_head h
            WHERE h.scope = v_scope AND h.last_at + h.seconds < {NOW} RETURNING h.wkey)
        DELETE FROM {schema}.rate_ring r USING gone WHERE r.wkey = gone.wkey;
        GET DIAGNOSTICS v_rows = ROW_COUNT; v_count := v_count + v_rows;
    END LOOP;
    RETURN v_count;
END $$;

INSERT INTO {schema}.meta (name, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
    ON CONFLICT (name) DO UPDATE SET value = excluded.value;
"""
