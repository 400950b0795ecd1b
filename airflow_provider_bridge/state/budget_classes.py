"""
Priority classes: what matters goes first when a vendor's budget is scarce.

A connection may split each rate window between **classes** (extra ``budget_classes``, e.g.
``{"interactive": 0.3, "default": 0.7}``; listed from the highest priority to the lowest). A
caller names its class (operator and sensor argument ``budget_class``, hook argument
``budget_class=``; unset: the first class whose ``min_priority_weight`` the task's
``priority_weight`` reaches, else ``default``). Then, in every window of N requests per W
seconds, across every process of every host:

* each class owns a **reserve**, a ring of ``floor(share x N)`` slots (at least 1), that it may
  always use; what no class owns (when the shares add up to less than 1) is a common pool;
* unused reserve is **lent**: a class whose own ring is full takes a pool slot, or a slot of
  another class's ring, while nobody of that class waits. Lending keeps one slot of a reserve of
  two or more free for its owner, so a class using less than its reserve does not wait at all;
  and it is paced (one lent slot of a reserve of R per W/R seconds), so a class coming back
  finds its next slot within W/R seconds rather than behind a whole window lent in one burst;
* a class never takes a pool or lent slot while a **higher** class waits (that class could have
  had it); its own reserve it always may;
* the window's own ring (the vendor's N per W) is checked and counted as well, so connections
  configured with and without classes, or with other shares (a deploy in progress), still never
  exceed the vendor's limit together.

"Waiting" is a marker per class, written in the same atomic step that turns a caller away (until
the time it asks again, plus :data:`WAIT_GRACE`), and only when the caller will wait rather than
fail fast. The whole decision is one round trip on every backend: :func:`class_admit` inside the
SQLite transaction (and for the in-memory backend), the ``admit_classes`` PostgreSQL function, and
one Redis Lua script, each running the same algorithm on the same rings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_bridge.exceptions import BridgeConfigError
from airflow_provider_bridge.state.backend import RingStore, ring_free_at, window_key

if TYPE_CHECKING:
    from collections.abc import Sequence

#: the class of a caller that names none (and whose priority weight selects none)
DEFAULT_CLASS = "default"
#: seconds a "waiting" marker outlives the moment its caller said it would ask again
WAIT_GRACE = 1.0
#: the key-value namespace of the per-host backends' waiting markers
WAITING_NAMESPACE = "rate_waiting"
#: the label of the slots no class owns
POOL = "*"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class BudgetClass:
    """
    One class of a connection's budget.

    :param name: what callers name it by.
    :param share: the part of every window it owns (0 < share <= 1).
    :param min_priority_weight: a task that names no class takes this one when its
        ``priority_weight`` is at least this (None: never chosen by weight).
    """

    name: str
    share: float
    min_priority_weight: int | None = None


def parse_budget_classes(raw: Any, *, field: str = "budget_classes") -> tuple[BudgetClass, ...]:
    """
    Validate the ``budget_classes`` extra: ``{name: share}`` or ``{name: {"share": s,
    "min_priority_weight": w}}``, highest priority first; None or empty: no classes.

    :raises BridgeConfigError: naming ``field`` when the value is malformed.
    """
    if raw is None or raw == {}:
        return ()
    expected = (
        'a JSON object of classes in priority order, e.g. {"interactive": 0.3, "default": 0.7} or '
        '{"interactive": {"share": 0.3, "min_priority_weight": 10}, "default": 0.7}'
    )
    if not isinstance(raw, dict):
        raise BridgeConfigError(f"{field}: expected {expected}, got {raw!r}")
    classes: list[BudgetClass] = []
    for name, value in raw.items():
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise BridgeConfigError(
                f"{field}: class name {name!r} must be lower-case letters, digits and _ "
                "(starting with a letter, up to 40)"
            )
        weight: Any = None
        if isinstance(value, dict):
            unknown = set(value) - {"share", "min_priority_weight"}
            if unknown or "share" not in value:
                raise BridgeConfigError(
                    f"{field}: class {name!r} takes 'share' and optionally 'min_priority_weight', "
                    f"got {value!r}"
                )
            share, weight = value["share"], value.get("min_priority_weight")
        else:
            share = value
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            raise BridgeConfigError(
                f"{field}: class {name!r} share must be a number above 0 and at most 1 (its part of "
                f"every window), got {share!r}"
            )
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int)):
            raise BridgeConfigError(
                f"{field}: class {name!r} min_priority_weight must be an integer, got {weight!r}"
            )
        classes.append(BudgetClass(name, float(share), weight))
    total = sum(c.share for c in classes)
    if total > 1 + 1e-9:
        raise BridgeConfigError(
            f"{field}: the shares add up to {total:g}; they must add up to at most 1 "
            "(what is left is a pool every class may use)"
        )
    return tuple(classes)


def class_for(
    classes: Sequence[BudgetClass], budget_class: str | None, priority_weight: int | None, *, where: str
) -> str:
    """
    The class a caller counts against: ``budget_class`` when named, else the first class whose
    ``min_priority_weight`` ``priority_weight`` reaches, else :data:`DEFAULT_CLASS`.

    :param where: who asks (the connection), for the error.
    :raises BridgeConfigError: when ``budget_class`` names a class the connection does not declare.
    """
    if budget_class is not None:
        names = [c.name for c in classes]
        if budget_class != DEFAULT_CLASS and budget_class not in names:
            declared = ", ".join(repr(n) for n in names) or "none (extra budget_classes is not set)"
            raise BridgeConfigError(
                f"budget_class={budget_class!r}: {where} declares no such class; its classes: {declared} "
                f"(or {DEFAULT_CLASS!r})"
            )
        return budget_class
    if priority_weight is not None:
        for c in classes:
            if c.min_priority_weight is not None and priority_weight >= c.min_priority_weight:
                return c.name
    return DEFAULT_CLASS


def reserves(
    classes: Sequence[BudgetClass], limit: int, *, where: str, field: str = "budget_classes"
) -> list[int]:
    """
    The slots each class owns in a window of ``limit`` requests: ``floor(share x limit)``, at
    least 1; when that takes more than the window, the largest reserves give one back.

    :raises BridgeConfigError: when the window is smaller than the number of classes.
    """
    sizes = [max(1, math.floor(c.share * limit + 1e-9)) for c in classes]
    while sum(sizes) > limit:
        largest = max(range(len(sizes)), key=lambda i: sizes[i])
        if sizes[largest] <= 1:
            raise BridgeConfigError(
                f"{field}: {where} allows {limit} request(s), too few for {len(classes)} classes "
                "(each owns at least one slot)"
            )
        sizes[largest] -= 1
    return sizes


@dataclass(frozen=True)
class ClassRing:
    """A part of one window: a class's reserve (``owner`` its index) or the pool (``owner`` -1)."""

    key: str
    label: str
    size: int
    owner: int


