"""``python -m airflow_provider_bridge.state {check,status,init}``."""

from __future__ import annotations

import sys

from airflow_provider_bridge.state.cli import main

sys.exit(main())
