"""The Bridgit Bench hook from your own code: a task, a script, a notebook."""

from __future__ import annotations

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

hook = BridgitBenchHook(conn_id="bridgit_bench_default")
project = hook.create_entity("projects", {"name": "Ahrens Lofts", "type": "Awarded"})
hook.update_entity("projects", project["id"], {"colour": "#00FF00"})  # a partial update
roles = hook.bulk_create_roles(project["id"], [{"name": "Project Engineer"}] * 250)  # 3 requests
people = [person["email"] for person in hook.list_entities("persons")]  # streams every page
changed = list(hook.changed_since("projects", "2026-11-01T00:00:00Z"))
accounts = hook.request("GET", "/rp/api/v1/Accounts").json()  # the escape hatch, same limits
ok, message = hook.test_connection()
print(f"{len(roles)} roles, {len(people)} people, {len(changed)} changed; {message}")
