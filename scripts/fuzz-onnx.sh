#!/usr/bin/env bash
# Builds the libFuzzer target over the ONNX reader and the SiT model import (fuzz/onnx_reader.swift +
# MixflowCore (+ MixflowCoreAVX2) + MixflowMethod + MixflowModels + MixflowIO + the OnnxShim C++ compiled with coverage and ASan) and runs it for SECONDS (default 60) on a seed corpus made of
# Tests/Fixtures/onnx. Exit status is libFuzzer's: non-zero on a crash, leak, ASan report or timeout;
# the reproducer is left in .build/fuzz/artifacts/.
#   scripts/fuzz-onnx.sh [SECONDS]          (CI: scripts/fuzz-onnx.sh 60)
# swiftc is used directly: a SwiftPM executable built with -sanitize=fuzzer does not link (docs/architecture.md §3.3).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
OUT=.build/fuzz
CLANGXX=${CLANGXX:-$(dirname "$(command -v swiftc)")/clang++}
mkdir -p "$OUT/obj" "$OUT/modules/OnnxShim" "$OUT/artifacts" "$OUT/scratch"

# 1. The shim, instrumented for coverage (fuzzer-no-link) and ASan.
for f in onnx_shim onnx_writer onnx_graph_writer; do
    "$CLANGXX" -std=c++17 -O1 -g -fsanitize=fuzzer-no-link,address -DONNX_ML=1 -DONNX_NAMESPACE=onnx \
        -I Sources/OnnxShim/include -c "Sources/OnnxShim/$f.cpp" -o "$OUT/obj/$f.o"
done
printf 'module OnnxShim {\n  header "%s/Sources/OnnxShim/include/onnx_shim.h"\n  export *\n}\n' "$PWD" \
    > "$OUT/modules/OnnxShim/module.modulemap"

# 2. The Swift modules, each whole-module, instrumented the same way.
# MixflowCore imports CBLAS (Sources/CBLAS/module.modulemap; its include path comes from pkg-config).
SWIFTFLAGS=(-sanitize=fuzzer,address -parse-as-library -Onone -g -package-name mixflow -I "$OUT/modules" -I "$OUT/modules/OnnxShim"
            -I Sources/CBLAS $(pkg-config --cflags-only-I openblas | sed 's/-I/-Xcc -I/g'))
swiftc "${SWIFTFLAGS[@]}" -wmo -module-name MixflowCore -emit-module -emit-module-path "$OUT/modules/MixflowCore.swiftmodule" \
    -c $(find Sources/MixflowCore -name '*.swift') -o "$OUT/obj/MixflowCore.o"
# MixflowCoreAVX2: the Gaussian kernel built for AVX2 (Package.swift gives it -target-cpu haswell on x86-64).
AVX2FLAGS=(); [[ "$(uname -m)" == x86_64 ]] && AVX2FLAGS=(-target-cpu haswell -Xcc -march=haswell)
swiftc "${SWIFTFLAGS[@]}" "${AVX2FLAGS[@]}" -wmo -module-name MixflowCoreAVX2 -emit-module -emit-module-path "$OUT/modules/MixflowCoreAVX2.swiftmodule" \
    -c $(find Sources/MixflowCoreAVX2 -name '*.swift') -o "$OUT/obj/MixflowCoreAVX2.o"
swiftc "${SWIFTFLAGS[@]}" -wmo -module-name MixflowMethod -emit-module -emit-module-path "$OUT/modules/MixflowMethod.swiftmodule" \
    -c $(find Sources/MixflowMethod -name '*.swift') -o "$OUT/obj/MixflowMethod.o"
swiftc "${SWIFTFLAGS[@]}" -wmo -module-name MixflowModels -emit-module -emit-module-path "$OUT/modules/MixflowModels.swiftmodule" \
    -c $(find Sources/MixflowModels -name '*.swift') -o "$OUT/obj/MixflowModels.o"
swiftc "${SWIFTFLAGS[@]}" -wmo -module-name MixflowIO -emit-module -emit-module-path "$OUT/modules/MixflowIO.swiftmodule" \
    -c $(find Sources/MixflowIO -name '*.swift') -o "$OUT/obj/MixflowIO.o"
swiftc "${SWIFTFLAGS[@]}" -module-name FuzzOnnx fuzz/onnx_reader.swift \
    "$OUT/obj/MixflowCore.o" "$OUT/obj/MixflowCoreAVX2.o" "$OUT/obj/MixflowMethod.o" "$OUT/obj/MixflowModels.o" "$OUT/obj/MixflowIO.o" \
    "$OUT/obj/onnx_shim.o" "$OUT/obj/onnx_writer.o" "$OUT/obj/onnx_graph_writer.o" \
    -lonnx_proto -lprotobuf -lstdc++ $(pkg-config --libs openblas) -o "$OUT/fuzz-onnx"

# 3. Seeds: every fixture model; the scratch folder holds the external files the seeds reference.
rm -rf "$OUT/corpus"; mkdir -p "$OUT/corpus"
# The torch.onnx.export SiT fixture seeds the model import (graph nodes, prefixed names, folded transposes).
find Tests/Fixtures/onnx Tests/Fixtures/sit_torch_onnx -name '*.onnx' | while read -r f; do cp "$f" "$OUT/corpus/$(echo "$f" | tr / _)"; done
# A few TensorProto seeds from libonnx-testdata when it is installed (float, float16, int64, string).
for pb in node/test_cast_FLOAT_to_FLOAT16/test_data_set_0/input_0.pb node/test_add/test_data_set_0/input_0.pb \
          node/test_argmax_default_axis_example/test_data_set_0/output_0.pb node/test_strnormalizer_nostopwords_nochangecase/test_data_set_0/input_0.pb; do
    if [[ -f "/usr/share/libonnx-testdata/data/$pb" ]]; then cp "/usr/share/libonnx-testdata/data/$pb" "$OUT/corpus/$(echo "$pb" | tr / _)"; fi
done
cp Tests/Fixtures/onnx/good/ext_single/model.onnx.data Tests/Fixtures/onnx/good/ext_multi/* \
   Tests/Fixtures/sit_torch_onnx/sit_torch.onnx.data "$OUT/scratch/" 2>/dev/null || true
rm -f "$OUT/scratch/model.onnx"
head -c 64 /dev/zero > "$OUT/scratch/w.bin"

# 4. Run. rss_limit keeps "allocates without bound" a finding; malloc_limit catches single huge allocations.
export MIXFLOW_FUZZ_DIR="$PWD/$OUT/scratch"
# ASan's default 256 MB free-quarantine looks like unbounded growth to rss_limit; 64 MB keeps RSS near 80 MB.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}"
exec "$OUT/fuzz-onnx" "$OUT/corpus" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=1024 -malloc_limit_mb=512 \
    -timeout=10 -artifact_prefix="$OUT/artifacts/" -print_final_stats=1
