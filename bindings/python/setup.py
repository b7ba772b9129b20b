"""Builds the wheel with libmixflow inside, so that `pip install ./bindings/python` after
`swift build -c release` gives a package that imports from any folder on a machine without the Swift toolchain.

The library is MIXFLOW_LIBRARY if set, else the checkout's .build/release/libmixflow.so. When it needs the
Swift runtime (a plain `swift build`; a `-static-stdlib` build does not), those libraries are copied next to it
and its RUNPATH is set to $ORIGIN, so the wheel never picks up another toolchain's runtime. System libraries
(OpenBLAS, zlib, libonnx/libprotobuf, libstdc++) stay dependencies of the machine, as for scripts/install.sh.
The wheel is tagged for the platform (py3-none-linux_x86_64): the code is pure Python, the library is not.
Without a library the wheel is pure Python and finds an installed libmixflow through the system loader.
Build folders go to a temporary directory: installing leaves nothing in the source tree.
"""
import atexit
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LIBRARY = Path(os.environ.get("MIXFLOW_LIBRARY") or HERE.parent.parent / ".build" / "release" / "libmixflow.so")
# The Swift runtime's libraries, as the toolchain names them (libswiftCore.so, libswift_Concurrency.so, ...).
SWIFT_RUNTIME = ("libswift", "libdispatch", "libBlocksRuntime", "libFoundation", "lib_Foundation")


def swift_runtime(library: Path) -> list[Path]:
    """The Swift runtime libraries `library` loads, directly or not, as resolved by ldd."""
    out = subprocess.run(["ldd", str(library)], check=True, capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[0].strip().startswith(SWIFT_RUNTIME):
            path = parts[1].split("(")[0].strip()
            if path == "not found":
                raise SystemExit(f"setup.py: {library} needs {parts[0].strip()}, which ldd cannot find")
            found.append(Path(path))
    return found


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        if not LIBRARY.is_file():
            print(f"setup.py: no {LIBRARY}; building a pure-Python wheel that uses an installed libmixflow")
            return
        dest = Path(self.build_lib) / "mixflow"
        shutil.copyfile(LIBRARY, dest / "libmixflow.so")
        runtime = swift_runtime(LIBRARY)
        for lib in runtime:
            shutil.copyfile(lib, dest / lib.name)
        if runtime:
            subprocess.run(["patchelf", "--set-rpath", "$ORIGIN", str(dest / "libmixflow.so")], check=True)
        print(f"setup.py: bundled {LIBRARY}" + (f" and {len(runtime)} Swift runtime libraries" if runtime else ""))


class BinaryDistribution(Distribution):
    """With a library the package is platform-specific: files go to platlib and the wheel is not pure."""

    def has_ext_modules(self):
        return LIBRARY.is_file()


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        if not LIBRARY.is_file():
            return super().get_tag()
        return "py3", "none", sysconfig.get_platform().replace("-", "_").replace(".", "_")


scratch = tempfile.mkdtemp(prefix="mixflow-wheel-")
atexit.register(shutil.rmtree, scratch, True)
setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
      options={"build": {"build_base": os.path.join(scratch, "build")},
               "egg_info": {"egg_base": scratch}})
