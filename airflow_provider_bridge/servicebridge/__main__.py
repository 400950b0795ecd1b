"""``python -m airflow_provider_bridge.servicebridge authorize --conn-id ...``."""

from __future__ import annotations

import sys

from airflow_provider_bridge.servicebridge.authorize import main

sys.exit(main())
