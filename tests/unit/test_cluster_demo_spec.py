"""The ModelDeployment ``make cluster-demo`` applies, read back by the operator's own parser.

The API server checks it against the CRD in the cluster test; here the operator's reading is
pinned: two replicas following @champion, the first training asked by annotation, and a
drift retraining that waits for exactly the labels the demo gives.
"""

from __future__ import annotations

from datetime import timedelta

from textops.contracts import Annotation
from textops.demo.in_cluster import CREDENTIALS, MDEP, REPLICAS, SIZE, mdep_body
from textops.operator.spec import ModelDeployment


def test_the_demo_spec_reads_as_the_story_needs() -> None:
    body = mdep_body(
        "reviews-x",
        "s3://datasets/reviews-x",
        1500,
        first_training="first",
        reference_traffic=SIZE.reference_traffic,
    )
    body["metadata"]["namespace"] = "textops-demo"
    mdep = ModelDeployment.from_body(body)
    spec = mdep.spec
    assert mdep.name == MDEP
    assert (spec.model.name, spec.model.alias, spec.model.version) == (
        "reviews-x",
        "champion",
        None,
    )
    assert spec.serving.replicas == REPLICAS == 2
    assert body["metadata"]["annotations"] == {Annotation.RETRAIN: "first"}
    assert spec.retraining.min_new_labels == 1500
    assert spec.retraining.dataset == "s3://datasets/reviews-x"
    assert spec.retraining.reference_traffic == SIZE.reference_traffic > 0
    assert spec.retraining.triggers.on_drift and spec.retraining.triggers.manual
    assert spec.retraining.cooldown == timedelta(seconds=60)
    assert spec.monitoring.feature_drift.for_ == timedelta(seconds=10)
    assert spec.credentials_secret == CREDENTIALS


def test_the_installs_name_each_build_by_its_content_tag() -> None:
    """An upgrade after a rebuild changes the pod templates (the release tag would not)."""
    from textops.devcluster.access import image_values
    from textops.packaging import recipes

    tags = {name: f"textops/{name}:in-{name[:4]}0123" for name in recipes.IMAGES}
    values = image_values({**tags, "serving-embeddings": "textops/serving-embeddings:in-x"})
    assert values["operator"]["image"]["tag"] == "in-oper0123"
    assert values["operator"]["config"] == {
        "servingImage": "textops/serving:in-serv0123",
        "trainingImage": "textops/training:in-trai0123",
    }
    assert values["mlflow"]["image"]["tag"] == "in-mlfl0123"
    assert values["mysql"]["image"]["tag"] == "in-mari0123"
    assert values["minio"]["image"]["tag"] == "in-s3-s0123"
    assert values["prometheus"]["image"]["tag"] == "in-prom0123"
    assert set(values) == {"operator", "mlflow", "mysql", "minio", "prometheus"}
