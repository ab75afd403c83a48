"""The online serving side: a BentoML service over one pinned registered model version.

Pure modules (``config``, ``validation``, ``quality``, ``recent``) import neither BentoML nor
MLflow, so they are tested without a server; ``model_loader`` talks to the registry, ``metrics``
owns every Prometheus metric, ``app`` wires them into the BentoML class, ``launcher`` runs it.
"""
