#!/usr/bin/env bash
# Copies the C header that SwiftPM generates from the @c functions to include/mixflow.h.
#   scripts/gen-header.sh           regenerate include/mixflow.h
#   scripts/gen-header.sh --check   fail if include/mixflow.h is stale, if `nm -D` and the header disagree
#                                   on the exported mixflow_* symbols, or if the header does not compile
#                                   as C99/C11 (-Wall -Wextra -Werror) and C++17.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-write}

swift build -c release --product mixflow >/dev/null
BIN=$(swift build -c release --show-bin-path)
GEN="$BIN/Mixflow.build/include/Mixflow-Swift.h"
[[ -f "$GEN" ]] || { echo "gen-header: $GEN was not generated" >&2; exit 1; }

if [[ "$mode" == "--check" ]]; then
    if ! cmp -s "$GEN" include/mixflow.h; then
        echo "gen-header: include/mixflow.h is stale; run scripts/gen-header.sh and commit it" >&2
        diff -u include/mixflow.h "$GEN" | head -40 >&2 || true
        exit 1
    fi
else
    cp "$GEN" include/mixflow.h
    echo "wrote include/mixflow.h"
fi

# The exported symbols must be exactly the header's functions.
exported=$(nm -D --defined-only "$BIN/libmixflow.so" | awk '$2 ~ /^[A-Z]$/ {print $3}' | grep -v '^$' | sort)
declared=$(grep -E '^SWIFT_EXTERN' include/mixflow.h | grep -oE '\bmixflow_[a-z0-9_]+\(' | tr -d '(' | sort)
if [[ "$exported" != "$declared" ]]; then
    echo "gen-header: exported symbols and header declarations differ (< exported, > declared):" >&2
    diff <(echo "$exported") <(echo "$declared") >&2 || true
    exit 1
fi

# The header must compile on its own, strictly, as C and C++.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '#include "mixflow.h"\nint main(void){ return mixflow_abi_version() != MIXFLOW_ABI_VERSION; }\n' > "$tmp/t.c"
for std in c99 c11; do
    gcc -std=$std -Wall -Wextra -Werror -pedantic-errors -isystem include -c "$tmp/t.c" -o "$tmp/t.o" \
        || { echo "gen-header: header fails as $std" >&2; exit 1; }
done
cp "$tmp/t.c" "$tmp/t.cpp"
g++ -std=c++17 -Wall -Wextra -Werror -isystem include -c "$tmp/t.cpp" -o "$tmp/t.o" \
    || { echo "gen-header: header fails as C++17" >&2; exit 1; }
[[ "$mode" == "--check" ]] && echo "gen-header: include/mixflow.h is current; $(echo "$declared" | wc -l) symbols; C99/C11/C++17 OK"
exit 0
