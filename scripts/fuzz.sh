#!/usr/bin/env bash
# Builds and runs one libFuzzer target for SECONDS (default 60):
#   onnx        fuzz/onnx_reader.swift: the ONNX reader and the SiT model import (MixflowIO + the OnnxShim C++)
#   checkpoint  fuzz/checkpoint_reader.swift: the trainer checkpoint reader and Trainer.resume (MixflowModels)
#   idx         fuzz/idx_reader.swift: the IDX reader, plain and gzip (MixflowEval + zlib)
# Every module is compiled with coverage and ASan; the seed corpus comes from the fixtures. Exit status is
# libFuzzer's: non-zero on a crash, leak, ASan report, timeout or memory limit; the reproducer is left in
# .build/fuzz/artifacts-TARGET/ (CI keeps that folder).
#   scripts/fuzz.sh TARGET [SECONDS]          (CI: scripts/fuzz.sh onnx 60)
# The converter's readers (.pt/.safetensors/.npz, Python) have their own bounded harness, fuzz/convert_mutator.py.
# swiftc is used directly: a SwiftPM executable built with -sanitize=fuzzer does not link (docs/architecture.md §3.3).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?usage: scripts/fuzz.sh onnx|checkpoint|idx [SECONDS]}
SECONDS_TO_RUN=${2:-60}
OUT=.build/fuzz
ART="$OUT/artifacts-$TARGET"
CLANGXX=${CLANGXX:-$(dirname "$(command -v swiftc)")/clang++}
mkdir -p "$OUT/obj" "$OUT/modules/OnnxShim" "$ART" "$OUT/scratch"

# Modules are rebuilt only when a source is newer than the object (three targets share them).
stale() { local obj=$1; shift; [[ ! -f "$obj" ]] || [[ -n "$(find "$@" -newer "$obj" -name '*.swift' -o -newer "$obj" -name '*.cpp' -o -newer "$obj" -name '*.h' | head -1)" ]]; }

# 1. The shim, instrumented for coverage (fuzzer-no-link) and ASan.
for f in onnx_shim onnx_writer onnx_graph_writer; do
    if stale "$OUT/obj/$f.o" Sources/OnnxShim; then
        "$CLANGXX" -std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address -DONNX_ML=1 -DONNX_NAMESPACE=onnx \
            -I Sources/OnnxShim/include -c "Sources/OnnxShim/$f.cpp" -o "$OUT/obj/$f.o"
    fi
done
printf 'module OnnxShim {\n  header "%s/Sources/OnnxShim/include/onnx_shim.h"\n  export *\n}\n' "$PWD" \
    > "$OUT/modules/OnnxShim/module.modulemap"

