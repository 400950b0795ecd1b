"""Priority classes from your own code: a lookup someone waits for, beside a bulk job."""

from __future__ import annotations

from airflow_provider_bridge.hooks.bridgit_bench import BridgitBenchHook

# the connection's Extra: {"budget_classes": {"interactive": 0.3, "default": 0.7}}
bulk = BridgitBenchHook(conn_id="bridgit_with_classes")  # names no class: "default"
lookup = BridgitBenchHook(conn_id="bridgit_with_classes", budget_class="interactive")
project = bulk.create_entity("projects", {"name": "Quayside", "type": "Awarded"})
roles = bulk.bulk_create_roles(project["id"], [{"name": "Site Engineer"}] * 120)
found = lookup.get_entity("projects", project["id"])  # its reserve: never behind the bulk job
print(f"{len(roles)} roles as {bulk.budget_class!r}; {found['name']} read as {lookup.budget_class!r}")
