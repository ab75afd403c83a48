"""MLflow tracking and registry: lineage, logging training runs, and the promotion gate."""
