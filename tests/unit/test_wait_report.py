"""Rate-limit waits in a log: the first at INFO, then one summary line per 30 s, every wait at DEBUG."""

from __future__ import annotations

import logging

from airflow_provider_bridge.state.limiter import WaitReport


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_waits_are_summed_into_one_info_line_per_period(caplog):
    clock = Clock()
    report = WaitReport(every=30, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="airflow_provider_bridge.state.limiter"):
        for _ in range(100):  # 100 one-second waits at 5/s over 100 s
            report.add("bridgit|x", "5/1s", 1.0, paused=False)
            clock.now += 1.0
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 100  # every wait
    assert len(info) == 4, info  # the first, then at 30, 60 and 90 s
    assert info[0].startswith("Rate limit 5/1s: waiting 1.0s for a slot")
    assert info[1] == "Rate limit 5/1s: 30 wait(s), 30.0s in all, in the last 30s (shared by every worker)"


def test_scopes_are_reported_apart(caplog):
    clock = Clock()
    report = WaitReport(every=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="airflow_provider_bridge.state.limiter"):
        report.add("a", "5/1s", 1.0, paused=False)
        report.add("b", "600/3600s", 2.0, paused=True)
        report.add("a", "5/1s", 1.0, paused=False)
    info = [r.getMessage() for r in caplog.records]
    assert len(info) == 2 and "vendor asked every client to pause" in info[1]
