"""The textops operator: the ModelDeployment model, pure decisions, and the I/O that acts on them.

Pure modules (``spec``, ``config``, ``builders``, ``policy``, ``rollout``, ``retraining``,
``status``, ``durations``, ``cron``) import no kopf, kubernetes or mlflow: they turn plain data
(the custom resource as the API server returns it, observations, status) into plain data
(object bodies, decisions, the next status), so they are tested without a cluster. The I/O
modules (``handlers``, ``reconcile``, ``kube_io``, ``registry_io``, ``prometheus_io``, ``main``)
read the world, call them and write the result.
"""
