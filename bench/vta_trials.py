"""Trials per second of the flagship study, end to end: `tune explore resnet18-vta` as a user runs it.

Each run is a fresh process with a fresh results directory (so a fresh build cache: every
hardware configuration the search visits is built as in a first campaign). Two figures per
setting: trials per second of the campaign (the time `tune explore` reports for "this run",
from the first trial to the last) and of the whole command (Python start-up and imports, about
1-3 s here, included). Two settings: the study's defaults (TPE, surrogate on) and random
sampling with the surrogate off (the plain cost of a trial).

    .venv/bin/python bench/vta_trials.py [--trials 60] [--seeds 0 1] [--study resnet18-vta] [--source DIR]
                                         [--warm] [--settings defaults,random]

--warm measures the steady state instead of a first campaign: before each timed run, a one-trial
campaign (the baseline) in other results fills a build cache that the timed run starts with
(copied into its results directory, where the cache lives), so the one-off compile of the
simulator is out of the figure (one compile per configuration, as at ef5483a, builds every other
configuration anyway).

--source DIR runs the tune of another checkout (e.g. a `git worktree` of the commit before), with
this venv's packages: `python -S -m tuner` with PYTHONPATH=DIR:site-packages, so the editable
install of this checkout stays out of the way.

Run it under `flock /tmp/tune-heavy.lock`: the figure depends on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "defaults": ("defaults (tpe, surrogate on)", []),
    "random": ("random, surrogate off", ["--sampler", "random", "--surrogate", "off"]),
}


def tune_command(source: Path | None) -> tuple[list[str], dict[str, str]]:
    """argv prefix and extra environment that run `tune` (this checkout's, or `source`'s)."""
    if source is not None:
        path = os.pathsep.join([str(source.resolve()), *site.getsitepackages()])
        return [sys.executable, "-S", "-m", "tuner"], {"PYTHONPATH": path}
    exe = Path(sys.executable).with_name("tune")
    return ([str(exe)] if exe.exists() else [sys.executable, "-m", "tuner"]), {}


def one_run(study: str, trials: int, seed: int, extra: list[str],
            source: Path | None = None, warm: bool = False) -> tuple[float, float, int]:
    """Wall seconds of one fresh `tune explore`, its campaign seconds, and the trials it finished."""
    with tempfile.TemporaryDirectory(prefix="vta-trials-") as tmp:
        prefix, env_extra = tune_command(source)
        argv = [*prefix, "explore", study, "--trials", str(trials), "--seed", str(seed),
                "--results", str(Path(tmp) / "results"), "--no-progress", "--no-export", *extra]
        env = dict(os.environ, TUNE_CACHE=str(Path(tmp) / "cache"), **env_extra)
        if warm:        # the baseline alone, in other results: builds what a first trial builds
            first = [*prefix, "explore", study, "--trials", "1", "--results", str(Path(tmp) / "warm"),
                     "--no-progress", "--no-export"]
            proc = subprocess.run(first, capture_output=True, text=True, cwd=tmp, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(first)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
            builds = Path(tmp) / "warm" / study / "builds"          # the build cache lives with the results
            if not builds.is_dir():
                raise SystemExit(f"--warm: no build cache at {builds}")
            shutil.copytree(builds, Path(tmp) / "results" / study / "builds")
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=tmp, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        m = re.search(r" in ([0-9.]+)s this run", proc.stdout)
        return wall, float(m.group(1)) if m else wall, finished_trials(proc.stdout, trials)


def finished_trials(stdout: str, fallback: int) -> int:
    for line in stdout.splitlines():       # "resnet18-vta: 60 trials finished ..."
        words = line.split()
        if len(words) > 3 and words[2:4] == ["trials", "finished"] and words[1].isdigit():
            return int(words[1])
    return fallback


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="resnet18-vta")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--json", action="store_true", help="print one JSON line per setting")
    ap.add_argument("--source", type=Path, help="run the tune of this checkout instead (the 'before')")
    ap.add_argument("--warm", action="store_true", help="the build cache holds the baseline's build first")
    ap.add_argument("--settings", default="defaults,random", help=f"of {', '.join(SETTINGS)}")
    ns = ap.parse_args()
    chosen = [k.strip() for k in ns.settings.split(",")]
    if any(k not in SETTINGS for k in chosen):
        ap.error(f"--settings: choose from {', '.join(SETTINGS)}")
    cache = "build cache holding the baseline's build (--warm)" if ns.warm else "build cache"
    print(f"{ns.study}: {ns.trials} trials per run, fresh results and {cache}, seeds {ns.seeds}"
          + (f", tune from {ns.source}" if ns.source else ""))
    print(f"{'setting':30} {'campaign s':>12} {'trials/s':>9} {'command s':>12} {'trials/s':>9}")
    for name, extra in (SETTINGS[k] for k in chosen):
        runs = [one_run(ns.study, ns.trials, seed, extra, ns.source, ns.warm) for seed in ns.seeds]
        wall = sum(r[0] for r in runs)
        camp = sum(r[1] for r in runs)
        done = sum(r[2] for r in runs)
        camps = " ".join(f"{r[1]:.1f}" for r in runs)
        walls = " ".join(f"{r[0]:.1f}" for r in runs)
        print(f"{name:30} {camps:>12} {done / camp:9.2f} {walls:>12} {done / wall:9.2f}")
        if ns.json:
            print(json.dumps({"setting": name, "walls": [r[0] for r in runs], "campaign_s": [r[1] for r in runs],
                              "trials": done, "trials_per_s": done / camp, "trials_per_s_command": done / wall}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
