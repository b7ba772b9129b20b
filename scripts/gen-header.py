#!/usr/bin/env python3
"""Writes include/mixflow.h from the @c functions: the C prototypes come from the header the Swift compiler
generates (so the C types are the compiler's), the doc comments from the Swift sources (plain text, as written).

    scripts/gen-header.py COMPILER_HEADER SWIFT_SOURCE_DIR > include/mixflow.h

The header is laid out for a reader: a preamble with the conventions, then one section per object in the
order of SECTIONS. A function joins the first section whose pattern matches its name (a new function with an
unknown prefix lands in the last, catch-all section). Within a section, functions keep their order in the Swift
sources: the file holding most of the section's functions first (then by name), and by line within a file. Only MIXFLOW_* macros and mixflow_* names reach the user's namespace.
Called by scripts/gen-header.sh, which also checks that the result is current and compiles cleanly.
"""
import re
import sys
import textwrap
from pathlib import Path

# (title, one-line description, regex on the name without "mixflow_"). Order = order in the header.
SECTIONS = [
    ("Version, errors and build", "What this library is, and what the last call on this thread said.",
     r"(abi_version|version.*|last_error|status_name|blas_.*|build_.*)$"),
    ("Transport", "The MixFlow (and standard flow-matching) training transport: times, interpolations, targets, loss.",
     r"transport_.*"),
    ("Sampler", "ODE/SDE samplers over a user velocity callback or a model, and writing samples out.",
     r"(sampler_.*|sample|sample_.*|samples_.*|equal_labels)$"),
    ("Slow Flow", "Measuring how far generated states lag behind ground-truth interpolations, and choosing gamma.",
     r"slow_flow_.*"),
    ("Model", "Native SiT / DiT^DH networks: create, load and save weights, forward, gradients, tensors.",
     r"model_.*"),
    ("Trainer", "Post-training a model with a transport: AdamW, EMA, gradient clipping, checkpoints.",
     r"trainer_.*"),
    ("ONNX and tensor files", "Reading and writing named float tensors in ONNX files (external data included).",
     r"(tensor_.*|onnx_.*)"),
    ("Data and evaluation", "IDX datasets, class labels, the feature network, FD / KID and accuracy.",
     r"(idx_.*|featnet_.*|feature_.*|frechet_.*|kid_.*|fid_.*)"),
    ("Other functions", "Functions not yet assigned to a section in scripts/gen-header.py.", r".*"),
]

PREAMBLE = """\
/*
 * mixflow.h - the C API of libmixflow.
 *
 * libmixflow post-trains flow-matching image models (SiT, REPA, RAE) with MixFlow ("MixFlow Training:
 * Alleviating Exposure Bias with Slowed Interpolation Mixture", arXiv 2512.19311) and samples from them.
 * It is a C-ABI shared library (libmixflow.so.0) written in Swift; this header and mixflow_types.h (the
 * types, enums, params structs and constants) are the whole interface, and what is not stated at a
 * declaration is not promised. Link with `pkg-config --cflags --libs mixflow`.
 *
 * Conventions
 *  - Errors: every fallible function returns a mixflow_status (MIXFLOW_OK = 0). On failure,
 *    mixflow_last_error() returns a message for the calling thread naming the function, the argument, the
 *    value received and the value expected; a success clears it. No input traps, aborts or hangs the host
 *    process, and the library never prints.
 *  - Ownership: buffers are float32 (unless stated), C-contiguous and allocated by the caller; every pointer
 *    travels with its size or shape. Outputs never alias inputs unless stated. Optional arguments say
 *    "may be NULL". A handle comes from exactly one _create or _load and goes back through exactly one _free
 *    (NULL is a no-op). Strings the library returns are valid as documented at each function.
 *  - Params structs start with `struct_size`: fill one with its _default_params function, passing
 *    sizeof(the struct), then change fields. A library older than the header refuses a larger struct_size
 *    (MIXFLOW_ERR_ABI_MISMATCH); a newer library accepts an older, smaller one.
 *  - Threads: stateless functions are safe from any thread; a handle is used by one thread at a time.
 *    Callbacks run synchronously on the calling thread, never concurrently and never after the call
 *    returns. Internal worker threads never call user code.
 *  - Determinism: the same inputs and seed give the same bits for any thread count and any batch split;
 *    randomness comes from a counter-based generator keyed by (seed, step, sample index).
 *  - Time: t in [0, 1], always the raw t of the model's own convention (mixflow_convention in
 *    mixflow_types.h): SIT has t = 0 noise and t = 1 data (x_t = alpha_t x1 + sigma_t x0, the MixFlow
 *    paper); RAE and REPA have t = 0 data and t = 1 noise. Slow Flow reports t and m_t in the paper's
 *    convention (0 noise, 1 data) whatever the model's; each function says which it uses.
 *
 * Sections, in this order:
"""

HEAD_GUARD = """\
#ifndef MIXFLOW_H
#define MIXFLOW_H

#include "mixflow_types.h"

/* Every status a function returns should be looked at: compilers that can warn about ignoring it do. */
#if defined(__GNUC__) || defined(__clang__)
#define MIXFLOW_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#else
#define MIXFLOW_WARN_UNUSED_RESULT
#endif

#ifdef __cplusplus
extern "C" {
#endif
"""

TAIL = """
#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MIXFLOW_H */
"""

WIDTH = 116


