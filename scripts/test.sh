#!/usr/bin/env bash
# The whole test suite (what CI runs): Swift tests, the header check, the C examples, the Python tests and
# examples, and the Swift tests again under AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { echo; echo "==== $* ($((SECONDS - start)) s)"; }

step "dependencies";               scripts/install-deps.sh
step "release build";              swift build -c release
step "header check";               scripts/gen-header.sh --check
step "Swift tests";                swift test 2>&1 | tail -n 30
step "C examples";                 make -C examples/c run
step "Python tests";               (cd bindings/python && python3 -m pytest -q tests)
# Examples that take a minute in full have a --quick mode for CI; exit status 77 means skipped (torch missing);
# data_parallel.py runs under mpirun in tests/test_mpi.py.
step "Python examples";            for e in examples/python/*.py; do
                                       [[ $e == */data_parallel.py ]] && continue
                                       echo "-- $e"; rc=0
                                       if grep -q -- '--quick' "$e"; then python3 "$e" --quick || rc=$?; else python3 "$e" || rc=$?; fi
                                       if ((rc == 77)); then echo "(skipped)"; elif ((rc)); then exit "$rc"; fi
                                   done
step "Swift tests under ASan";     LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp" swift test --sanitize=address --scratch-path .build/asan 2>&1 | tail -n 30
step "ONNX reader fuzzing (60 s)"; scripts/fuzz-onnx.sh 60 2>&1 | tail -n 5
step "done in $((SECONDS - start)) s"
