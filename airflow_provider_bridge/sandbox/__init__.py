"""
Local emulators of the vendors' APIs, for tests, demos and users' own DAG tests.

Run ``python -m airflow_provider_bridge.sandbox`` (prints one URL per vendor), or use
:class:`airflow_provider_bridge.sandbox.testing.SandboxProcess` / the ``bridge_sandbox``
pytest fixture.
"""
