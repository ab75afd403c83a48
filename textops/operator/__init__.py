"""The textops operator's pure half: the ModelDeployment model, builders and policies.

Modules here import no kopf, kubernetes or mlflow: they turn plain data (the custom resource as
the API server returns it, observations, status) into plain data (object bodies, decisions),
so they are tested without a cluster. The handlers that read and write the world live apart.
"""
