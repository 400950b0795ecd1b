"""
Benchmark: what N deferred change sensors watching one Third-Party Manager listing cost, with the
shared poll (the default) and without it (``share_polls: false``).

N ``EntityChangeTrigger``s run on one event loop, as in a triggerer, polling every ``--interval``
seconds a listing of ``--records`` profiles (``--page-size`` per page) for ``--seconds``; then one
profile changes and every trigger must report it. Printed: API requests the sandbox accepted
while watching, per minute, and whether every watcher saw the change.

    .venv/bin/python benchmarks/shared_polls.py [--watchers 10] [--records 250] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time

from harness import private_home

FAST = [[1000, 1]]
PROFILES = "thirdparty/profile"


def watch(
    sandbox, hook, made, watchers: int, interval: float, seconds: float, country: str
) -> dict[str, object]:
    from airflow_provider_bridge.sandbox.testing import first_events
    from airflow_provider_bridge.triggers import EntityChangeTrigger

    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def scenario() -> list:
        triggers = [
            EntityChangeTrigger(
                conn_id="third_party_manager_default", entity=PROFILES, since=since, poll_interval=interval
            )
            for _ in range(watchers)
        ]

        watching = asyncio.create_task(first_events(triggers))
        await asyncio.sleep(seconds)
        await asyncio.to_thread(hook.update_entity, PROFILES, made[0]["id"], {"countryCode": country})
        return await asyncio.wait_for(watching, timeout=interval * 3 + 60)

    before = sandbox.stats()["accepted"]
    started = time.monotonic()
    events = asyncio.run(scenario())
    elapsed = time.monotonic() - started
    requests = sandbox.stats()["accepted"] - before - 1  # not the update
    return {
        "api_requests": requests,
        "requests_per_minute": round(requests * 60 / elapsed, 1),
        "watchers_that_saw_the_change": sum(
            1 for e in events if e and e["status"] == "success" and e["changes"][0]["id"] == made[0]["id"]
        ),
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="N watchers of one listing, with and without sharing")
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--records", type=int, default=250)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    private_home()
    from airflow_provider_bridge.hooks.third_party_manager import ThirdPartyManagerHook
    from airflow_provider_bridge.sandbox.testing import SandboxProcess

    results: dict[str, object] = {}
    with SandboxProcess(["third_party_manager"]) as process:
        sandbox = process.vendor("third_party_manager")
        sandbox.configure(rate_limits=FAST)
        home = os.environ["AIRFLOW_HOME"]
        for label, share in (("shared (default)", True), ("not shared (share_polls: false)", False)):
            # a fresh shared state (fingerprints) and sandbox for each setting
            os.environ["AIRFLOW__BRIDGE__STATE_BACKEND"] = f"sqlite:///{home}/state-{share}.sqlite"
            sandbox.reset()
            sandbox.configure(rate_limits=FAST)
            os.environ["AIRFLOW_CONN_THIRD_PARTY_MANAGER_DEFAULT"] = sandbox.connection_json(
                rate_limits=FAST, page_size=args.page_size, share_polls=share
            )
            hook = ThirdPartyManagerHook()
            made = [
                hook.create_entity(PROFILES, {"officialName": f"Supplier {n:04d}"})
                for n in range(args.records)
            ]
            results[f"1 watcher, {label}"] = watch(sandbox, hook, made, 1, args.interval, args.seconds, "IE")
            results[f"{args.watchers} watchers, {label}"] = watch(
                sandbox, hook, made, args.watchers, args.interval, args.seconds, "FR"
            )
    print(
        json.dumps(
            {
                "records": args.records,
                "page_size": args.page_size,
                "poll_interval_s": args.interval,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