def compiler_prototypes(text):
    """{name: (return type, [params], warn_unused)} from the compiler's SWIFT_EXTERN lines."""
    protos = {}
    for line in text.splitlines():
        if not line.startswith("SWIFT_EXTERN "):
            continue
        m = re.match(r"SWIFT_EXTERN (.+?)\b(mixflow_\w+)\((.*)\)(.*);$", line)
        if not m:
            sys.exit(f"gen-header: cannot parse: {line}")
        ret, name, params, attrs = m.groups()
        params = [] if params.strip() in ("", "void") else split_params(params)
        protos[name] = (c_type(ret), [c_param(p) for p in params], "SWIFT_WARN_UNUSED_RESULT" in attrs)
    return protos


def split_params(params):
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    return out + [cur]


def c_type(text):
    """`char const * _Nullable` -> `const char *`: no nullability keywords, the usual spelling."""
    text = re.sub(r"\b_(Nullable|Nonnull|Null_unspecified|Nullable_result)\b", "", text)
    text = re.sub(r"\s*\*\s*", "*", text.strip())
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"^(\w+) const\b", r"const \1", text)
    text = re.sub(r"(\w)\*", r"\1 *", text)
    text = re.sub(r"\*const\b", "* const", text)
    return text


def c_param(text):
    """One parameter: a C type and the documented name (the compiler appends `_` to some, e.g. `out_`)."""
    text = c_type(text)
    m = re.match(r"(.*?)(\w+)$", text)
    if not m or m.group(1).strip() == "":
        return text  # an unnamed parameter
    typ, name = m.groups()
    name = name.rstrip("_") or name
    return typ + name if typ.endswith("*") else typ.rstrip() + " " + name


def swift_docs(source_dir):
    """[(name, doc lines, file, line)] for every @c function, files by name, then by line."""
    found = []
    for path in sorted(Path(source_dir).glob("*.swift")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"\s*@c\b.*\bfunc (mixflow_\w+)", line)
            if not m:
                continue
            j = i
            while j > 0 and lines[j - 1].lstrip().startswith("///"):
                j -= 1
            doc = [re.sub(r"^\s*/// ?", "", l) for l in lines[j:i]]
            found.append((m.group(1), doc, path.name, i + 1))
    return found


def plain_doc(doc):
    """Swift doc markup to plain comment text: "- Parameters:" lists become "name: ..." lines."""
    out = []
    for line in doc:
        line = re.sub(r"^- (Parameters|Parameter|Returns|Throws|Note|Precondition|Warning)\b", r"\1", line)
        line = re.sub(r"^(\s+)- (\w+):", r"\1\2:", line)
        line = line.replace("*/", "* /").replace("/*", "/ *")  # never end or nest the C comment
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def declaration(name, proto):
    ret, params, warn = proto
    head = f"{ret} {name}(" if not ret.endswith("*") else f"{ret}{name}("
    tail = ")" + (" MIXFLOW_WARN_UNUSED_RESULT" if warn else "") + ";"
    args = params or ["void"]
    one = head + ", ".join(args) + tail
    if len(one) <= WIDTH:
        return [one]
    lines, cur = [], head
    for k, arg in enumerate(args):
        piece = arg + ("," if k + 1 < len(args) else tail)
        if len(cur) + len(piece) + 1 > WIDTH and cur.strip() and not cur.endswith("("):
            lines.append(cur.rstrip())
            cur = "    "
        cur += piece + " "
    lines.append(cur.rstrip())
    return lines


def main():
    compiler_header, source_dir = sys.argv[1], sys.argv[2]
    protos = compiler_prototypes(Path(compiler_header).read_text())
    docs = swift_docs(source_dir)
    documented = [name for name, *_ in docs]
    missing = sorted(set(protos) - set(documented))
    if missing:
        sys.exit(f"gen-header: functions in the compiler's header but not found as `@c func` in {source_dir}: {missing}")
    sections = [[] for _ in SECTIONS]
    for name, doc, file, line in docs:
        if name not in protos:
            continue  # e.g. inside #if false
        if not doc:
            sys.exit(f"gen-header: {name} ({file}:{line}) has no /// doc comment: the header is the spec")
        short = name[len("mixflow_"):]
        k = next(i for i, (_, _, pattern) in enumerate(SECTIONS) if re.fullmatch(pattern, short))
        sections[k].append((name, doc, file, line))
    for fns in sections:
        count = {file: sum(f == file for _, _, f, _ in fns) for _, _, file, _ in fns}
        fns.sort(key=lambda fn: (-count[fn[2]], fn[2], fn[3]))

    used = [(s, fns) for s, fns in zip(SECTIONS, sections) if fns]
    contents = "\n".join(textwrap.wrap("; ".join(title for (title, _, _), _ in used) + ".", WIDTH - 6,
                                        initial_indent=" *   ", subsequent_indent=" *   "))
    out = [PREAMBLE.rstrip() + "\n" + contents, " */", "", HEAD_GUARD]
    for (title, blurb, _), fns in used:
        rule = "-" * (WIDTH - 6)
        out += ["/* " + rule, " * " + title, " * " + blurb, " * " + rule + " */", ""]
        for name, doc, _, _ in fns:
            text = plain_doc(doc)
            if len(text) == 1 and len(text[0]) <= WIDTH - 6:
                out.append("/* " + text[0] + " */")
            else:
                out.append("/* " + text[0])
                out += [(" * " + l).rstrip() for l in text[1:]]
                out.append(" */")
            out += declaration(name, protos[name])
            out.append("")
    out.append(TAIL.lstrip("\n").rstrip("\n"))
    print("/* Generated by scripts/gen-header.sh from the @c functions in Sources/Mixflow; do not edit. */")
    print("\n".join(out))


if __name__ == "__main__":
    main()
