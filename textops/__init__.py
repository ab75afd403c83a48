"""textops: MLOps for text classifiers — versioned data, training with MLflow lineage, gated
promotion, serving, drift monitoring and a Kubernetes operator that closes the loop."""

__version__ = "0.1.0"
