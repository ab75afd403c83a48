#!/bin/sh
# Installs a build context's locked Python packages into a venv, offline (RUN inside the
# Dockerfiles of the operator, training, serving and MLflow images). The context is made by
# textops.packaging.images: wheels/ holds the wheels of one selection of uv.lock and
# requirements.txt naming exactly their versions; project/ holds the textops wheel.
#   install-locked.sh dependencies VENV   a venv without pip, the locked wheels in it
#   install-locked.sh project VENV        textops into it, staged under /stage (its own layer)
# pip comes from a throwaway venv: the image holds the lock's packages and nothing more; no
# index is asked (--no-index) and nothing is resolved (--no-deps); `pip check` proves the
# result consistent.
set -eu
mode=$1
venv=$2
pip() { /tmp/pip/bin/pip --python "$venv/bin/python" "$@"; }

case "$mode" in
dependencies)
    python3 -m venv /tmp/pip
    python3 -m venv --without-pip "$venv"
    pip install --no-cache-dir --no-index --no-deps --find-links /tmp/wheels \
        --requirement /tmp/wheels/requirements.txt
    pip check
    ;;
project)
    pip install --no-cache-dir --no-index --no-deps /tmp/project/textops-*.whl
    pip check
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    mkdir -p "/stage$venv/bin" "/stage$site"
    mv "$site"/textops "$site"/textops-*.dist-info "/stage$site/"
    mv "$venv/bin/textops" "/stage$venv/bin/"
    ;;
*)
    echo "usage: install-locked.sh dependencies|project VENV" >&2
    exit 2
    ;;
esac
