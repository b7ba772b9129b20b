#!/usr/bin/env bash
# Installs what libmixflow needs on Debian 12 (with the Swift toolchain already on PATH):
# the -dev packages it links, the data the demos and tests read, and the Python test dependencies.
set -euo pipefail
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
PACKAGES=(libopenblas-dev libonnx-dev libprotobuf-dev pkg-config dataset-fashion-mnist libonnx-testdata
          zlib1g-dev   # zlib1g-dev: gzip IDX files (data and evaluation)
          cmake        # cmake: scripts/test-packaging.sh checks docs/install.md's pkg_check_modules usage
          openmpi-bin libopenmpi-dev)  # MPI for the data-parallel entry points (never linked by libmixflow.so)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: apt-get install ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/../bindings/python/requirements-test.txt"
# mpi4py for examples/python/data_parallel.py, built from source against the Open MPI above so that it uses exactly
# that MPI (not a binary wheel's); a few minutes of compiling, once.
python3 -c "import mpi4py" 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check --no-binary=mpi4py 'mpi4py>=4,<5'
