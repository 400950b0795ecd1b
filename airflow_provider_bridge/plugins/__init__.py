"""Airflow 3 UI plugins shipped with the provider (registered in the provider info)."""
