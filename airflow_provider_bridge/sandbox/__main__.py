"""``python -m airflow_provider_bridge.sandbox``: serve the vendor emulators on localhost."""

from __future__ import annotations

import sys

from airflow_provider_bridge.sandbox.server import main

sys.exit(main())
