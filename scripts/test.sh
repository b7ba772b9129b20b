#!/usr/bin/env bash
# The whole test suite (what CI runs): Swift tests, the header check, the C examples, installing (C and Python),
# the Python tests and examples, the Swift tests again under AddressSanitizer, the fresh-clone run, the kill test
# and the fuzzers (docs/reliability.md).
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
# OpenBLAS computes only the float64 metrics (FD, KID, LAPACK); its kernel depends on the CPU, so both suites run
# once more on the AVX2 kernels every x86-64 CPU since 2013 can run (issue 13). No rebuild; ~4-5 min.
step "Swift and Python tests, OPENBLAS_CORETYPE=Haswell"
                                   export OPENBLAS_CORETYPE=Haswell
                                   swift test 2>&1 | tail -n 30
                                   (cd bindings/python && python3 -m pytest -q tests)
                                   unset OPENBLAS_CORETYPE
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
# The README's first command from outside the repository, --out under folders that do not exist yet (~20 s).
step "fresh-clone posttrain";      (d=$(mktemp -d) && cd "$d" && "$OLDPWD/scripts/mixflow" posttrain --steps 2 --batch 8 \
                                        --eval-samples 16 --eval-steps 3 --eval-methods euler --gamma 0.1 --out not/yet/there/run \
                                        | tail -n 1 && test -f not/yet/there/run/mixflow.onnx && rm -rf "$d")
# Random SIGKILLs of save loops: what is on disk loads as one save or is refused; no temporaries pile up (~40 s).
step "kill test (12 kills each)";  python3 scripts/kill-test.py --kills 12
# 60 s per target after a ~3 min build; a finding fails the step and its reproducer stays in .build/fuzz/artifacts-*.
for t in onnx checkpoint idx; do
    step "fuzzing: $t reader (60 s)"; scripts/fuzz.sh "$t" 60 2>&1 | tail -n 5
done
step "fuzzing: converter (60 s)";  python3 fuzz/convert_mutator.py --seconds 60 --artifacts .build/fuzz/artifacts-convert
step "done in $((SECONDS - start)) s"
