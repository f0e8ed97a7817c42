"""Provenance: under what conditions a point was measured, so a reader can re-check it.

Two records, so that each trial stays cheap:

- **the run** (`run_provenance`, once per `tune explore` process): the machine (CPU model,
  cores, OS, kernel, memory), Python and library versions, tune's version and git commit,
  the study, target and include files with their hashes, the program's sources, template
  and headers with their hashes, the compiler's path and version, the sampler, seed and
  surrogate settings, and the measurement settings. It is stored once in the study
  (`store_run`, an Optuna study user attribute), so it travels with the journal.
- **the trial** (`trial_provenance`): only what changes from one configuration to the
  next: the exact build commands (as the build cache ran them), the run argv and
  environment, a generated source's hash, the build key, and the id of its run.

`merged(trial, runs)` joins the two for an export. Nothing here measures or decides; a
failure to read something (no git, no /proc) leaves the field out, never fails a trial.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

SCHEMA = "tune.provenance/1"
RUN_ATTR_PREFIX = "tune.provenance.run."
LIBRARIES = ("optuna", "numpy", "scipy", "scikit-learn", "pandas", "joblib", "matplotlib", "jinja2")
_TMP_BUILD_DIR = re.compile(r"\S*/\.build-[^/\s]+/")


def sha256_file(path: str | Path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


# --- the machine, the software -----------------------------------------------------------
@lru_cache(maxsize=1)
def machine() -> dict[str, Any]:
    """CPU model, cores, OS, kernel and memory of the machine running tune."""
    out: dict[str, Any] = {"hostname": platform.node(), "os": platform.system(),
                           "kernel": platform.release(), "arch": platform.machine(),
                           "cores": os.cpu_count()}
    try:
        out["os_release"] = _os_release()
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                out["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        out["cpu_model"] = platform.processor() or None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                out["memory_bytes"] = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    return out


def _os_release() -> str:
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    return fields.get("PRETTY_NAME", "").strip('"')


@lru_cache(maxsize=1)
def software() -> dict[str, Any]:
    """Python, the libraries tune computes with, and tune itself (git commit from a checkout)."""
    from tuner import __version__

    libs = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    tune: dict[str, Any] = {"version": __version__}
    tune.update(_git(Path(__file__).resolve().parent.parent))
    return {"python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                       "executable": sys.executable},
            "libraries": libs, "tune": tune}


def _git(root: Path) -> dict[str, Any]:
    """The commit of a source checkout (and whether it had uncommitted changes); {} otherwise."""
    if not (root / ".git").exists() or shutil.which("git") is None:
        return {}
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return {"git_commit": head.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


@lru_cache(maxsize=None)
def compiler(cc: str) -> dict[str, Any]:
    """The compiler's resolved path and its `--version` first line."""
    path = shutil.which(cc)
    if path is None:
        return {"name": cc, "path": None, "version": None}
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        text = (proc.stdout or proc.stderr).strip()
        version = text.splitlines()[0] if text else None
    except (OSError, subprocess.SubprocessError):
        version = None
    return {"name": cc, "path": os.path.realpath(path), "version": version}


# --- the study and its files --------------------------------------------------------------
def study_files(spec: Any) -> dict[str, Any]:
    """The study file, its includes, the program's sources, template and headers, with hashes."""
    from tuner.program import ProgramSpec

    program: ProgramSpec = spec.program
    files = {"study": _entry(spec.file)}
    includes = sorted({str(k.file) for k in spec.space.knobs.values()
                       if getattr(k, "file", None) and Path(k.file) != Path(spec.file)})
    if includes:
        files["includes"] = [_entry(p) for p in includes]
    files["sources"] = [_entry(p) for p in program.sources]
    if program.template is not None:
        files["template"] = _entry(program.template)
    headers = sorted({h for d in program.include_dirs for h in Path(d).glob("*.h")})
    files["headers"] = [_entry(h) for h in headers]
    return files


def _entry(path: str | Path) -> dict[str, Any]:
    return {"path": str(path), "sha256": sha256_file(path)}


def target_record(target: Any) -> dict[str, Any]:
    spec = target.spec
    m = spec.measure
    return {"name": spec.name, "driver": spec.driver,
            "file": _entry(spec.file) if spec.file else None,
            "toolchain": {"cc": spec.toolchain.cc, "cflags": list(spec.toolchain.cflags),
                          "ldflags": list(spec.toolchain.ldflags)},
            "measure": {k: getattr(m, k) for k in m.__dataclass_fields__},
            "transport": {k: v for k, v in spec.transport.items() if "password" not in k.lower()}}


