"""Run a DAG file's DAG with dag.test() in this process and read back what its tasks returned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def run_dag(folder: Path, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Run ``dag_id`` from ``folder``; return (state, {task_id: XCom return value})."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(folder))
    assert dag_id in bag.dags, bag.import_errors
    run = bag.dags[dag_id].test(run_conf=conf)
    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value"
            )
            .all()
        )
        values = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    return str(getattr(run.state, "value", run.state)), values
