"""Apache Airflow provider for ServiceBridge, Third-Party Manager and Bridgit Bench."""

from __future__ import annotations

__version__ = "0.3.0"
