"""The label store on a real MariaDB (utf8mb4: Chinese and emoji survive)."""

from __future__ import annotations

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
from textops.devservers import MariaDBServer
from textops.labelling.store import LabelStore

pytestmark = pytest.mark.integration


def _fresh(mariadb: MariaDBServer, name: str) -> str:
    mariadb.create_database(name)
    return mariadb.url(name)


def test_queue_label_skip_and_conflicts(mariadb: MariaDBServer) -> None:
    check_queue_label_skip_and_conflicts(LabelStore(_fresh(mariadb, "labels_a")))


def test_each_model_has_its_own_queue(mariadb: MariaDBServer) -> None:
    check_each_model_has_its_own_queue(LabelStore(_fresh(mariadb, "labels_m")))


def test_reopening_keeps_data_and_schema(mariadb: MariaDBServer) -> None:
    check_reopening_keeps_data_and_schema(_fresh(mariadb, "labels_b"))


def test_concurrent_submissions_do_not_duplicate(mariadb: MariaDBServer) -> None:
    check_concurrent_submissions_do_not_duplicate(LabelStore(_fresh(mariadb, "labels_c")))


def test_replicas_capturing_the_same_ids_store_each_once(mariadb: MariaDBServer) -> None:
    check_replicas_capturing_the_same_ids_store_each_once(_fresh(mariadb, "labels_d"))


def test_upgrade_from_the_first_schema_keeps_data(mariadb: MariaDBServer) -> None:
    check_upgrade_from_the_first_schema_keeps_data(_fresh(mariadb, "labels_e"))


def test_feedback_is_claimed_once(mariadb: MariaDBServer) -> None:
    check_feedback_is_claimed_once(LabelStore(_fresh(mariadb, "labels_f")))


def test_replicas_claiming_the_same_prediction_count_it_once(mariadb: MariaDBServer) -> None:
    check_replicas_claiming_the_same_prediction_count_it_once(
        LabelStore(_fresh(mariadb, "labels_g"))
    )


def test_old_predictions_are_pruned(mariadb: MariaDBServer) -> None:
    check_old_predictions_are_pruned(LabelStore(_fresh(mariadb, "labels_h")))


def test_replicas_opening_a_fresh_database_together_all_start(mariadb: MariaDBServer) -> None:
    check_replicas_opening_a_fresh_database_together_all_start(_fresh(mariadb, "labels_i"))
