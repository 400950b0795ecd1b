"""
The provider's Airflow configuration, section ``[bridge]``, declared once: the provider metadata
(``airflow config list`` shows these with their descriptions) and the code read from here.
"""

from __future__ import annotations

from typing import Any

SECTION = "bridge"

#: option -> its declaration in Airflow's provider ``config`` format
OPTIONS: dict[str, dict[str, Any]] = {
    "state_backend": {
        "description": "Where rate windows, 429 pauses, credentials, change fingerprints and trigger "
        "cursors are shared. 'sqlite': a file under AIRFLOW_HOME, shared by the processes of one host "
        "(LocalExecutor, airflow standalone). 'sqlite:///<path>': another file. "
        "'postgres://<airflow conn id>' or 'redis://<airflow conn id>': a server shared by every host "
        "(Celery, Kubernetes, a triggerer in its own container). 'memory': this process only (tests).",
        "version_added": "0.2.0",
        "type": "string",
        "example": "postgres://bridge_state",
        "default": "sqlite",
    },
    "state_namespace": {
        "description": "PostgreSQL schema or Redis key prefix of the shared state, so several Airflow "
        "deployments can share one server: lower-case letters, digits and underscores, at most 63.",
        "version_added": "0.2.0",
        "type": "string",
        "example": "airflow_prod_bridge",
        "default": "airflow_bridge",
    },
    "lock_lease": {
        "description": "Seconds a lock on a PostgreSQL or Redis state backend outlives a holder that "
        "died (SIGKILL, pod eviction); a live holder extends it every third of the lease.",
        "version_added": "0.2.0",
        "type": "float",
        "example": "30",
        "default": "15",
    },
}


def default(option: str) -> str:
    """The declared default of a ``[bridge]`` option."""
    return str(OPTIONS[option]["default"])


def provider_config() -> dict[str, Any]:
    """The ``config`` section of the provider metadata."""
    return {
        SECTION: {
            "description": "Shared state of airflow-provider-bridge: rate limits, credentials, cursors.",
            "options": OPTIONS,
        }
    }
