"""The training job: dataset version in, registered model version with full lineage out."""
