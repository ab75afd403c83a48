"""The KServe contender of benchmarks/serving.py: a KServe ``Model`` over the same MLflow pyfunc.

What a user of KServe would write for this model: ``load`` reads the registered version's
artifact with ``mlflow.pyfunc.load_model`` and ``predict`` answers the v1 protocol
(``{"instances": [text, ...]}`` -> ``{"predictions": [{label, confidence, proba.*}, ...]}``)
through the pyfunc, one request at a time, with ``ModelServer``'s defaults (one worker, no
batching). It runs in its own venv (kserve, mlflow-skinny and the model's libraries; the
``textops`` code the pickled classifier refers to comes from the checkout on ``PYTHONPATH``),
and is given the version's local artifact folder: mlflow-skinny has no SQL registry client.

    $VENV/bin/python benchmarks/serving_kserve.py --model_dir DIR --http_port N
"""

from __future__ import annotations

import argparse
from typing import Any

import kserve
import mlflow.pyfunc
import pandas as pd

MODEL_NAME = "textops"


class PyfuncModel(kserve.Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.pyfunc: Any = None

    def load(self) -> bool:
        self.pyfunc = mlflow.pyfunc.load_model(self.model_dir)
        self.ready = True
        return True

    def predict(self, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        frame = self.pyfunc.predict(pd.DataFrame({"text": payload["instances"]}))
        return {"predictions": frame.to_dict("records")}


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = PyfuncModel(MODEL_NAME, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
