#!/bin/bash
# Entry point of the S3 stand-in for the MinIO image (see Dockerfile beside it): takes MinIO's
# command line and environment and runs versitygw's posix backend over the same directory.
#   server DIR [--address ADDR] [--console-address ADDR]    (ADDR as MinIO: ":9000", "ip:port")
#   MINIO_ROOT_USER / MINIO_ROOT_PASSWORD                    root credentials (MinIO's defaults)
#   MINIO_REGION (or MINIO_SITE_REGION)                      region, default us-east-1
# Any other command runs as it is (e.g. `versitygw --help`).
set -euo pipefail

log() { printf '[s3-standin] %s\n' "$*" >&2; }

if [[ $# -eq 0 ]]; then
    set -- server /data
fi
if [[ "$1" != server ]]; then
    exec "$@"
fi
shift

address=":9000"
dirs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --address) address="${2:?--address needs a value}"; shift 2 ;;
        --address=*) address="${1#*=}"; shift ;;
        # versitygw has no console on another port: accepted so MinIO's usual args work
        --console-address) log "ignoring --console-address $2 (no console)"; shift 2 ;;
        --console-address=*) log "ignoring $1 (no console)"; shift ;;
        --quiet | --json | --anonymous) shift ;;
        -*) log "error: MinIO option $1 is not supported by this stand-in"; exit 2 ;;
        *) dirs+=("$1"); shift ;;
    esac
done
if [[ ${#dirs[@]} -ne 1 || "${dirs[0]}" == *"{"* ]]; then
    log "error: exactly one data directory is supported, got: ${dirs[*]:-none}"
    exit 2
fi

# As MinIO: minioadmin/minioadmin when unset (it warns too); the older names still work.
access="${MINIO_ROOT_USER:-${MINIO_ACCESS_KEY:-}}"
secret="${MINIO_ROOT_PASSWORD:-${MINIO_SECRET_KEY:-}}"
if [[ -z "$access" || -z "$secret" ]]; then
    log "warning: MINIO_ROOT_USER/MINIO_ROOT_PASSWORD not set: using minioadmin/minioadmin"
    access=minioadmin secret=minioadmin
fi
# Through the environment, not argv: kept out of `ps` and /proc/*/cmdline.
export ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret"
unset MINIO_ROOT_PASSWORD MINIO_SECRET_KEY

region="${MINIO_REGION:-${MINIO_SITE_REGION:-us-east-1}}"
log "serving ${dirs[0]} on $address (region $region)"
# --health takes one path, but it is a route pattern: the wildcard answers MinIO's
# /minio/health/live, /ready and /cluster alike. --quiet: no log line per request (per probe).
exec versitygw --port "$address" --region "$region" --health '/minio/health/*' --quiet \
    posix "${dirs[0]}"
