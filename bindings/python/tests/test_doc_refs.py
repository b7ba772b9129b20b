"""scripts/check-doc-refs.py on a small repository of its own: every kind of broken reference is reported and a
clean repository passes (the real repository is checked by scripts/test.sh)."""
import shutil
import subprocess
import sys
from pathlib import Path

CHECKER = Path(__file__).resolve().parents[3] / "scripts" / "check-doc-refs.py"

GOOD = {
    "docs/guide.md": "# Guide\n\n- [1. Basics](#1-basics)\n\n## 1. Basics\n\n### 1.2 Details\n\nSee §1.2 and "
                     "[the code](../src/a.c).\n\n## Choosing γ\n",
    "README.md": "# R\n\n[guide](docs/guide.md#choosing-γ) ![x](docs/guide.md)\n\n<!-- quickstart: src/a.c -->\n"
                 "```c\nint main(void) { return 0; }\n```\n",
    "src/a.c": "int main(void) { return 0; }\n",
    "src/b.swift": "// The rule (docs/guide.md §1.2) and again (§1).\n",
}


def run(tmp_path, files):
    (tmp_path / "scripts").mkdir()
    shutil.copy(CHECKER, tmp_path / "scripts" / "check-doc-refs.py")
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    return subprocess.run([sys.executable, str(tmp_path / "scripts" / "check-doc-refs.py")], capture_output=True,
                          text=True)


def test_clean_repository_passes(tmp_path):
    r = run(tmp_path, GOOD)
    assert r.returncode == 0, r.stdout
    assert "0 broken reference(s)" in r.stdout


def test_every_kind_of_broken_reference_is_reported(tmp_path):
    files = dict(GOOD)
    files["src/b.swift"] = "// (docs/guide.md §1.3), (docs/nope.md §1)\n// bare §2\n// SPEC §4\n// see DATA.md\n"
    files["README.md"] = GOOD["README.md"].replace("#choosing-γ", "#choosing-gamma").replace(
        "![x](docs/guide.md)", "![x](docs/missing.png)").replace("return 0; }\n```", "return 1; }\n```")
    r = run(tmp_path, files)
    assert r.returncode == 1
    out = r.stdout
    assert "docs/guide.md has no section 1.3" in out
    assert "docs/nope.md does not exist" in out
    assert "§2 names no file" in out
    assert "cites 'SPEC'" in out and "cites 'DATA.md'" in out
    assert "no heading with that anchor" in out
    assert "docs/missing.png: no such file" in out
    assert "the block differs from src/a.c" in out
    assert "9 broken reference(s)" in out, out
