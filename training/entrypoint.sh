#!/bin/sh
# The retraining Job: fold the labels given since the newest dataset version into a new
# version (parent recorded; none when nothing is new), train on that version, register it,
# then gate exactly that version against @champion (never "@challenger": another training of
# the same model may have moved it meanwhile). Settings come from the environment
# (TEXTOPS_*, MLFLOW_*, AWS_*; the label store from TEXTOPS_LABEL_DB).
set -eu
workdir=$(mktemp -d "${TMPDIR:-/tmp}/textops-job.XXXXXX")
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

textops labels export --json --base "${TEXTOPS_DATASET:-latest}" >"$workdir/exported"
cat "$workdir/exported"
dataset=$(field "$workdir/exported" dataset)

textops train --json --dataset "$dataset" "$@" >"$workdir/trained"
cat "$workdir/trained"
version=$(field "$workdir/trained" version)

exec textops promote --version "$version" --dataset "$dataset" \
  --metric "${TEXTOPS_PROMOTION_METRIC:-macro_f1}" \
  --min-improvement "${TEXTOPS_MIN_IMPROVEMENT:-0.0}" \
  --max-recall-drop "${TEXTOPS_MAX_RECALL_DROP:-0.05}"
