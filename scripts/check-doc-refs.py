#!/usr/bin/env python3
"""Checks that the repository's documentation references resolve (a step of scripts/test.sh, < 1 s).

1. Section citations such as `docs/exactness.md §4.2` anywhere in the tracked text files must name an existing
   Markdown file with a numbered heading "4.2" (`## 4.2 …` or `### 4.2. …`). A bare `§N` refers to the last
   file cited on the same line, or, inside a Markdown file, to that file itself.
2. No file may cite documents that are not in the repository (the project's private notes: SPEC, TOOLCHAIN,
   DATA.md, STYLE, /work/…).
3. Relative links and images in every tracked Markdown file must point to an existing file or folder, and a
   `#anchor` must match a heading of the target (GitHub's anchor rules).
4. A fenced block preceded by `<!-- quickstart: PATH -->` (the README's quickstarts) must equal the file PATH,
   so the README shows exactly the program CI runs.

    python3 scripts/check-doc-refs.py            # from anywhere; exit status 1 lists every broken reference
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
# Files whose citations are examples, not references: this script's docstring and its test's fixtures.
NOT_CITING = {SELF, "bindings/python/tests/test_doc_refs.py"}

CITATION = re.compile(r"((?:\.\./)*[\w./-]+\.md)(?=\s+§)|§(\d+(?:\.\d+)*)")
NUMBERED_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")
UNREACHABLE = re.compile(r"\b(?:SPEC|TOOLCHAIN)\b|\b(?:DATA|STYLE)\.md\b|\b(?:DATA|STYLE)\s*§|/work/")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
QUICKSTART = re.compile(r"^<!-- quickstart: (\S+) -->$")
FENCE = re.compile(r"^\s*(```|~~~)")


def tracked_text_files():
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in names:
        path = ROOT / name.decode()
        if not name or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            yield path.relative_to(ROOT).as_posix(), data.decode()
        except UnicodeDecodeError:
            continue


def headings(text):
    """Heading texts outside code fences."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6}\s", line):
            out.append(line)
    return out


def github_slugs(text):
    """The anchors GitHub generates for the headings: lower case, punctuation dropped, spaces to hyphens,
    -1, -2, … for repeats."""
    seen, slugs = {}, set()
    for line in headings(text):
        title = re.sub(r"^#{1,6}\s+", "", line).strip()
        title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)        # links keep their text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        slugs.add(slug if n == 0 else f"{slug}-{n}")
    return slugs


def section_numbers(text):
    return {m.group(1) for line in headings(text) if (m := NUMBERED_HEADING.match(line))}


def resolve(target, citing_dir):
    """A cited or linked path: from the repository root, else from the citing file's folder."""
    for base in (ROOT, ROOT / citing_dir):
        p = (base / target).resolve()
        if p.exists() and (p == ROOT or ROOT in p.parents):
            return p
    return None


def check_citations(name, text, errors, cache):
    if name in NOT_CITING:
        return
    is_md = name.endswith(".md")
    for lineno, line in enumerate(text.splitlines(), 1):
        if m := UNREACHABLE.search(line):
            errors.append(f"{name}:{lineno}: cites {m.group(0)!r}, which is not in the repository")
        current = name if is_md else None
        for m in CITATION.finditer(line):
            if m.group(1):
                current = m.group(1)
                continue
            where = f"{name}:{lineno}: §{m.group(2)}"
            if current is None:
                errors.append(f"{where} names no file (write `docs/<page>.md §N`)")
                continue
            path = resolve(current, Path(name).parent)
            if path is None or path.suffix != ".md":
                errors.append(f"{where}: {current} does not exist")
                continue
            if path not in cache:
                cache[path] = section_numbers(path.read_text())
            if m.group(2) not in cache[path]:
                errors.append(f"{where}: {current} has no section {m.group(2)}")


def check_links(name, text, errors):
    fenced = False
    here = Path(name).parent
    for lineno, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):            # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            if path_part:
                path = (ROOT / here / path_part).resolve()
                if not path.exists() or not (path == ROOT or ROOT in path.parents):
                    errors.append(f"{name}:{lineno}: link to {target}: no such file")
                    continue
            else:
                path = ROOT / name
            if anchor and path.suffix == ".md" and anchor not in github_slugs(path.read_text()):
                errors.append(f"{name}:{lineno}: link to {target}: no heading with that anchor")


def check_quickstarts(name, text, errors):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = QUICKSTART.match(line)
        if not m:
            continue
        source = ROOT / m.group(1)
        if not source.is_file():
            errors.append(f"{name}:{i + 1}: quickstart {m.group(1)}: no such file")
            continue
        start = next((j for j in range(i + 1, len(lines)) if FENCE.match(lines[j])), None)
        end = next((j for j in range(start + 1, len(lines)) if FENCE.match(lines[j])), None) if start is not None else None
        if end is None:
            errors.append(f"{name}:{i + 1}: quickstart {m.group(1)}: no fenced block follows")
        elif "\n".join(lines[start + 1:end]).rstrip() != source.read_text().rstrip():
            errors.append(f"{name}:{i + 1}: the block differs from {m.group(1)} (copy the file into the README)")


def main():
    errors, cache, files = [], {}, 0
    for name, text in tracked_text_files():
        files += 1
        check_citations(name, text, errors, cache)
        if name.endswith(".md"):
            check_links(name, text, errors)
            check_quickstarts(name, text, errors)
    for e in errors:
        print(e)
    print(f"check-doc-refs: {files} files, {len(errors)} broken reference(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