@dataclass(frozen=True)
class ClassWindow:
    """One window as a class sees it: the vendor's ring, and the parts it may take a slot from,
    in the order it prefers them (its reserve, the pool, the others' reserves lowest first)."""

    key: str
    limit: int
    seconds: float
    rings: tuple[ClassRing, ...]


@dataclass(frozen=True)
class ClassAsk:
    """
    What one caller asks the backend's admission step for.

    :param me: the caller's class index (0: the highest priority).
    :param names: every class, highest first (an undeclared ``default`` last, owning nothing).
    :param waiting: the waiting-marker key of each class, in ``names`` order.
    :param windows: every window of the scope.
    :param max_wait: the caller waits at most this long (no marker when it would fail fast).
    """

    me: int
    names: tuple[str, ...]
    waiting: tuple[str, ...]
    windows: tuple[ClassWindow, ...]
    max_wait: float
    grace: float = WAIT_GRACE

    def as_json(self) -> dict[str, Any]:
        """The ask as the PostgreSQL function reads it (JSON)."""
        return {
            "me": self.me,
            "waiting": list(self.waiting),
            "max_wait": min(self.max_wait, 1e18),  # JSON has no infinity
            "grace": self.grace,
            "windows": [
                {
                    "key": w.key,
                    "limit": w.limit,
                    "seconds": w.seconds,
                    "rings": [
                        {"key": r.key, "label": r.label, "size": r.size, "owner": r.owner} for r in w.rings
                    ],
                }
                for w in self.windows
            ],
        }


def waiting_key(scope: str, name: str) -> str:
    """The key of class ``name``'s waiting marker in ``scope``."""
    return f"{scope}#{name}"


