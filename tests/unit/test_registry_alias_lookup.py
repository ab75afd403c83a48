"""An alias lookup tells "MLflow has no such alias" from "MLflow failed to answer".

Stand-in: a client object whose one method raises the exception an MLflow server's answer
becomes. A real server cannot be made to fail this one call on demand after answering its
health probe; the outage as a whole runs against a real server stopped and restarted in
tests/integration/test_registry_outage.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from textops.registry.gate import alias_version


class _Answers:
    def __init__(self, error_code: str) -> None:
        self.error_code = error_code

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        code = databricks_pb2.ErrorCode.Value(self.error_code)
        raise MlflowException(f"{name}@{alias}: {self.error_code}", error_code=code)


def test_no_such_alias_is_none() -> None:
    assert alias_version(_Answers("RESOURCE_DOES_NOT_EXIST"), "m", "champion") is None


@pytest.mark.parametrize("code", ["INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"])
def test_a_failed_answer_is_raised_not_read_as_no_champion(code: str) -> None:
    with pytest.raises(MlflowException, match=code):
        alias_version(_Answers(code), "m", "champion")
