"""The classifier, its evaluation and plots, and the MLflow pyfunc that serves it."""
