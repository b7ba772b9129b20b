#!/usr/bin/env bash
# The whole test suite (what CI runs): Swift tests, the header check, the C examples, installing (C and Python),
# the Python tests and examples, and the Swift tests again under AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { echo; echo "==== $* ($((SECONDS - start)) s)"; }

step "dependencies";               scripts/install-deps.sh
step "documentation references";   python3 scripts/check-doc-refs.py    # citations, links, quickstarts (~1 s)
step "release build";              swift build -c release
step "header check";               scripts/gen-header.sh --check
step "Swift tests";                swift test 2>&1 | tail -n 30
step "C examples";                 make -C examples/c run
# Installs into a temporary prefix and builds + runs a C program with pkg-config only, without the Swift
# toolchain; builds the wheel and imports it in a fresh venv from another folder (4-8 min: a -static-stdlib build).
step "install, pkg-config and wheel"; scripts/test-packaging.sh
step "Python tests";               (cd bindings/python && python3 -m pytest -q tests)
# Examples that take a minute in full have a --quick mode for CI; exit code 77 means "skipped" (it says why).
# data_parallel.py runs under mpirun in tests/test_mpi.py.
step "Python examples";            for e in examples/python/*.py; do
                                       [[ $e == */data_parallel.py ]] && continue
                                       echo "-- $e"; args=(); grep -q -- '--quick' "$e" && args=(--quick)
                                       s=0; PYTHONPATH="$PWD/bindings/python" python3 "$e" "${args[@]}" || s=$?
                                       if [[ $s == 77 ]]; then echo "   (skipped)"; elif [[ $s != 0 ]]; then exit "$s"; fi
                                   done
step "Swift tests under ASan";     LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp" swift test --sanitize=address --scratch-path .build/asan 2>&1 | tail -n 30
step "C-API sweep under ASan";     scripts/capi-sweep.sh 2>&1 | grep -v "ld.gold: warning" | tail -n 20
step "ONNX reader fuzzing (60 s)"; scripts/fuzz-onnx.sh 60 2>&1 | tail -n 5
step "done in $((SECONDS - start)) s"
