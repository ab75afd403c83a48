"""``make cluster-demo``'s story on the installed chart: the loop closes in the cluster by itself.

Real, all of it: the chart with the dev values on the real node (tests/cluster/stack.py), the
operator in its pod, two serving pods from the serving image behind the Service, the
retraining Jobs in the training image, the label store on the chart's MariaDB, MLflow, the S3
server and Prometheus in pods. The test only starts the story (textops/demo/in_cluster.py)
and reads what it left: no dataset version is made by hand after the first one, and no
label is written anywhere but through the Service.

Done when (issue 15): v2 serves on both replicas, promoted by a Job the operator started on
drift, trained on a dataset version whose parent is v1's and which holds the labels given in
the cluster; the same shifted mix reads under the feature drift threshold on v2 (prediction
drift on v2 is reported, not asserted: see the comment in the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.cluster.stack import Stack, delete_when_done
from tests.plugins.cluster import port_forward
from textops.demo import in_cluster
from textops.demo.in_cluster import MDEP, REPLICAS, Installation, Watch
from textops.progress import Progress

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.images,
    pytest.mark.integration,
    pytest.mark.slow,  # about 8 minutes on 2 idle cores
    pytest.mark.timeout(2400),
]


@pytest.fixture
def stack(chart_stack: Stack) -> Iterator[Stack]:
    with delete_when_done(chart_stack, MDEP):
        yield chart_stack


def test_the_operator_retrains_on_the_labels_given_in_the_cluster_and_drift_settles(
    stack: Stack, tmp_path: Path
) -> None:
    inst = Installation(stack.cluster, stack.api, stack.namespace, stack.release)
    summary = in_cluster.run_cluster_demo(
        inst, tmp_path, progress=Progress(total=in_cluster.STAGES)
    )

    v1, v2 = summary["v1"], summary["v2"]
    # v1: trained by the Job the first-training annotation asked for (no champion yet)
    assert (v1["trigger"], v1["gate"]["decision"]) == ("manual", "promoted"), v1
    assert v1["dataset"] == summary["dataset_v1"]
    # v2: a drift retraining the operator started, on a new dataset version derived from v1's
    assert (v2["trigger"], v2["gate"]["decision"]) == ("drift", "promoted"), v2
    dataset = summary["dataset_v2"]
    assert dataset["dataset"] == v2["dataset"] != v1["dataset"]
    assert dataset["parent"] == v1["dataset"]
    given = summary["feedback_before_retraining"] + summary["labelling"]["labelled"]
    assert summary["labelling"]["labelled"] == summary["size"]["labels"]
    # a text may get both a user's feedback and the annotator's label: one row
    assert summary["labelling"]["labelled"] <= dataset["labels_added"] <= given, summary
    events = [tuple(e) for e in summary["history"]]
    assert ("RetrainingStarted", None, v2["job"]) in events, events
    assert ("Promoted", v2["version"], v2["job"]) in events, events
    assert ("RolledOut", v2["version"], None) in events, events

    # the shifted mix drifted on v1; on v2 its feature drift, which started the retraining,
    # reads under the threshold. Prediction drift on v2 is not asserted: v2's reference is the
    # served texts it was not fitted on, which leaves out the labelled (uncertain) ones and
    # reads surer than the traffic: 0.75x and 1.01x of its threshold in two runs of this story
    shifted, after = summary["phases"]["shifted"], summary["phases"]["after retraining"]
    assert (shifted["version"], after["version"]) == (v1["version"], v2["version"])
    assert shifted["drifted"], shifted
    assert shifted["drift_final"]["feature_ratio"] > 1.0, shifted
    assert after["drift_final"]["feature_ratio"] < 1.0, after
    assert after["accuracy"]["hotel"] > shifted["accuracy"]["hotel"], summary["phases"]

    with port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-prometheus", 9090) as url:
        watch = Watch(inst, MDEP, url)
        assert watch.status()["servingVersion"] == v2["version"]
        assert len(watch.ready_pods(v2["version"])) == REPLICAS
        # no second drift retraining: the labels are exported and drift is quiet
        assert len(watch.jobs()) == 2
    with port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-mlflow", 5000) as url:
        registry = MlflowClient(tracking_uri=url, registry_uri=url)
        champion = registry.get_model_version_by_alias(summary["model"], "champion")
        assert str(champion.version) == v2["version"]
        assert champion.tags["textops.dataset.parent"] == v1["dataset"]
        assert int(champion.tags["textops.dataset.labels_added"]) == dataset["labels_added"]
    assert Path(summary["report"]).is_file()
