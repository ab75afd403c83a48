"""Resolve a registry URI to one pinned version and load it with its drift reference profile.

Serving an alias would let the model change under a running pod; so an alias
(``models:/NAME@champion``) is resolved once, here, to ``models:/NAME/VERSION`` and only that
pinned version is loaded. The pyfunc is loaded through MLflow (the very artifact the gate
scored) and unwrapped: the service calls the classifier directly on lists of texts, and the
profile that travels inside the model becomes the reference for monitoring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textops.errors import RegistryError
from textops.model.classifier import TextClassifier
from textops.settings import Settings

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model and either a version or an alias."""

    name: str
    version: str | None = None
    alias: str | None = None

    @property
    def pinned(self) -> bool:
        return self.version is not None

    @property
    def uri(self) -> str:
        return (
            f"models:/{self.name}/{self.version}"
            if self.version
            else f"models:/{self.name}@{self.alias}"
        )


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``; anything else is refused."""
    match = _MODELS_URI.match(uri.strip())
    if match is None:
        raise RegistryError(
            f"not a registered model URI: {uri!r}; use models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    return ModelRef(match["name"], match["version"], match["alias"])


def resolve(settings: Settings, uri: str) -> ModelRef:
    """The pinned version ``uri`` names now; refuses unknown models, versions and aliases."""
    from mlflow.exceptions import MlflowException

    from textops.registry.gate import alias_version
    from textops.registry.tracking import connect, is_missing

    ref = parse_model_uri(uri)
    client = connect(settings)
    if ref.alias is not None:
        version = alias_version(client, ref.name, ref.alias)
        if version is None:
            raise RegistryError(f"model {ref.name!r} has no version with alias {ref.alias!r}")
        return ModelRef(ref.name, version)
    try:
        client.get_model_version(ref.name, str(ref.version))
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        raise RegistryError(f"model {ref.name!r} has no version {ref.version}") from None
    return ref


WARM_UP_TEXT = "预热"


@dataclass
class LoadedModel:
    """One pinned model version, ready to classify."""

    ref: ModelRef
    classifier: TextClassifier
    profile: dict[str, Any]
    # run, dataset, code, image and trigger of the version (see registry.lineage)
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def version(self) -> str:
        return str(self.ref.version)

    @property
    def classes(self) -> list[str]:
        return list(self.classifier.classes)

    def predict_proba_with_embeddings(
        self, texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities plus the sentence embeddings the model computed (None without an
        encoder), for the drift window."""
        return self.classifier.predict_proba_with_embeddings(texts)


def load(settings: Settings, ref: ModelRef) -> LoadedModel:
    """Load a pinned version's pyfunc from the registry and check its profile fits it."""
    import mlflow.pyfunc

    from textops.model.pyfunc import TextClassifierModel
    from textops.registry.lineage import serving_lineage
    from textops.registry.tracking import connect

    if not ref.pinned:
        raise RegistryError(f"{ref.uri} is not pinned; resolve it first")
    version = connect(settings).get_model_version(ref.name, str(ref.version))
    lineage = serving_lineage(version.run_id, dict(version.tags or {}))
    python_model = mlflow.pyfunc.load_model(ref.uri).unwrap_python_model()
    if not isinstance(python_model, TextClassifierModel):
        raise RegistryError(f"{ref.uri} is not a textops text classifier")
    profile = python_model.profile
    if not profile or "vocabulary" not in profile:
        raise RegistryError(f"{ref.uri} carries no drift reference profile")
    if list(profile.get("classes", [])) != list(python_model.classifier.classes):
        raise RegistryError(f"{ref.uri}: the reference profile's classes differ from the model's")
    # the pyfunc has set the classifier up for serving (one XGBoost thread, fast layouts)
    model = LoadedModel(ref, python_model.classifier, profile, lineage)
    # one prediction before anyone reports ready: an encoder imports torch and transformers
    # and reads its weights on first use (6-17 s on 2 cores), which the first request would
    # otherwise pay, past the request timeout (it answered 504)
    model.predict_proba_with_embeddings([WARM_UP_TEXT])
    return model