# 1b. The C kernels (libmixflow's GEMM and the model kernels), instrumented the same way; -ffp-contract=off as in
# Package.swift (their bits must not depend on the compiler's contraction).
CLANG=${CLANG:-$(dirname "$(command -v swiftc)")/clang}
for c in CGemm:gemm CKernels:kernels; do
    name=${c%%:*}; file=${c##*:}
    if [[ ! -f "$OUT/obj/$file.o" ]] || [[ -n "$(find "Sources/$name" -newer "$OUT/obj/$file.o" | head -1)" ]]; then
        "$CLANG" -std=c11 -O1 -g -fsanitize=fuzzer-no-link,address -ffp-contract=off -fno-math-errno \
            -I "Sources/$name/include" -c "Sources/$name/$file.c" -o "$OUT/obj/$file.o"
    fi
    mkdir -p "$OUT/modules/$name"
    header=$(ls "$PWD/Sources/$name/include/"*.h | head -1)
    printf 'module %s {\n  header "%s"\n  export *\n}\n' "$name" "$header" > "$OUT/modules/$name/module.modulemap"
done

# 2. The Swift modules, each whole-module, instrumented the same way.
# MixflowCore imports CBLAS (Sources/CBLAS/module.modulemap; its include path comes from pkg-config), MixflowEval CZlib.
SWIFTFLAGS=(-sanitize=fuzzer,address -parse-as-library -Onone -g -package-name mixflow -I "$OUT/modules" -I "$OUT/modules/OnnxShim"
            -I "$OUT/modules/CGemm" -I "$OUT/modules/CKernels"
            -I Sources/CBLAS -I Sources/CZlib $(pkg-config --cflags-only-I openblas | sed 's/-I/-Xcc -I/g'))
module() {
    local name=$1; shift
    if stale "$OUT/obj/$name.o" "Sources/$name" Sources/MixflowCore; then
        swiftc "${SWIFTFLAGS[@]}" "$@" -wmo -module-name "$name" -emit-module -emit-module-path "$OUT/modules/$name.swiftmodule" \
            -c $(find "Sources/$name" -name '*.swift') -o "$OUT/obj/$name.o"
    fi
}
module MixflowCore
# MixflowCoreAVX2: the Gaussian kernel built for AVX2 (Package.swift gives it -target-cpu haswell on x86-64).
AVX2FLAGS=(); [[ "$(uname -m)" == x86_64 ]] && AVX2FLAGS=(-target-cpu haswell -Xcc -march=haswell)
module MixflowCoreAVX2 "${AVX2FLAGS[@]}"
module MixflowMethod
module MixflowModels
CORE=("$OUT/obj/MixflowCore.o" "$OUT/obj/gemm.o" "$OUT/obj/MixflowCoreAVX2.o" "$OUT/obj/MixflowMethod.o" "$OUT/obj/MixflowModels.o"
      "$OUT/obj/kernels.o")
LIBS=($(pkg-config --libs openblas))
rm -rf "$OUT/corpus-$TARGET"; mkdir -p "$OUT/corpus-$TARGET"
seed() { for f in "$@"; do cp "$f" "$OUT/corpus-$TARGET/$(echo "$f" | tr / _)"; done; }
case "$TARGET" in
onnx)
    module MixflowIO
    OBJS=("${CORE[@]}" "$OUT/obj/MixflowIO.o" "$OUT/obj/onnx_shim.o" "$OUT/obj/onnx_writer.o" "$OUT/obj/onnx_graph_writer.o")
    LIBS+=(-lonnx_proto -lprotobuf -lstdc++)
    # Seeds: every fixture model (the torch.onnx.export SiT seeds the model import: graph nodes, prefixed
    # names, folded transposes) and a few TensorProto files from libonnx-testdata when it is installed.
    seed $(find Tests/Fixtures/onnx Tests/Fixtures/sit_torch_onnx -name '*.onnx')
    for pb in node/test_cast_FLOAT_to_FLOAT16/test_data_set_0/input_0.pb node/test_add/test_data_set_0/input_0.pb \
              node/test_argmax_default_axis_example/test_data_set_0/output_0.pb node/test_strnormalizer_nostopwords_nochangecase/test_data_set_0/input_0.pb; do
        if [[ -f "/usr/share/libonnx-testdata/data/$pb" ]]; then cp "/usr/share/libonnx-testdata/data/$pb" "$OUT/corpus-$TARGET/$(echo "$pb" | tr / _)"; fi
    done
    # The scratch folder holds the external files the seeds reference.
    cp Tests/Fixtures/onnx/good/ext_single/model.onnx.data Tests/Fixtures/onnx/good/ext_multi/* \
       Tests/Fixtures/sit_torch_onnx/sit_torch.onnx.data "$OUT/scratch/" 2>/dev/null || true
    rm -f "$OUT/scratch/model.onnx"
    head -c 64 /dev/zero > "$OUT/scratch/w.bin" ;;
checkpoint)
    OBJS=("${CORE[@]}")
    # Seeds: trainer checkpoints of tiny SiTs (Tests/Fixtures/fuzz/make_fuzz_seeds.py).
    seed Tests/Fixtures/fuzz/*.mixflow ;;
idx)
    module MixflowEval
    OBJS=("$OUT/obj/MixflowCore.o" "$OUT/obj/gemm.o" "$OUT/obj/MixflowEval.o")
    LIBS+=(-lz)
    # Seeds: small IDX files, plain and gzip, of every element type (Tests/Fixtures/fuzz/make_fuzz_seeds.py).
    seed Tests/Fixtures/fuzz/*.idx Tests/Fixtures/fuzz/*.idx.gz ;;
*) echo "unknown target $TARGET (onnx, checkpoint, idx)" >&2; exit 2 ;;
esac
swiftc "${SWIFTFLAGS[@]}" -module-name "Fuzz_$TARGET" "fuzz/${TARGET}_reader.swift" "${OBJS[@]}" "${LIBS[@]}" -o "$OUT/fuzz-$TARGET"

# 3. Run. rss_limit keeps "allocates without bound" a finding; malloc_limit catches single huge allocations.
export MIXFLOW_FUZZ_DIR="$PWD/$OUT/scratch"
# ASan's default 256 MB free-quarantine looks like unbounded growth to rss_limit; 64 MB keeps RSS near 80 MB.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}"
exec "$OUT/fuzz-$TARGET" "$OUT/corpus-$TARGET" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=1024 -malloc_limit_mb=512 \
    -timeout=10 -artifact_prefix="$ART/" -print_final_stats=1
