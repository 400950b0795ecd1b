"""
The one place the provider looks at Airflow's internals, because no public API says what it needs.

``airflow dags test`` (and ``dag.test()``) runs a deferred task's trigger in line, in the main
thread of the command's own process, after the task runner replaced SIGTERM's handler with one
that only calls the operator's ``on_kill()``: right for a task process, whose supervisor follows
up with SIGKILL, but in ``dags test`` nothing follows, and the command ignores SIGTERM for as long
as the trigger waits. Airflow has no public way to ask "am I running in line under dags test";
this module infers it from the in-process supervisor's comms, without importing anything (the
check runs on the triggerer's event loop). If a later Airflow changes those internals, the check
says "not in line" and nothing changes; ``tests/sensors/test_entity_change_sensor.py`` sends the
SIGTERM to a real ``airflow dags test`` and fails then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)


def _runs_in_line() -> bool:
    """
    Whether this trigger runs in line under ``dag.test()`` / ``airflow dags test``: Airflow's
    in-process supervisor comms are installed. Imports nothing (this runs on the triggerer's event
    loop, where importing the supervisor module would block it): ``dag.test`` has imported both
    modules already when it runs a trigger in line.
    """
    supervisor = sys.modules.get("airflow.sdk.execution_time.supervisor")
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms_class = getattr(supervisor, "InProcessSupervisorComms", None)
    if task_runner is None or not isinstance(comms_class, type):
        return False
    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), comms_class)


@contextlib.contextmanager
def sigterm_ends_a_test_run() -> Iterator[None]:
    """
    While a trigger runs in line under ``airflow dags test`` (or ``dag.test()``), SIGTERM ends the
    process, as it would any command.

    There, Airflow runs the deferred task's trigger in the main thread of the command's own
    process, after its task runner replaced SIGTERM's handler with one that only calls the
    operator's ``on_kill()`` (right for a task process, whose supervisor follows up with SIGKILL;
    here nothing follows): without this, SIGTERM is ignored for as long as the trigger waits. In a
    triggerer nothing changes.
    """
    if not (_runs_in_line() and threading.current_thread() is threading.main_thread()):
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        log.warning("SIGTERM while the trigger runs in line (airflow dags test): stopping")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # closed from another thread at interpreter exit
            signal.signal(signal.SIGTERM, previous)
