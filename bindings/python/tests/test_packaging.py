"""How the package finds libmixflow and reports its version, run as a user would: a copy of the package outside the
source tree (no bundled library), in a subprocess with a clean environment. The wheel itself (library bundled,
platform tag, fresh venv) is checked by scripts/test-packaging.sh."""
import shutil
import subprocess
import sys
from pathlib import Path

import mixflow
from mixflow import _lib

ROOT = Path(__file__).resolve().parents[3]
BUILT = Path(_lib.lib._name).resolve()  # the library this test session loaded


def run_copy(tmp_path, code, **env):
    """Runs `code` against a copy of the package without any libmixflow.so, from an unrelated folder."""
    pkg = Path(mixflow.__file__).resolve().parent
    shutil.copytree(pkg, tmp_path / "site" / "mixflow", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (tmp_path / "cwd").mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site"), **{k: str(v) for k, v in env.items()}}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "cwd", env=env, capture_output=True, text=True)


def test_version_is_static_and_matches_the_library_and_header(tmp_path):
    header = (ROOT / "include" / "mixflow_types.h").read_text()
    assert mixflow.__version__ == header.split('#define MIXFLOW_VERSION_STRING "')[1].split('"')[0]
    assert mixflow.__version__ == _lib.lib.mixflow_version().decode()
    # Importable, with its version, where no library can be found.
    r = run_copy(tmp_path, "import mixflow; print(mixflow.__version__)", MIXFLOW_LIBRARY=tmp_path / "nowhere.so")
    assert r.returncode == 0 and r.stdout.strip() == mixflow.__version__, r.stderr


def test_without_a_bundled_library_the_system_loader_finds_an_installed_one(tmp_path):
    lib = tmp_path / "prefix" / "lib"
    lib.mkdir(parents=True)
    (lib / "libmixflow.so.0").symlink_to(BUILT)  # the SONAME, as scripts/install.sh installs it
    r = run_copy(tmp_path, "import mixflow; from mixflow import _lib; mixflow.Transport(); print(_lib.lib._name)",
                 LD_LIBRARY_PATH=lib)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "libmixflow.so.0"


def test_the_error_lists_only_places_that_could_hold_the_library(tmp_path):
    r = run_copy(tmp_path, "import mixflow; mixflow.Transport()")
    assert r.returncode != 0
    assert "libmixflow.so not found" in r.stderr
    assert str(tmp_path / "site" / "mixflow" / "libmixflow.so") in r.stderr      # where a wheel puts it
    assert "libmixflow.so.0 through the system loader" in r.stderr             # an installed prefix
    assert ".build" not in r.stderr                                            # not a source checkout: no build folders


def test_package_is_typed():
    assert (Path(mixflow.__file__).parent / "py.typed").is_file()
