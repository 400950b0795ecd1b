"""
Shared state on a Redis server: ``[bridge] state_backend = redis://<airflow conn id>``.

Every key starts with ``[bridge] state_namespace`` (default ``airflow_bridge``) and a colon, so
several deployments can share a server (or a database number). Times are the server's ``TIME``,
never a host's.

Rate windows are exact sliding-window logs kept as **rings** (see
:mod:`airflow_provider_bridge.state.postgres_backend`): one hash per window holding the times of
the last N admissions. Admission to all of a scope's windows, and the check of its shared pause,
is one Lua script, which Redis runs atomically. (pyrate-limiter's RedisBucket over-admits under
contention: its script counts up to the caller's own timestamp.) Keys of one scope share a hash
tag, so the script also runs on Redis Cluster.

Everything expires by itself: a window's hash when no request came for W seconds, a pause when
it ends, a lock with its lease, and any record written with a TTL.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_provider_bridge.options import parse_bool
from airflow_provider_bridge.state.adaptive import KEEP_SECONDS, REPROBE_SECONDS, adaptive_spec, learned_key
from airflow_provider_bridge.state.adaptive import NAMESPACE as LEARNED_NAMESPACE
from airflow_provider_bridge.state.backend import Admission, WindowUsage, digest, window_key
from airflow_provider_bridge.state.remote import RemoteStateBackend

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Connection

    from airflow_provider_bridge.state.adaptive import AdaptiveWindow
    from airflow_provider_bridge.state.budget_classes import ClassAsk

_TIME = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

#: the start of every admission script: the server's clock, the scope's pause (KEYS[1]), and the
#: ring operations all three share (a ring of ``size`` admissions, ``n`` so far, under ``eff``)
_ADMISSION = (
    _TIME
    + """
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause > now then return {string.format('%.6f', pause - now), 1} end
local function free_at(key, size, eff, seconds, n)
  if n >= eff then
    local at = tonumber(redis.call('HGET', key, tostring((n - eff) % size)) or '0')
    if at + seconds > now then return at + seconds end
  end
  return now
end
local function ring(key, size, seconds)
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  return n, free_at(key, size, size, seconds, n)
end
local function take(key, n, size, sec, label, stamp)
  redis.call('HSET', key, 'n', n + 1, tostring(n % size), stamp, 'lim', size, 'sec', sec, 'scope', label)
  redis.call('PEXPIRE', key, math.ceil(tonumber(sec) * 1000) + 1000)
end
"""
)

#: KEYS: pause, window hashes...; ARGV: limit1, seconds1, limit2, seconds2, ..., scope
ADMIT = (
    _ADMISSION
    + """
local wait = 0
local nexts = {}
for i = 2, #KEYS do
  local n, free = ring(KEYS[i], tonumber(ARGV[2 * i - 3]), tonumber(ARGV[2 * i - 2]))
  nexts[i] = n
  wait = math.max(wait, free - now)