def run_provenance(spec: Any, target: Any, *, sampler: str | None = None, seed: int | None = None,
                   surrogate: Mapping[str, Any] | None = None, environment: Mapping[str, Any] | None = None,
                   argv: list[str] | None = None) -> dict[str, Any]:
    """Everything that holds for a whole run (one process); collected once, stored once."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "run": uuid.uuid4().hex[:12],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "machine": machine(),
        **software(),
        "files": study_files(spec),
        "target": target_record(target),
        "compiler": compiler(target.spec.toolchain.cc),
        "search": {"sampler": sampler, "seed": seed, "surrogate": dict(surrogate) if surrogate else None},
        "environment": dict(environment) if environment else _environment(target, spec.program),
    }
    return doc


def _environment(target: Any = None, program: Any = None) -> dict[str, Any]:
    """The measurement environment at the start of the run: the measurement module's view of
    the machine (CPU model, governor, virtualised), where runs and builds are placed, the load
    and this process's affinity. Each trial's own (load, other processes, steal during its
    launches) is in its record's `environment` field."""
    out: dict[str, Any] = {}
    try:
        from tuner.measure import environment as menv
        out.update(menv.machine())
        if target is not None:
            out.update(target.placement(program).as_dict())
    except Exception:  # nothing here may fail a run: a field that cannot be read is left out
        pass
    try:
        out["loadavg"] = [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        pass
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if "governor" not in out and gov.exists():
        try:
            out["governor"] = gov.read_text().strip()
        except OSError:
            pass
    try:
        out["affinity"] = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    return out


# --- per trial ----------------------------------------------------------------------------
def build_commands(build: Any) -> list[list[str]] | None:
    """The compile and link commands exactly as the build cache ran them (its build.txt), with
    the temporary build directory written as `./`; None when the build left no record."""
    path = getattr(build, "path", None)
    if path is None:
        return None
    log = Path(path).parent / "build.txt"
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return None
    return [_TMP_BUILD_DIR.sub("./", ln).split(" ") for ln in lines if ln and not ln.startswith("build_s=")]


def trial_provenance(run: Mapping[str, Any] | None, target: Any, program: Any, rendering: Any,
                     build: Any) -> dict[str, Any]:
    """What this trial's build and run were: small, since the run record holds the rest."""
    env = {**target.spec.measure.harness_env(), **dict(rendering.env)}
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "run": run.get("run") if run else None,
        "build_key": getattr(build, "key", None),
        "build": build_commands(build),
        "run_argv": [*build.command, *program.args, *rendering.args],
        "run_env": env,
    }
    if rendering.compiler and (not run or rendering.compiler != run.get("compiler", {}).get("name")):
        doc["compiler"] = compiler(rendering.compiler)
    if program.template is not None:
        generated = [p for p in _sources_of(target, program, rendering) if p not in program.sources]
        doc["generated"] = [_entry(p) for p in generated]
    return doc


def _sources_of(target: Any, program: Any, rendering: Any) -> list[Path]:
    try:
        return list(target.sources(program, rendering))
    except Exception:  # a template that fails to render has no build, so nothing to record
        return []


# --- storing and joining ------------------------------------------------------------------
def store_run(study: Any, run: Mapping[str, Any]) -> None:
    """Keep a run's record in the study itself, so it travels with the journal."""
    study.set_user_attr(RUN_ATTR_PREFIX + str(run["run"]), dict(run))


def load_runs(study: Any) -> dict[str, dict[str, Any]]:
    """Every run's record of a study, by run id, oldest first."""
    runs = {k[len(RUN_ATTR_PREFIX):]: v for k, v in study.user_attrs.items()
            if k.startswith(RUN_ATTR_PREFIX) and isinstance(v, dict)}
    return dict(sorted(runs.items(), key=lambda kv: str(kv[1].get("started", ""))))


def of(record: Any) -> dict[str, Any] | None:
    """A trial record's own provenance (the record's `provenance` field; older records kept it
    in their attributes)."""
    value = getattr(record, "provenance", None)
    if value is None:
        value = (getattr(record, "attrs", None) or {}).get("provenance")
    return value if isinstance(value, dict) else None


def merged(trial: Mapping[str, Any] | None, runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """A trial's full provenance: its run's record with the trial's own fields on top."""
    if not trial:
        return None
    run = runs.get(str(trial.get("run")), {})
    return {**run, **trial}


def summary(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What an appendix says about the runs: machines, compilers, versions, commits."""
    from tuner.targets.spec import NOISY     # methods whose figures vary between processes

    def distinct(get: Any) -> list[Any]:
        seen: list[Any] = []
        for r in runs.values():
            v = get(r)
            if v is not None and v not in seen:
                seen.append(v)
        return seen

    return {
        "runs": len(runs),
        "machines": distinct(lambda r: {k: r.get("machine", {}).get(k) for k in
                                        ("cpu_model", "cores", "memory_bytes", "os_release", "kernel", "arch")}),
        "compilers": distinct(lambda r: r.get("compiler", {}).get("version")),
        "python": distinct(lambda r: r.get("python", {}).get("version")),
        "libraries": distinct(lambda r: r.get("libraries")),
        "tune": distinct(lambda r: r.get("tune")),
        "targets": distinct(lambda r: r.get("target", {}).get("name")),
        "search": distinct(lambda r: r.get("search")),
        # counts and simulations give the same figure every run: reproduced means equal
        "deterministic": bool(runs) and all(r.get("target", {}).get("measure", {}).get("method", "wall")
                                            not in NOISY for r in runs.values()),
    }
