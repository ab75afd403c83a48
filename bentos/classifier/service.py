"""The Bento entry point: the service lives in ``textops.serving.app`` (installed package)."""

from textops.serving.app import TextClassifierService

__all__ = ["TextClassifierService"]
