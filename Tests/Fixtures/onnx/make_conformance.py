#!/usr/bin/env python3
"""Builds Tests/Fixtures/onnx/conformance.tsv: the expected float32 values of every tensor in Debian's
libonnx-testdata (/usr/share/libonnx-testdata/data), computed with onnx.numpy_helper.to_array (the reference).

Regenerate:  python3 Tests/Fixtures/onnx/make_conformance.py   (needs pip onnx, numpy; apt libonnx-testdata 1.12.0-2)

Rows:
  pb     <path>  <dtype> <dims> <fnv>   every test_data_set_*/{input,output}_*.pb whose graph type is a tensor
  init   <path>  <name> <dtype> <dims> <fnv>   every initializer of every model.onnx
  model  <path>  <num initializers>     every model.onnx (the reader must open all of them)
The hash is FNV-1a-64 over the float32 words with NaNs canonicalised (make_fixtures.fnv_f32); "-" marks a type
with no float32 conversion (STRING, COMPLEX, FLOAT8...), for which only dtype and dims are compared.
"""
import glob
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import CONVERTIBLE, HEADER, fnv_f32  # noqa: E402

ROOT = "/usr/share/libonnx-testdata/data"


def digest(t):
    if t.data_type not in CONVERTIBLE:
        return "-"
    return fnv_f32(np.asarray(numpy_helper.to_array(t)).astype(np.float32))


def dims(t):
    return ",".join(str(d) for d in t.dims)


def main():
    rows = []
    for model_path in sorted(glob.glob(os.path.join(ROOT, "*", "*", "model.onnx"))):
        rel = os.path.relpath(model_path, ROOT)
        m = onnx.load(model_path)
        rows.append(("model", rel, str(len(m.graph.initializer))))
        for t in m.graph.initializer:
            rows.append(("init", rel, t.name, str(t.data_type), dims(t), digest(t)))
        init_names = {t.name for t in m.graph.initializer}
        inputs = [i for i in m.graph.input if i.name not in init_names]
        for pb in sorted(glob.glob(os.path.join(os.path.dirname(model_path), "test_data_set_*", "*.pb"))):
            base = os.path.basename(pb)
            kind, _, idx = base[:-3].partition("_")
            values = inputs if kind == "input" else m.graph.output
            if int(idx) >= len(values) or not values[int(idx)].type.HasField("tensor_type"):
                continue  # sequence / optional / map protos are not TensorProtos
            t = onnx.TensorProto()
            with open(pb, "rb") as f:
                t.ParseFromString(f.read())
            rows.append(("pb", os.path.relpath(pb, ROOT), str(t.data_type), dims(t), digest(t)))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance.tsv")
    with open(out, "w") as f:
        f.write(HEADER.replace("make_fixtures.py", "make_conformance.py"))
        f.write("# root %s\n" % ROOT)
        for r in rows:
            f.write("\t".join(r) + "\n")
    print("wrote %d rows to %s" % (len(rows), out), file=sys.stderr)


if __name__ == "__main__":
    main()