def plan(
    scope: str,
    windows: Sequence[tuple[int, float]],
    classes: Sequence[BudgetClass],
    budget_class: str,
    max_wait: float,
) -> ClassAsk:
    """
    The rings a caller of ``budget_class`` may take a slot from in each of ``windows``.

    :raises BridgeConfigError: when a window is too small for the classes.
    """
    names = [c.name for c in classes]
    if DEFAULT_CLASS not in names:
        names.append(DEFAULT_CLASS)
    me = names.index(budget_class)
    planned: list[ClassWindow] = []
    for limit, seconds in windows:
        sizes = reserves(classes, limit, where=f"the rate window [{limit}, {seconds:g}]")
        base = window_key(scope, limit, seconds)
        owned = [
            ClassRing(f"{base}#{c.name}/{size}", f"{scope}#{c.name}", size, index)
            for index, (c, size) in enumerate(zip(classes, sizes, strict=True))
        ]
        pool_size = limit - sum(sizes)
        pool = [ClassRing(f"{base}#{POOL}/{pool_size}", f"{scope}#{POOL}", pool_size, -1)]
        pool = pool if pool_size else []
        mine = [r for r in owned if r.owner == me]
        others = sorted((r for r in owned if r.owner != me), key=lambda r: -r.owner)
        planned.append(ClassWindow(base, limit, seconds, tuple(mine + pool + others)))
    return ClassAsk(
        me=me,
        names=tuple(names),
        waiting=tuple(waiting_key(scope, n) for n in names),
        windows=tuple(planned),
        max_wait=max_wait,
    )


class ClassStore(RingStore, Protocol):
    """A :class:`RingStore` that also keeps the classes' waiting markers (in the same atomic step)."""

    def waiting_until(self, key: str) -> float:
        """Until when class marker ``key`` says someone waits (0: nobody)."""
        ...

    def set_waiting(self, key: str, until: float) -> None:
        """Mark ``key``'s class as waiting until ``until`` (never shortens a marker)."""
        ...


def class_admit(store: ClassStore, scope: str, ask: ClassAsk, now: float) -> float:
    """
    Take one slot for ``ask``'s class from every window of ``scope``, or none (the algorithm the
    PostgreSQL function and the Redis script run too). Call inside the backend's atomic step,
    after the shared pause was checked.

    :return: 0.0 when admitted (and recorded), else seconds until the class may ask again.
    """
    waiting = [store.waiting_until(key) for key in ask.waiting]
    higher = max((until for until in waiting[: ask.me] if until > now), default=0.0)
    wait = 0.0
    taken: list[tuple[ClassWindow, int, ClassRing, int]] = []
    for window in ask.windows:
        count = store.admitted(window.key)
        free = ring_free_at(store, window.key, window.limit, window.seconds, count, now)
        best = math.inf
        choice: tuple[ClassRing, int] | None = None
        for ring in window.rings:
            used = store.admitted(ring.key)
            at = ring_free_at(store, ring.key, ring.size, window.seconds, used, now)
            if ring.owner != ask.me:
                at = max(at, higher)
                if ring.owner >= 0:
                    if waiting[ring.owner] > now:
                        at = max(at, waiting[ring.owner])
                    last = store.slot_time(ring.key, (used - 1) % ring.size) if used else None
                    if last is not None:
                        at = max(at, last + window.seconds / ring.size)
                    if ring.size >= 2 and used >= ring.size - 1:  # one slot stays for its owner
                        second = store.slot_time(ring.key, (used + 1) % ring.size)
                        if second is not None:
                            at = max(at, second + window.seconds)
            if at < best:
                best, choice = at, (ring, used)
        assert choice is not None  # a window always has a ring: the reserves and pool add up to it
        wait = max(wait, max(free, best) - now)
        taken.append((window, count, *choice))
    if wait > 0:
        if wait <= ask.max_wait:
            store.set_waiting(ask.waiting[ask.me], now + wait + ask.grace)
        return wait
    for window, count, ring, used in taken:
        store.record(window.key, scope, window.limit, window.seconds, count + 1, count % window.limit, now)
        store.record(ring.key, ring.label, ring.size, window.seconds, used + 1, used % ring.size, now)
    return 0.0
