#!/usr/bin/env bash
# The C-API sweep: generates a C program from include/mixflow.h (scripts/gen-capi-sweep.py), builds it with
# AddressSanitizer against libmixflow, and runs it: every exported function with NULL / extreme integers /
# NaN and ±Inf, one argument at a time, in one process. Fails on a trap, an ASan report, or a failed call
# without a message. Prints the number of calls. About 10 s after the library is built.
#   scripts/capi-sweep.sh               the library built with --sanitize=address (.build/asan), as CI runs it
#   scripts/capi-sweep.sh --release     the release library (quicker to build; only the harness is instrumented)
#   scripts/capi-sweep.sh --fork        each call in a child process: lists every crashing call (to review exemptions)
#   scripts/capi-sweep.sh --verbose     prints each call's status and message; --only PREFIX runs the calls whose
#                                       label starts with PREFIX (e.g. mixflow_sampler_create.params->)
set -euo pipefail
cd "$(dirname "$0")/.."
lib_mode=asan; args=()
for a in "$@"; do
    case "$a" in
        --release) lib_mode=release ;;
        *) args+=("$a") ;;
    esac
done
if [[ $lib_mode == asan ]]; then
    swift build --sanitize=address --scratch-path .build/asan --product mixflow >/dev/null
    LIBDIR=$(swift build --sanitize=address --scratch-path .build/asan --show-bin-path)
else
    swift build -c release --product mixflow >/dev/null
    LIBDIR=$(swift build -c release --show-bin-path)
fi
# The Swift toolchain's clang: its ASan runtime is the one the Swift build links against.
CC=$(dirname "$(command -v swift)")/clang
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 scripts/gen-capi-sweep.py > "$tmp/sweep.c"
# The program asks for the SONAME, libmixflow.so.0: $tmp holds that name for the build's file.
ln -s "$LIBDIR/libmixflow.so" "$tmp/libmixflow.so.0"
"$CC" -std=c11 -g -O1 -fsanitize=address -fno-omit-frame-pointer -Wall -Wno-unused-function -I include \
    "$tmp/sweep.c" -o "$tmp/sweep" -L"$LIBDIR" -lmixflow -Wl,-rpath,"$tmp" -lm 2>&1 | { grep -v "Cannot export local symbol" || true; }
# Leaks are not this test's subject (the Swift runtime keeps caches alive); memory errors and traps are.
# allocator_may_return_null: a failed malloc returns NULL as in a host process (ASan would abort instead);
# malloc_limit_mb: any single allocation over 2 GiB fails, so an unchecked size that would allocate (and touch)
# gigabytes becomes a failed allocation: the library's status if it checks, a trap (a finding) if not;
# hard_rss_limit_mb: the run dies with a report beyond 4 GiB resident. MIXFLOW_MEMORY_LIMIT_MB: the library's
# own budget (MemoryBudget) to match, so a claimed size whose scratch exceeds it is refused with
# MIXFLOW_ERR_OUT_OF_MEMORY on any machine. A call that does not return within 60 s fails the run too.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:malloc_limit_mb=2048:hard_rss_limit_mb=4096 \
    SWIFT_BACKTRACE=enable=no MIXFLOW_MEMORY_LIMIT_MB=2048 "$tmp/sweep" "${args[@]}" "$PWD"