end
if wait > 0 then return {string.format('%.6f', wait), 0} end
local stamp = string.format('%.6f', now)
for i = 2, #KEYS do
  take(KEYS[i], nexts[i], tonumber(ARGV[2 * i - 3]), ARGV[2 * i - 2], ARGV[#ARGV], stamp)
end
return {'0', 0}
"""
)

#: KEYS: pause, the window hashes..., their learned records...; ARGV: limit1, seconds1, ..., then
#: the adaptive windows as JSON (a list, null for a fixed window), the scope, the reprobe and keep
#: seconds (see :mod:`airflow_provider_bridge.state.adaptive`: the algorithm of ``ring_admit``)
ADMIT_ADAPTIVE = (
    _ADMISSION
    + """
local count = (#KEYS - 1) / 2
local adaptive = cjson.decode(ARGV[2 * count + 1])
local scope = ARGV[2 * count + 2]
local reprobe = tonumber(ARGV[2 * count + 3])
local keep = tonumber(ARGV[2 * count + 4])
local function store(lkey, rec)  -- a key-value record: the compare-and-set of a 429 reads 'ver'
  redis.call('HSET', lkey, 'val', cjson.encode(rec))
  redis.call('HINCRBY', lkey, 'ver', 1)
  redis.call('PEXPIRE', lkey, math.ceil(keep * 1000))
end
local wait = 0
local nexts = {}
for i = 1, count do
  local key = KEYS[i + 1]
  local limit = tonumber(ARGV[2 * i - 1])
  local seconds = tonumber(ARGV[2 * i])
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  nexts[i] = n
  local learn = adaptive[i]
  local free
  if type(learn) ~= 'table' then
    free = free_at(key, limit, limit, seconds, n)
  else
    local lkey = KEYS[count + 1 + i]
    local raw = redis.call('HGET', lkey, 'val')
    local rec
    if raw then rec = cjson.decode(raw) else
      -- learning starts now: the first quiet period counts from here
      rec = {eff = learn.start, cap = limit, changed = now, last_429 = 0, lowered = 0,
             scope = scope, seconds = seconds, ceiling = limit}
      store(lkey, rec)
    end
    local eff = tonumber(rec.eff)
    free = free_at(key, limit, eff, seconds, n)
    if free > now then
      local cap = tonumber(rec.cap)
      if now - tonumber(rec.last_429) >= reprobe then cap = limit end
      if now - tonumber(rec.changed) >= learn.quiet and now - tonumber(rec.last_429) >= learn.quiet
         and eff < cap then
        eff = math.min(cap, eff + learn.step)
        rec.eff = eff; rec.cap = cap; rec.changed = now
        rec.scope = scope; rec.seconds = seconds; rec.ceiling = limit
        store(lkey, rec)
        free = free_at(key, limit, eff, seconds, n)
      end
    end
  end
  if free - now > wait then wait = free - now end
end
if wait > 0 then return {string.format('%.6f', wait), 0} end
local stamp = string.format('%.6f', now)
for i = 1, count do
  take(KEYS[i + 1], nexts[i], tonumber(ARGV[2 * i - 1]), ARGV[2 * i], scope, stamp)
end
return {'0', 0}
"""
)

#: KEYS: pause, then every key the ask names (by index); ARGV: the ask as JSON (see
#: :func:`airflow_provider_bridge.state.budget_classes.class_admit`, the same algorithm)
ADMIT_CLASSES = (
    _ADMISSION
    + """
local ask = cjson.decode(ARGV[1])
local waiting = {}
local higher = 0
for i, k in ipairs(ask.waiting) do
  local untl = tonumber(redis.call('GET', KEYS[k]) or '0')
  waiting[i] = untl
  if i - 1 < ask.me and untl > now and untl > higher then higher = untl end
end
local wait = 0
local taken = {}
for _, w in ipairs(ask.windows) do
  local count, gfree = ring(KEYS[w.key], w.limit, w.seconds)
  local best = math.huge
  local choice, chosen = nil, 0
  for _, r in ipairs(w.rings) do
    local used, free = ring(KEYS[r.key], r.size, w.seconds)
    if r.owner ~= ask.me then
      if higher > free then free = higher end
      if r.owner >= 0 then
        local mark = waiting[r.owner + 1]
        if mark > now and mark > free then free = mark end
        if used > 0 then
          local last = tonumber(redis.call('HGET', KEYS[r.key], tostring((used - 1) % r.size)) or '0')
          if last > 0 and last + w.seconds / r.size > free then free = last + w.seconds / r.size end
        end
        if r.size >= 2 and used >= r.size - 1 then
          local second = tonumber(redis.call('HGET', KEYS[r.key], tostring((used + 1) % r.size)) or '0')
          if second > 0 and second + w.seconds > free then free = second + w.seconds end
        end
      end
    end
    if free < best then best = free; choice = r; chosen = used end
  end
  if math.max(gfree, best) - now > wait then wait = math.max(gfree, best) - now end
  taken[#taken + 1] = {w, count, choice, chosen}
end
if wait > 0 then
  if wait <= ask.max_wait then
    local key = KEYS[ask.waiting[ask.me + 1]]
    local untl = now + wait + ask.grace
    if tonumber(redis.call('GET', key) or '0') < untl then
      redis.call('SET', key, string.format('%.6f', untl), 'PX', math.ceil((untl - now) * 1000))
    end
  end
  return {string.format('%.6f', wait), 0}
end
local stamp = string.format('%.6f', now)
for _, t in ipairs(taken) do
  local w, count, r, used = t[1], t[2], t[3], t[4]
  take(KEYS[w.key], count, w.limit, w.sec, ask.scope, stamp)
  take(KEYS[r.key], used, r.size, w.sec, r.label, stamp)
end
return {'0', 0}
"""
)

#: KEYS: pause; ARGV: seconds
PAUSE = (
    _TIME
    + """
local untl = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < untl then
  redis.call('SET', KEYS[1], string.format('%.6f', untl), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""
)

#: KEYS: record; ARGV: value, ttl ms (0: none), expected version ('' absent, '*' any)
SET = """
local version = redis.call('HGET', KEYS[1], 'ver')
if ARGV[3] ~= '*' then
  if ARGV[3] == '' then
    if version then return -1 end
  elseif version ~= ARGV[3] then
    return -1
  end
end
local new = redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('HSET', KEYS[1], 'val', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('PERSIST', KEYS[1]) end
return new
"""

#: KEYS: lock, fence counter; ARGV: holder, lease ms
LOCK = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
"""

#: KEYS: lock; ARGV: holder, lease ms (0: release)
EXTEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
"""

PAUSE_LEFT = (
    _TIME
    + """
local untl = tonumber(redis.call('GET', KEYS[1]) or '0')
return string.format('%.6f', math.max(0, untl - now))
"""
)


class RedisStateBackend(RemoteStateBackend):
    """
    Shared state in Redis, for every process of every host.

    :param conn_id: an Airflow connection of type ``redis``: host, port (6379), login (ACL user),
        password, the database number in the extra ``db`` (or in ``schema``), and TLS through the
        extras ``ssl``, ``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
        ``ssl_check_hostname``; ``socket_timeout`` (default 10) bounds each call.
    :param namespace: the key prefix (``[bridge] state_namespace``).
    :param lock_lease: seconds a lock outlives a holder that stopped extending it.
    """

    scheme = "redis"
    conn_types = ("redis",)

    def _key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    def _scope_key(self, scope: str, *parts: str) -> str:
        # the hash tag {...} keeps a scope's keys in one cluster slot (one script touches them)
        return self._key("{" + digest(scope) + "}", *parts)

    def _connect(self, conn: Connection) -> Any:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            from airflow_provider_bridge.exceptions import BridgeConfigError

            raise BridgeConfigError(
                f"[bridge] state_backend {self.description} needs the redis client: "
                "pip install 'airflow-provider-bridge[redis]'"
            ) from None
        extras = conn.extra_dejson or {}
        db = extras.get("db", conn.schema if (conn.schema or "").isdigit() else 0)
        timeout = float(extras.get("socket_timeout", 10))
        kwargs: dict[str, Any] = {
            "host": conn.host or "localhost",
            "port": conn.port or 6379,
            "username": conn.login or None,
            "password": conn.password or None,
            "db": int(db or 0),
            "socket_timeout": timeout,
            "socket_connect_timeout": float(extras.get("socket_connect_timeout", timeout)),
            # one quick retry on a fresh connection; a server that is down fails the call at once
            "retry": Retry(NoBackoff(), 1),
            "decode_responses": True,
        }
        if parse_bool(
            extras.get("ssl"), field=f"[bridge] state_backend {self.description}: extra 'ssl'", default=False
        ):
            kwargs["ssl"] = True
            for name in (
                "ssl_cert_reqs",
                "ssl_ca_certs",
                "ssl_certfile",
                "ssl_keyfile",
                "ssl_check_hostname",
            ):
                if name in extras:
                    kwargs[name] = extras[name]
        client = redis.Redis(**kwargs)
        scripts = {
            name: client.register_script(source)
            for name, source in (
                ("admit", ADMIT),
                ("admit_classes", ADMIT_CLASSES),
                ("admit_adaptive", ADMIT_ADAPTIVE),
                ("pause", PAUSE),
                ("set", SET),
                ("lock", LOCK),
                ("extend", EXTEND),
                ("pause_left", PAUSE_LEFT),
            )
        }
        return client, scripts

    def _setup(self, client: Any) -> None:
        client[0].ping()

    def _close(self, client: Any) -> None:
        client[0].close()

    def _is_server_error(self, exc: BaseException) -> bool:
        import redis

        return isinstance(exc, redis.RedisError)

    def _retryable(self, exc: BaseException) -> bool:
        import redis

        return isinstance(exc, redis.ConnectionError | redis.TimeoutError)

    def _script(self, doing: str, name: str, keys: list[str], args: list[Any]) -> Any:
        return self.run(doing, lambda client: client[1][name](keys=keys, args=args))

    # -- key-value ---------------------------------------------------------------------------
    def _record(self, namespace: str, key: str) -> str:
        return self._key("kv", namespace, key)

    def get_versioned(self, namespace: str, key: str) -> tuple[str, int] | None:
        value, version = self.run(
            "could not read a record", lambda c: c[0].hmget(self._record(namespace, key), "val", "ver")
        )
        return None if value is None or version is None else (str(value), int(version))

    def _write(self, namespace: str, key: str, value: str, ttl: float | None, expected: str) -> bool:
        ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        result = self._script(
            "could not write a record", "set", [self._record(namespace, key)], [value, ttl_ms, expected]
        )
        return int(result) > 0

    def set(self, namespace: str, key: str, value: str, *, ttl: float | None = None) -> None:
        self._write(namespace, key, value, ttl, "*")

    def compare_and_set(
        self, namespace: str, key: str, value: str, expected_version: int | None, *, ttl: float | None = None
    ) -> bool:
        expected = "" if expected_version is None else str(expected_version)
        return self._write(namespace, key, value, ttl, expected)

    def delete(self, namespace: str, key: str) -> None:
        self.run("could not delete a record", lambda c: c[0].delete(self._record(namespace, key)))

    def scan(self, namespace: str) -> dict[str, str]:
        prefix = self._record(namespace, "")

        def operation(client: Any) -> dict[str, str]:
            found: dict[str, str] = {}
            for name in client[0].scan_iter(match=prefix + "*", count=500):
                value = client[0].hget(name, "val")
                if value is not None:
                    found[name[len(prefix) :]] = value
            return found

        return dict(self.run("could not list records", operation))

    # -- leases --------------------------------------------------------------------------------
    def _lock_keys(self, name: str) -> list[str]:
        return [self._key("lock", name), self._key("lock", name, "fence")]

    def _try_lock(self, name: str, holder: str, lease: float) -> int | None:
        fence = self._script(
            "could not take a shared lock", "lock", self._lock_keys(name), [holder, int(lease * 1000)]
        )
        return int(fence) or None

    def _extend_lock(self, name: str, holder: str, lease: float) -> bool:
        return bool(
            self._script(
                "could not extend a shared lock",
                "extend",
                self._lock_keys(name)[:1],
                [holder, int(lease * 1000)],
            )
        )

    def _unlock(self, name: str, holder: str) -> None:
        self._script("could not release a shared lock", "extend", self._lock_keys(name)[:1], [holder, 0])

    # -- rate windows and pauses -----------------------------------------------------------------
    def admit(
        self,
        scope: str,
        windows: Sequence[tuple[int, float]],
        ask: ClassAsk | None = None,
        adaptive: Sequence[AdaptiveWindow | None] | None = None,
    ) -> Admission:
        if ask is not None:
            return self._admit_classes(scope, ask)
        if adaptive and any(adaptive):
            keys = [self._scope_key(scope, "pause")]
            keys += [self._scope_key(scope, "rate", window_key(scope, lim, sec)) for lim, sec in windows]
            # the learned records are key-value records (read and lowered by compare-and-set too)
            keys += [self._record(LEARNED_NAMESPACE, learned_key(scope, lim, sec)) for lim, sec in windows]
            spec: list[Any] = []
            for limit, seconds in windows:
                spec += [int(limit), repr(float(seconds))]
            spec += [json.dumps([adaptive_spec(scope, learn) for learn in adaptive]), scope]
            spec += [repr(REPROBE_SECONDS), repr(KEEP_SECONDS)]
            wait, paused = self._script("could not take a rate-limit slot", "admit_adaptive", keys, spec)
            return Admission(float(wait), paused=bool(int(paused)))
        keys = [self._scope_key(scope, "pause")]
        args: list[Any] = []
        for limit, seconds in windows:
            keys.append(self._scope_key(scope, "rate", window_key(scope, limit, seconds)))
            args += [int(limit), repr(float(seconds))]
        args.append(scope)
        wait, paused = self._script("could not take a rate-limit slot", "admit", keys, args)
        return Admission(float(wait), paused=bool(int(paused)))

    def _admit_classes(self, scope: str, ask: ClassAsk) -> Admission:
        keys = [self._scope_key(scope, "pause")]

        def index(*parts: str) -> int:
            keys.append(self._scope_key(scope, *parts))
            return len(keys)  # Lua's KEYS[i] counts from 1

        spec = {
            "me": ask.me,
            "max_wait": min(ask.max_wait, 1e18),  # JSON has no infinity
            "grace": ask.grace,
            "scope": scope,
            "waiting": [index("waiting", key) for key in ask.waiting],
            "windows": [
                {
                    "key": index("rate", w.key),
                    "limit": w.limit,
                    "seconds": w.seconds,
                    "sec": repr(float(w.seconds)),
                    "rings": [
                        {"key": index("rate", r.key), "size": r.size, "owner": r.owner, "label": r.label}
                        for r in w.rings
                    ],
                }
                for w in ask.windows
            ],
        }
        wait, paused = self._script(
            "could not take a rate-limit slot", "admit_classes", keys, [json.dumps(spec)]
        )
        return Admission(float(wait), paused=bool(int(paused)))

    def pause(self, scope: str, seconds: float) -> None:
        self._script("could not share a pause", "pause", [self._scope_key(scope, "pause")], [repr(seconds)])
        # remember which scope the pause belongs to, for status output
        self.run(
            "could not share a pause",
            lambda c: c[0].set(
                self._scope_key(scope, "pause", "scope"), scope, px=int(seconds * 1000) + 1000
            ),
        )

    def pause_remaining(self, scope: str) -> float:
        return float(
            self._script("could not read a pause", "pause_left", [self._scope_key(scope, "pause")], [])
        )

    def pauses(self) -> dict[str, float]:
        def operation(client: Any) -> dict[str, float]:
            found: dict[str, float] = {}
            for name in client[0].scan_iter(match=self._key("*", "pause", "scope"), count=500):
                scope = client[0].get(name)
                if scope:
                    left = self.pause_remaining(scope)
                    if left > 0:
                        found[scope] = left
            return found

        return dict(self.run("could not read pauses", operation))

    def window_usage(self) -> list[WindowUsage]:
        now = self.server_time()

        def operation(client: Any) -> list[WindowUsage]:
            usage: list[WindowUsage] = []
            for name in client[0].scan_iter(match=self._key("*", "rate", "*"), count=500):
                ring = client[0].hgetall(name)
                if not ring or "lim" not in ring:
                    continue
                seconds = float(ring["sec"])
                used = sum(1 for field, at in ring.items() if field.isdigit() and float(at) > now - seconds)
                if used:
                    usage.append(WindowUsage(ring["scope"], int(ring["lim"]), seconds, used))
            return sorted(usage, key=lambda u: (u.scope, u.seconds))

        return list(self.run("could not read rate windows", operation))

    def server_time(self) -> float:
        seconds, micros = self.run("could not read the server clock", lambda c: c[0].time())
        return float(seconds) + float(micros) / 1e6

    def describe_server(self) -> str:
        """Version and persistence of the server (for the check command)."""
        info = self.run("could not read server info", lambda c: c[0].info("server"))
        return json.dumps({"redis_version": info.get("redis_version"), "mode": info.get("redis_mode")})
