#!/usr/bin/env bash
# Writes include/mixflow.h from the @c functions (scripts/gen-header.py: the compiler's C prototypes, the Swift
# doc comments, one section per object) and checks it.
#   scripts/gen-header.sh           regenerate include/mixflow.h
#   scripts/gen-header.sh --check   fail if include/mixflow.h is stale, if `nm -D` and the header disagree on
#                                   the exported mixflow_* symbols, if the headers put a name outside MIXFLOW_* /
#                                   mixflow_* into the user's namespace, or if they do not compile warning-free
#                                   with plain -I as C99/C11/C17 and C++11/C++17 (-Wall -Wextra -Wpedantic -Werror).
# About 5 s after a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-write}

swift build -c release --product mixflow >/dev/null
BIN=$(swift build -c release --show-bin-path)
GEN="$BIN/Mixflow.build/include/Mixflow-Swift.h"
[[ -f "$GEN" ]] || { echo "gen-header: $GEN was not generated" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 scripts/gen-header.py "$GEN" Sources/Mixflow > "$tmp/generated.h"

if [[ "$mode" == "--check" ]]; then
    if ! cmp -s "$tmp/generated.h" include/mixflow.h; then
        echo "gen-header: include/mixflow.h is stale; run scripts/gen-header.sh and commit it" >&2
        diff -u include/mixflow.h "$tmp/generated.h" | head -40 >&2 || true
        exit 1
    fi
else
    cp "$tmp/generated.h" include/mixflow.h
    echo "wrote include/mixflow.h"
fi

# The exported symbols must be exactly the header's functions.
exported=$(nm -D --defined-only "$BIN/libmixflow.so" | awk '$2 ~ /^[A-Z]$/ {print $3}' | grep -v '^$' | sort)
declared=$(grep -oE '^[a-z_0-9 ]+[ *]mixflow_[a-z0-9_]+\(' include/mixflow.h | sed -E 's/.*[ *](mixflow_[a-z0-9_]+)\($/\1/' | sort)
if [[ "$exported" != "$declared" ]]; then
    echo "gen-header: exported symbols and header declarations differ (< exported, > declared):" >&2
    diff <(echo "$exported") <(echo "$declared") >&2 || true
    exit 1
fi

# Nothing but MIXFLOW_* macros and mixflow_* types beyond what <stddef.h> and <stdint.h> define.
printf '#include <stddef.h>\n#include <stdint.h>\n' > "$tmp/base.c"
printf '#include <stddef.h>\n#include <stdint.h>\n#include "mixflow.h"\n' > "$tmp/with.c"
macros() { gcc -E -dM -I include "$1" | awk '{print $2}' | sed 's/(.*//' | sort -u; }
types() { gcc -E -P -I include "$1" | tr '\n' ' ' | grep -oE '\}[^;{}]*;|typedef [^;{}]*;' \
          | grep -oE '[A-Za-z_][A-Za-z_0-9]*\s*;$' | tr -d ' ;' | sort -u; }
leaked_macros=$(comm -13 <(macros "$tmp/base.c") <(macros "$tmp/with.c") | grep -v '^MIXFLOW_' | tr '\n' ' ' || true)
leaked_types=$(comm -13 <(types "$tmp/base.c") <(types "$tmp/with.c") | grep -v '^mixflow_' | tr '\n' ' ' || true)
if [[ -n "$leaked_macros$leaked_types" ]]; then
    echo "gen-header: the headers define names outside MIXFLOW_*/mixflow_*: $leaked_macros $leaked_types" >&2
    exit 1
fi

# The headers must compile on their own, strictly, as C and C++, with plain -I.
printf '#include "mixflow.h"\nint main(void) { return mixflow_abi_version() != MIXFLOW_ABI_VERSION; }\n' > "$tmp/t.c"
cp "$tmp/t.c" "$tmp/t.cpp"
strict=(-Wall -Wextra -Wpedantic -Werror -I include)
for std in c99 c11 c17; do
    gcc -std=$std "${strict[@]}" -c "$tmp/t.c" -o "$tmp/t.o" || { echo "gen-header: the header fails as $std" >&2; exit 1; }
done
for std in c++11 c++17; do
    g++ -std=$std "${strict[@]}" -c "$tmp/t.cpp" -o "$tmp/t.o" || { echo "gen-header: the header fails as $std" >&2; exit 1; }
done
[[ "$mode" == "--check" ]] && echo "gen-header: include/mixflow.h is current; $(echo "$declared" | wc -l) functions; no leaked names; C99/C11/C17, C++11/C++17 clean"
exit 0
