"""ServiceBridge command-line tools (``python -m airflow_provider_bridge.servicebridge``)."""
