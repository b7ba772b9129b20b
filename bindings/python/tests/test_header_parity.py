"""The binding mirrors include/mixflow.h: every function has a stub with the same arity, and every
struct in _types.py has the header's fields in the header's order."""
import re
from pathlib import Path

from mixflow import _lib, _types

ROOT = Path(__file__).resolve().parents[3]
HEADER = (ROOT / "include" / "mixflow.h").read_text()
TYPES = (ROOT / "include" / "mixflow_types.h").read_text()


def header_functions() -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^[a-z][^;(/]*?\b(mixflow_\w+)\(([^)]*)\)[^;]*;", HEADER, re.M):
        args = m.group(2).strip()
        out[m.group(1)] = 0 if args in ("", "void") else args.count(",") + 1
    return out


def test_every_header_function_has_a_stub_with_the_same_arity():
    functions = header_functions()
    assert functions, "no functions parsed from mixflow.h"
    missing = sorted(set(functions) - set(_lib._STUBS))
    assert not missing, f"functions without a _lib.py stub: {missing}"
    extra = sorted(set(_lib._STUBS) - set(functions))
    assert not extra, f"stubs for functions not in the header: {extra}"
    for name, arity in functions.items():
        assert len(_lib._STUBS[name][0]) == arity, name


def test_structs_mirror_the_header():
    for m in re.finditer(r"typedef struct (mixflow_\w+) \{(.*?)\} \1;", TYPES, re.S):
        name, body = m.group(1), m.group(2)
        fields = re.findall(r"^\s*[\w\s\*]+?\b(\w+)(?:\[\w+\])?;", re.sub(r"/\*.*?\*/", "", body, flags=re.S), re.M)
        if fields == ["_private"]:
            continue
        cls_name = "".join(part.capitalize() for part in name.split("_")[1:])
        cls = getattr(_types, cls_name)
        assert [f[0] for f in cls._fields_] == fields, name
