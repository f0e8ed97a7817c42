"""Does a change to the engine keep the search the same? Same seed -> same proposals.

    python bench/same_proposals.py --base main --trials 100
    python bench/same_proposals.py --base 2ce704d --samplers auto,tpe,random --surrogate always,off

Runs one seeded campaign per sampler and surrogate setting with the code of `--base` (a git
revision, exported to a temporary directory) and with this checkout, and compares the trials
told: number, status, configuration key and values, in order. A speed-up of the storage, the
sampler's bookkeeping or the surrogate's prediction must leave every line the same.

The campaign is the overhead bench's (bench/overhead.py: the generated gcc space, 384 knobs)
with a deterministic evaluator in place of building and running: each objective is a fixed
function of the configuration (a few knobs weigh a lot, the rest a little), so nothing depends
on the machine's timing. `--surrogate always` screens every candidate (the `on` setting stands
aside by the clock, which no two runs share); `off` measures them all. Prints one verdict line
per setting and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HEAVY = ("opt_level", "march", "f_unroll_loops", "f_tree_vectorize", "f_inline")


def _h(*parts: object) -> float:
    return int(hashlib.sha1(repr(parts).encode()).hexdigest()[:8], 16) / 16**8


def campaign(sampler: str, surrogate: str, trials: int, work: Path) -> list[str]:
    """The trials told by a seeded campaign of the code on sys.path (one line each)."""
    import optuna

    import tuner
    from tuner import engine
    from tuner.campaign import Options
    from tuner.evaluate import Outcome
    from tuner.records import Measurement
    from tuner.samplers import choose
    from tuner.study import load_study
    from tuner.surrogate import PruningPolicy
    from tuner.targets import load_target, make_target

    sys.path.insert(0, str(HERE))
    from overhead import STUDY

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tree = Path(tuner.__file__).resolve().parents[1]

    class Fixed:
        """Objectives as a fixed function of the configuration: nothing is built or run."""

        def evaluate(self, config):   # noqa: ANN001, ANN201 - the campaign's Evaluate protocol
            items = sorted(config.items())
            lat = 10.0 + sum((5.0 if k in HEAVY else 0.05) * _h("l", k, str(v)) for k, v in items)
            size = 5000.0 + sum((300.0 if k in HEAVY else 2.0) * _h("s", k, str(v)) for k, v in items)
            values = {"latency_ms": lat, "binary_bytes": size}
            return Outcome(config, Measurement(metrics=values, samples_ms=(lat,)), values,
                           timing={"build_s": 0.3, "run_s": 0.1, "total_s": 0.4})

    study_file = work / "overhead.toml"
    study_file.write_text(STUDY.format(knobs=tree / "search_spaces" / "knobs" / "gcc.toml",
                                       conv2d=tree / "programs" / "conv2d" / "conv2d.c"))
    spec = load_study(str(study_file))
    screen = None
    if surrogate == "always":
        screen = PruningPolicy(spec, seed=0)
        screen.settings.stand_aside = False
    chosen = choose(sampler, spec.space, trials)[0]
    target = make_target(load_target("local", {}), work / "builds")
    run = engine.start(spec, target, Options(trials, chosen, 0, {}, None, work / "results", False), screen,
                       measuring=False)
    run.evaluator = Fixed()
    run.run()
    return [f"{r.number} {r.status.value} {r.config_key} {sorted((r.values or {}).items())}"
            for r in sorted(run.records(), key=lambda r: r.number)]


def export(rev: str, dest: Path) -> Path:
    """The tree of git revision `rev` (no shell: the revision is one argument)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"bench/same_proposals.py: --base: {archive.stderr.decode().strip()}")
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=__import__("io").BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def told(tree: Path, sampler: str, surrogate: str, trials: int, work: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, __file__, "--worker", sampler, surrogate, str(trials), str(work)],
                          capture_output=True, text=True, env=env, cwd=work.parent, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench/same_proposals.py: the campaign of {tree} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.splitlines()


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        work = Path(sys.argv[5])
        work.mkdir(parents=True, exist_ok=True)
        print("\n".join(campaign(sys.argv[2], sys.argv[3], int(sys.argv[4]), work)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    ap.add_argument("--trials", type=int, default=100, help="measured trials per campaign")
    ap.add_argument("--samplers", default="auto", help="comma-separated (auto picks anchored here)")
    ap.add_argument("--surrogate", default="always", help="always, off, or both (always,off)")
    args = ap.parse_args()
    differ = 0
    with tempfile.TemporaryDirectory(prefix="tune-same-") as tmp:
        base = export(args.base, Path(tmp) / "base")
        for sampler in args.samplers.split(","):
            for sur in args.surrogate.split(","):
                a = told(base, sampler, sur, args.trials, Path(tmp) / f"a-{sampler}-{sur}")
                b = told(ROOT, sampler, sur, args.trials, Path(tmp) / f"b-{sampler}-{sur}")
                first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
                if first is None and len(a) == len(b):
                    print(f"{sampler:8} surrogate {sur:6}: SAME {len(a)} trials told "
                          f"({sum(' pruned ' in x for x in a)} skipped by the surrogate) as {args.base}")
                else:
                    differ += 1
                    at = first if first is not None else min(len(a), len(b))
                    print(f"{sampler:8} surrogate {sur:6}: DIFFERENT from trial {at} "
                          f"({len(a)} trials told by {args.base}, {len(b)} by this checkout)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
