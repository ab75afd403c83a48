#!/bin/sh
# Installs a build context's locked Python packages into a venv, offline (RUN inside the
# Dockerfiles of the operator, training, serving and MLflow images). The context is made by
# textops.packaging.images: wheels/ holds the wheels of one selection of uv.lock and
# requirements.txt naming exactly their versions; project/ holds the textops wheel.
#   install-locked.sh dependencies VENV   a venv without pip, the locked wheels in it
#   install-locked.sh project VENV        textops into it, staged under /stage (its own layer)
#   install-locked.sh project-alone VENV MODULE...
#                                         textops without its declared dependencies (the
#                                         wheels are a group's closure, not textops's: the
#                                         operator's), staged the same way
# pip comes from a throwaway venv: the image holds the lock's packages and nothing more; no
# index is asked (--no-index) and nothing is resolved (--no-deps); `pip check` proves the
# result consistent. In project-alone mode `pip check` would fail on the dependencies left
# out on purpose: importing each MODULE proves instead that what the image runs is there.
set -eu
mode=$1
venv=$2
pip() { /tmp/pip/bin/pip --python "$venv/bin/python" "$@"; }
install_project() { pip install --no-cache-dir --no-index --no-deps /tmp/project/textops-*.whl; }
stage_project() {
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    mkdir -p "/stage$venv/bin" "/stage$site"
    mv "$site"/textops "$site"/textops-*.dist-info "/stage$site/"
    mv "$venv/bin/textops" "/stage$venv/bin/"
}
usage() {
    echo "usage: install-locked.sh dependencies|project VENV" >&2
    echo "       install-locked.sh project-alone VENV MODULE..." >&2
    exit 2
}

case "$mode" in
dependencies)
    python3 -m venv /tmp/pip
    python3 -m venv --without-pip "$venv"
    pip install --no-cache-dir --no-index --no-deps --find-links /tmp/wheels \
        --requirement /tmp/wheels/requirements.txt
    pip check
    ;;
project)
    install_project
    pip check
    stage_project
    ;;
project-alone)
    shift 2
    [ $# -gt 0 ] || usage
    install_project
    # -B: the staged layer holds what pip installed, no byte code of this check
    "$venv/bin/python" -B -c \
        'import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]' "$@"
    stage_project
    ;;
*)
    usage
    ;;
esac
