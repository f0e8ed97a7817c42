"""Ship the component library (studies, targets, objectives, programs) inside the wheel.

pyproject.toml holds the metadata; this adds one build step: the library folders at the top of
the source tree are copied into the built package as `tuner/_library/`, where tuner.library
finds them when tune is installed from a wheel or with a plain `pip install .` (an editable
install and a source checkout read them in place).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LIBRARY = ("search_spaces", "targets", "objectives", "programs")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.o", "*.so", "build", "results")


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:       # pip install -e: the library is read in place
            return
        here = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "tuner" / "_library"
        for folder in LIBRARY:
            shutil.rmtree(dest / folder, ignore_errors=True)
            shutil.copytree(here / folder, dest / folder, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithLibrary})
