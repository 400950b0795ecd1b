"""
A tiny fourth vendor, defined in tests only: proof that a vendor is one hook module
(:mod:`tests.echo.hook`), one sandbox module (:mod:`tests.echo.sandbox`) and one spec (here), with no
edit to the generic operators, sensor, triggers, sandbox server, fixtures or provider info.

It joins the registry through ``AIRFLOW_PROVIDER_BRIDGE_EXTRA_VENDORS=tests.echo:SPEC`` (a vendor
shipped with the provider would be listed in :data:`airflow_provider_bridge.vendors.VENDORS`).
"""

from __future__ import annotations

from airflow_provider_bridge.vendors import VendorSpec

SPEC = VendorSpec(
    conn_type="echo",
    name="Echo (tests)",
    hook="tests.echo.hook.EchoHook",
    adapter="tests.echo.hook.EchoAdapter",
    rate_limits=((100, 1),),
    login_label=None,
    password_label="the API key",
    doc_url=None,
    fields={
        "key_header": {
            "label": "API key header",
            "description": "The header that carries the API key.",
            "schema": {"type": ["string", "null"], "default": "X-Echo-Key"},
        },
    },
    ui={"hidden-fields": ["schema", "port", "login"], "relabeling": {"password": "API key"}},
    sandbox_app="tests.echo.sandbox:create_app",
    sandbox_login="",
    sandbox_password="echo-sandbox-key",
    form_fields=("key_header",),
)
