#!/bin/sh
# Train on a dataset version (default: the newest), register it, then gate exactly that
# version against @champion (never "@challenger": another training of the same model may
# have moved it meanwhile). Settings come from the environment (TEXTOPS_*, MLFLOW_*, AWS_*).
set -eu
trained=$(mktemp "${TMPDIR:-/tmp}/textops-trained.XXXXXX")
textops train --json --dataset "${TEXTOPS_DATASET:-latest}" "$@" >"$trained"
cat "$trained"
version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$trained")
exec textops promote --version "$version" --dataset "${TEXTOPS_DATASET:-latest}" \
  --metric "${TEXTOPS_PROMOTION_METRIC:-macro_f1}" \
  --min-improvement "${TEXTOPS_MIN_IMPROVEMENT:-0.0}" \
  --max-recall-drop "${TEXTOPS_MAX_RECALL_DROP:-0.05}"
