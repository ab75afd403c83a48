#!/usr/bin/env bash
# Build the S3 server the integration tests and `python -m textops.devservers` run: versitygw,
# an Apache-2.0 S3 gateway over a POSIX directory (MinIO's module is refused by the Go proxy).
#
# Idempotent: does nothing when the binary is already in the versioned tool cache
#   ${TEXTOPS_CACHE:-$HOME/.cache/textops}/tools-v1/versitygw-<version>/versitygw
# Cold build (module download + compile) takes a few minutes on 2 cores; see docs/servers.md.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
CACHE="${TEXTOPS_CACHE:-$HOME/.cache/textops}/tools-v1"
DEST="$CACHE/versitygw-$VERSITYGW_VERSION"
BIN="$DEST/versitygw"

if [[ -x "$BIN" ]]; then
    echo "versitygw $VERSITYGW_VERSION already built: $BIN" >&2
    exit 0
fi

if ! command -v go >/dev/null 2>&1; then
    if [[ -x /usr/local/go/bin/go ]]; then
        export PATH="/usr/local/go/bin:$PATH"
    else
        echo "error: the Go toolchain is needed to build versitygw (go not on PATH)" >&2
        exit 1
    fi
fi

mkdir -p "$DEST"
# Build into a temporary GOBIN and move into place, so an interrupted build never leaves a
# half-written binary that the check above would take as done.
TMP="$(mktemp -d "$DEST/.build.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "building versitygw $VERSITYGW_VERSION into $DEST (go $(go env GOVERSION))" >&2
start=$SECONDS
GOTOOLCHAIN=local GOBIN="$TMP" GOFLAGS="${GOFLAGS:--buildvcs=false}" \
    go install \
    -ldflags "-s -w -X main.Version=$VERSITYGW_VERSION -X main.Build=go-install" \
    "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
mv "$TMP/versitygw" "$BIN"
echo "built $BIN in $((SECONDS - start))s" >&2
"$BIN" --version >&2
