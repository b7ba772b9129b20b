#!/usr/bin/env bash
# What a user gets from scripts/install.sh and from `pip install ./bindings/python`, checked on this machine as
# if it had no Swift toolchain: every program runs under `env -i PATH=/usr/bin:/bin` (no Swift on PATH, no
# LD_LIBRARY_PATH) and, where the kernel lets us (unshare), with /opt/swift hidden behind an empty folder.
#   C:      install into a temporary prefix; check the files, links, SONAME and that no Swift runtime is needed;
#           build an out-of-tree C program and the C examples with pkg-config only, and with docs/install.md's
#           CMake snippet; run them; run the installed `mixflow` (posttrain on its installed defaults); uninstall.
#   Python: build the wheel after `swift build -c release`, install it into a fresh venv (numpy from pip),
#           import it from another folder and run a transport call; the source tree stays clean.
# Needs the release build. About 4-8 min on 2 cores, most of it the -static-stdlib build of the library.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "test-packaging: $*" >&2; exit 1; }
version=$(sed -nE 's/^#define MIXFLOW_VERSION_STRING "([0-9.]+)"$/\1/p' include/mixflow_types.h)
clean=(env -i PATH=/usr/bin:/bin)
mkdir "$tmp/empty"
if unshare --mount true 2>/dev/null && [[ -d /opt/swift ]]; then
    # Runs "$@" with the toolchain folder hidden (a machine without Swift), in a clean environment.
    no_swift() { unshare --mount sh -c 'mount --bind "$0" /opt/swift && exec "$@"' "$tmp/empty" "${clean[@]}" "$@"; }
else
    echo "test-packaging: cannot hide /opt/swift (no unshare); running with a clean environment only"
    no_swift() { "${clean[@]}" "$@"; }
fi

echo "-- C: scripts/install.sh --prefix $tmp/prefix"
prefix=$tmp/prefix lib=$tmp/prefix/lib
scripts/install.sh --prefix "$prefix" | tail -n 6
[[ "$(readlink "$lib/libmixflow.so")" == libmixflow.so.0 ]] || fail "libmixflow.so does not link to libmixflow.so.0"
[[ "$(readlink "$lib/libmixflow.so.0")" == "libmixflow.so.$version" ]] || fail "libmixflow.so.0 does not link to libmixflow.so.$version"
[[ -f "$prefix/include/mixflow.h" && -f "$prefix/include/mixflow_types.h" ]] || fail "headers not installed"
dyn=$(readelf -d "$lib/libmixflow.so.$version")
grep -q 'SONAME.*\[libmixflow.so.0\]' <<<"$dyn" || fail "SONAME is not libmixflow.so.0: $(grep SONAME <<<"$dyn")"
! grep -qE 'NEEDED.*(libswift|libdispatch|libFoundation)' <<<"$dyn" || fail "the installed library needs the Swift runtime"
! grep -q 'R.*PATH.*/opt/swift' <<<"$dyn" || fail "the installed library has a run path into the toolchain"

echo "-- C: an out-of-tree program and the examples, built with pkg-config only"
mkdir "$tmp/app" && cp examples/c/transport_demo.c "$tmp/app/"
# shellcheck disable=SC2016
no_swift env PKG_CONFIG_PATH="$lib/pkgconfig" sh -c 'cd "$1" && cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags mixflow) transport_demo.c \
    -o demo $(pkg-config --libs mixflow) -lm -Wl,-rpath,$(pkg-config --variable=libdir mixflow)' sh "$tmp/app"
"${clean[@]}" ldd "$tmp/app/demo" | grep -E 'mixflow|swift|not found' | sed 's/^/   /'
! "${clean[@]}" ldd "$tmp/app/demo" | grep -qE 'not found|/opt/swift' || fail "the program does not resolve without the toolchain"
no_swift "$tmp/app/demo" | tail -n 3
no_swift env PKG_CONFIG_PATH="$lib/pkgconfig" make -s -C examples/c MIXFLOW=pkg-config OUT="$tmp/examples" all
no_swift "$tmp/examples/model_demo" | tail -n 2

echo "-- C: the CMake usage of docs/install.md (pkg_check_modules)"
mkdir "$tmp/cmake" && cp examples/c/transport_demo.c "$tmp/cmake/app.c"
sed -n '/^```cmake$/,/^```$/p' docs/install.md | sed '1d;$d' > "$tmp/cmake/CMakeLists.txt"
no_swift cmake -S "$tmp/cmake" -B "$tmp/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
no_swift cmake --build "$tmp/cmake/build" >/dev/null
no_swift "$tmp/cmake/build/app" | tail -n 1

echo "-- CLI: the installed mixflow, run from another folder, its defaults found under share/mixflow"
! "${clean[@]}" ldd "$prefix/bin/mixflow" | grep -qE 'not found|/opt/swift|libswift' || fail "the installed mixflow needs the toolchain"
no_swift "$prefix/bin/mixflow" --version | head -n 1
mkdir "$tmp/cli" && cd "$tmp/cli"
# posttrain with its default --base (models/fmnist-base/base.onnx) and --featnet (share/featnet): both must resolve
# to the install's share/mixflow, since neither exists in this folder.
no_swift "$prefix/bin/mixflow" posttrain --out run --steps 2 --batch 8 --gamma 0.5 --eval-samples 20 --eval-steps 2 \
    --eval-methods euler > log 2>&1 || { cat log >&2; fail "the installed mixflow posttrain failed"; }
grep -q "share/mixflow/models/fmnist-base/base.onnx" log || { cat log >&2; fail "posttrain did not find the installed base model"; }
grep -E "^(base:|mixflow ) " log | sed 's/^/   /'
cd "$root"

echo "-- C: scripts/install.sh --uninstall"
scripts/install.sh --prefix "$prefix" --uninstall >/dev/null
left=$(find "$prefix" -not -type d)
[[ -z "$left" ]] || fail "--uninstall left: $left"
[[ ! -e "$prefix/share/mixflow" ]] || fail "--uninstall left the folder $prefix/share/mixflow"

echo "-- Python: wheel, fresh venv, import from another folder"
before=$(git status --porcelain --ignored bindings/python)
python3 -m pip wheel -q --no-deps ./bindings/python -w "$tmp/wheel"
wheel=$(ls "$tmp"/wheel/mixflow-*.whl)
[[ "$wheel" == *"-py3-none-linux_"* ]] || fail "the wheel is not tagged for the platform: $(basename "$wheel")"
# (zipfile's own check, not `zipfile -l | grep -q`: grep -q closes the pipe early and pipefail fails the listing.)
python3 -c 'import sys, zipfile; sys.exit("mixflow/libmixflow.so" not in zipfile.ZipFile(sys.argv[1]).namelist())' "$wheel" \
    || fail "the wheel does not contain libmixflow.so"
[[ "$(git status --porcelain --ignored bindings/python)" == "$before" ]] || fail "building the wheel left files in bindings/python"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
mkdir "$tmp/elsewhere" && cd "$tmp/elsewhere"
no_swift "$tmp/venv/bin/python" -c '
import numpy as np, mixflow
print("mixflow", mixflow.__version__, "from", mixflow.__file__)
batch = mixflow.Transport(gamma=0.5).prepare(np.zeros((4, 8), np.float32), seed=1)
assert batch.x_in.shape == (4, 8) and np.isfinite(batch.x_in).all()
maps = open("/proc/self/maps").read()
assert "/opt/swift" not in maps and "/.build/" not in maps, "loaded a library from the toolchain or the build tree"
print("transport call OK; no library from /opt/swift or the build tree")
'
cd "$root"
echo "test-packaging: OK"
