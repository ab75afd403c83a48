#!/bin/sh
# Train on a dataset version (default: the newest), register it as @challenger, then gate it
# against @champion. Settings come from the environment (TEXTOPS_*, MLFLOW_*, AWS_*).
set -eu
textops train --dataset "${TEXTOPS_DATASET:-latest}" "$@"
exec textops promote --dataset "${TEXTOPS_DATASET:-latest}" \
  --metric "${TEXTOPS_PROMOTION_METRIC:-macro_f1}" \
  --min-improvement "${TEXTOPS_MIN_IMPROVEMENT:-0.0}" \
  --max-recall-drop "${TEXTOPS_MAX_RECALL_DROP:-0.05}"
