"""tune works installed from a wheel, outside the source tree: the component library (studies,
targets, objectives, programs) is package data, and a user's study anywhere can include the
built-in knob files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import needs_gcc

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ("tuner", "search_spaces", "targets", "objectives", "programs", "pyproject.toml", "setup.py",
          "MANIFEST.in", "README.md")

USER_STUDY = """
[study]
description = "a user's study outside the library, with the built-in GCC knob file"
target = "local"
objectives = ["latency_ms"]
include = [{ file = "knobs/gcc-curated.toml", names = ["f_unroll_loops"] }]

[program]
sources = ["conv2d/conv2d.c"]
"""


def run(argv, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel built from a copy of the source tree, installed into a fresh venv that borrows
    this venv's dependencies (a .pth line: no download, and no editable `tuner` from here)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCE:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(
            ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                        if (ROOT / name).is_dir() else {}))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)], env=outside())
    [wheel] = (tmp / "dist").glob("tune-*.whl")
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=outside())
    purelib = Path(run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       env=outside()).stdout.strip())
    (purelib / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)],
        env=outside())
    return venv


def outside() -> dict[str, str]:
    """The environment of a user outside the source tree: no PYTHONPATH, no TUNE_ settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TUNE_") and k != "PYTHONPATH"}


def tune(venv: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    return run([str(venv / "bin" / "tune"), *map(str, args)], cwd=cwd, env=outside())


@pytest.mark.slow
def test_the_wheel_carries_the_library(installed, tmp_path):
    where = run([str(installed / "bin" / "python"), "-c", "import tuner, tuner.library as l; "
                 "print(tuner.__file__); print(l.BUILTIN_ROOT)"], cwd=tmp_path, env=outside()).stdout.split()
    assert not where[0].startswith(str(ROOT)), f"imported the source tree, not the wheel: {where[0]}"
    assert where[1].endswith("tuner/_library")
    spaces = tune(installed, tmp_path, "spaces").stdout
    for study in ("conv2d-flags", "resnet18-vta", "digits-quant", "tvm-matmul"):
        assert study in spaces and "broken" not in spaces, spaces
    assert "opt_level" in tune(installed, tmp_path, "spaces", "conv2d-flags").stdout


@pytest.mark.slow
@needs_gcc
def test_a_real_measurement_from_the_wheel_outside_the_source_tree(installed, tmp_path):
    proc = tune(installed, tmp_path, "measure", "conv2d-flags", "--set", "opt_level=-O2",
                "--target-opt", "max_reps=3", "--target-opt", "max_seconds=1", "--format", "json")
    assert '"ok": true' in proc.stdout and '"latency_ms"' in proc.stdout, proc.stdout
    assert (tmp_path / "results" / "conv2d-flags").is_dir()


@pytest.mark.slow
def test_a_users_study_includes_built_in_knob_files_when_installed(installed, tmp_path):
    (tmp_path / "mine.toml").write_text(USER_STUDY)
    out = tune(installed, tmp_path, "spaces", "mine.toml").stdout
    assert "f_unroll_loops" in out and "flag" in out


def test_a_users_study_includes_built_in_knob_files(lab):
    """From the source tree too: `knobs/gcc-curated.toml` is not beside the study, so it comes
    from the library's search_spaces/."""
    (lab.root / "mine.toml").write_text(USER_STUDY)
    proc = lab.fork("spaces", lab.root / "mine.toml")
    assert proc.returncode == 0 and "f_unroll_loops" in proc.stdout and " flag " in proc.stdout, proc.stderr
    (lab.root / "knobs").mkdir()
    (lab.root / "knobs" / "gcc-curated.toml").write_text(
        '[knobs.f_unroll_loops]\nkind = "categorical"\nchoices = ["-O1", "-O2"]\nto = "cflag"\n')
    assert "categorical" in lab.fork("spaces", lab.root / "mine.toml").stdout, "a file beside the study comes first"
