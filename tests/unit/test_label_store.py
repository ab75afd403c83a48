"""The label store on its embedded default, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.label_store_cases import (
    check_concurrent_submissions_do_not_duplicate,
    check_each_model_has_its_own_queue,
    check_feedback_is_claimed_once,
    check_old_predictions_are_pruned,
    check_queue_label_skip_and_conflicts,
    check_reopening_keeps_data_and_schema,
    check_replicas_capturing_the_same_ids_store_each_once,
    check_replicas_claiming_the_same_prediction_count_it_once,
    check_replicas_opening_a_fresh_database_together_all_start,
    check_upgrade_from_the_first_schema_keeps_data,
)
from textops.errors import TextopsError
from textops.labelling.store import LabelStore


def test_queue_label_skip_and_conflicts(tmp_path: Path) -> None:
    check_queue_label_skip_and_conflicts(LabelStore(f"sqlite:///{tmp_path}/labels.db"))


def test_each_model_has_its_own_queue(tmp_path: Path) -> None:
    check_each_model_has_its_own_queue(LabelStore(f"sqlite:///{tmp_path}/m.db"))


def test_reopening_keeps_data_and_schema(tmp_path: Path) -> None:
    check_reopening_keeps_data_and_schema(f"sqlite:///{tmp_path}/sub/labels.db")


def test_concurrent_submissions_do_not_duplicate(tmp_path: Path) -> None:
    check_concurrent_submissions_do_not_duplicate(LabelStore(f"sqlite:///{tmp_path}/l.db"))


def test_upgrade_from_the_first_schema_keeps_data(tmp_path: Path) -> None:
    check_upgrade_from_the_first_schema_keeps_data(f"sqlite:///{tmp_path}/old.db")


def test_feedback_is_claimed_once(tmp_path: Path) -> None:
    check_feedback_is_claimed_once(LabelStore(f"sqlite:///{tmp_path}/f.db"))


def test_replicas_claiming_the_same_prediction_count_it_once(tmp_path: Path) -> None:
    check_replicas_claiming_the_same_prediction_count_it_once(
        LabelStore(f"sqlite:///{tmp_path}/c.db")
    )


def test_old_predictions_are_pruned(tmp_path: Path) -> None:
    check_old_predictions_are_pruned(LabelStore(f"sqlite:///{tmp_path}/o.db"))


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(TextopsError, match="unreachable") as caught:
        LabelStore("mysql+pymysql://u:secret@127.0.0.1:9/db")
    assert "secret" not in str(caught.value)


def test_a_transaction_aborted_by_a_lock_conflict_is_retried(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    store = LabelStore(f"sqlite:///{tmp_path}/r.db")
    calls: list[int] = []

    def work(conn: object) -> str:
        calls.append(1)
        if len(calls) < 3:  # what pymysql raises when InnoDB picks this transaction to abort
            raise OperationalError("INSERT ...", {}, Exception(1213, "Deadlock found"))
        return "done"

    assert store._transaction(work) == "done" and len(calls) == 3

    def broken(conn: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception(1146, "Table doesn't exist"))

    with pytest.raises(OperationalError):
        store._transaction(broken)  # not a lock conflict: no retry, the error surfaces


def test_replicas_capturing_the_same_ids_store_each_once(tmp_path: Path) -> None:
    check_replicas_capturing_the_same_ids_store_each_once(f"sqlite:///{tmp_path}/r.db")


def test_replicas_opening_a_fresh_database_together_all_start(tmp_path: Path) -> None:
    check_replicas_opening_a_fresh_database_together_all_start(f"sqlite:///{tmp_path}/n.db")
