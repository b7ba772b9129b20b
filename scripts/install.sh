#!/usr/bin/env bash
# Installs libmixflow for C users, or removes what it installed.
#   scripts/install.sh [--prefix DIR] [--destdir DIR]     build and install (DIR defaults to /usr/local)
#   scripts/install.sh [--prefix DIR] [--destdir DIR] --uninstall
# Installs:
#   lib/libmixflow.so.X.Y.Z, with the links libmixflow.so.X (the SONAME) and libmixflow.so
#   include/mixflow.h, include/mixflow_types.h
#   lib/pkgconfig/mixflow.pc        (`pkg-config --cflags --libs mixflow`)
#   bin/mixflow                     the command line (docs/cli.md)
#   share/mixflow/                  what its defaults name: the feature net and reference statistics
#                                   (featnet/), the Fashion-MNIST base and lagging models (models/)
# The library and the command line are built with the Swift runtime linked in (-static-stdlib), in their own
# scratch folder .build/static: they need only system libraries (OpenBLAS, zlib, libonnx/libprotobuf,
# libstdc++, libc) and run on machines without the Swift toolchain. --destdir stages the files under DIR (for packagers); the
# installed files still name --prefix.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local destdir="" uninstall=0
while (($#)); do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a folder}; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$prefix" == /* ]] || prefix="$PWD/$prefix"
[[ -z "$destdir" || "$destdir" == /* ]] || destdir="$PWD/$destdir"

# The version and SONAME come from the header (one place): MIXFLOW_VERSION_STRING and MIXFLOW_VERSION_MAJOR.
version=$(sed -nE 's/^#define MIXFLOW_VERSION_STRING "([0-9.]+)"$/\1/p' include/mixflow_types.h)
major=${version%%.*}
[[ -n "$version" ]] || { echo "install.sh: no MIXFLOW_VERSION_STRING in include/mixflow_types.h" >&2; exit 1; }
lib=$destdir$prefix/lib inc=$destdir$prefix/include pc=$destdir$prefix/lib/pkgconfig
bin=$destdir$prefix/bin share=$destdir$prefix/share/mixflow
# The command line's data, as repository paths; installed under <prefix>/share/mixflow with share/ dropped
# (share/featnet -> share/mixflow/featnet), where the CLI looks for them (repositoryPath in CLISupport.swift).
data=(share/featnet/fmnist-cnn.mxfnet share/featnet/fmnist-test-stats.mxfstat share/featnet/README.md
      models/fmnist-base/base.onnx models/fmnist-base/README.md
      models/fmnist-lagging/small-1k.onnx models/fmnist-lagging/README.md)
data_files=("${data[@]#share/}") && data_files=("${data_files[@]/#/$share/}")   # data[i] is installed as data_files[i]
files=("$lib/libmixflow.so.$version" "$lib/libmixflow.so.$major" "$lib/libmixflow.so"
       "$inc/mixflow.h" "$inc/mixflow_types.h" "$pc/mixflow.pc" "$bin/mixflow" "${data_files[@]}")

if ((uninstall)); then
    for f in "${files[@]}"; do
        if [[ -e "$f" || -L "$f" ]]; then rm -f "$f"; echo "removed $f"; fi
    done
    # share/mixflow and the folders under it that are now empty (never a folder holding something else)
    if [[ -d "$share" ]]; then find "$share" -depth -type d -empty -delete; fi
    exit 0
fi

# Builds a product with the Swift runtime linked in and refuses it if it still needs the runtime's libraries.
build_static() {
    swift build -c release --product "$1" -Xswiftc -static-stdlib --scratch-path .build/static
    if readelf -d "$2" | grep -q 'NEEDED.*libswift'; then
        echo "install.sh: $2 still needs the Swift runtime:" >&2; readelf -d "$2" | grep NEEDED >&2; exit 1
    fi
}
built=.build/static/release/libmixflow.so cli=.build/static/release/mixflow-cli
build_static mixflow "$built"
soname=$(readelf -d "$built" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
[[ "$soname" == "libmixflow.so.$major" ]] || { echo "install.sh: $built has SONAME '$soname', expected libmixflow.so.$major (Package.swift)" >&2; exit 1; }
build_static mixflow-cli "$cli"

mkdir -p "$lib" "$inc" "$pc" "$bin"
install -m 0755 "$built" "$lib/libmixflow.so.$version"
strip --strip-debug "$lib/libmixflow.so.$version"   # DWARF only (17 -> 13 MB); symbols stay for backtraces
ln -sfn "libmixflow.so.$version" "$lib/libmixflow.so.$major"
ln -sfn "libmixflow.so.$major" "$lib/libmixflow.so"
install -m 0644 include/mixflow.h include/mixflow_types.h "$inc/"
# Requires.private/Libs.private: what the library itself links (for static linking and pkg-config --static);
# a shared-library user needs only Libs.
cat > "$pc/mixflow.pc" <<EOF
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: mixflow
Description: MixFlow post-training and sampling for flow-matching image models (C API)
Version: $version
Requires.private: openblas zlib protobuf
Libs: -L\${libdir} -lmixflow
Libs.private: -lonnx_proto -lstdc++ -lm
Cflags: -I\${includedir}
EOF
chmod 0644 "$pc/mixflow.pc"
install -m 0755 "$cli" "$bin/mixflow"
strip --strip-debug "$bin/mixflow"
for i in "${!data[@]}"; do install -D -m 0644 "${data[$i]}" "${data_files[$i]}"; done
for f in "${files[@]}"; do echo "installed $f"; done
