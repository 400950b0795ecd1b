"""
The PostgreSQL state backend's schema: its tables and the ``admit`` function (rings of admission
times, one transaction under an advisory lock on the scope), in one DDL text per schema.
"""

from __future__ import annotations

#: bump when the tables or functions change (the set-up re-runs when the stored one differs)
SCHEMA_VERSION = "1"
#: the server's clock, in UNIX seconds: every time the backend keeps is the server's
NOW = "extract(epoch from clock_timestamp())"


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
    PERFORM pg_advisory_xact_lock(hashtextextended('{schema}|' || p_scope, 0));
    v_now := {NOW};
    SELECT p.until INTO v_until FROM {schema}.pauses p WHERE p.scope = p_scope;
    IF v_until IS NOT NULL AND v_until > v_now THEN
        RETURN QUERY SELECT v_until - v_now, true, v_now;
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
