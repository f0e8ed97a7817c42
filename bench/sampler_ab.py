"""Two versions of tune's search judged side by side: each run's answer re-measured against -O3.

    git archive COMMIT | tar -x -C /tmp/before                  # the code to compare against
    python bench/sampler_ab.py --before /tmp/before --seeds 0,1,2,3,4 --max-minutes 18
    python bench/sampler_ab.py --before /tmp/before --seeds 0,1,2,3,4 --report

For each seed, `tune explore STUDY --trials N --seed K` runs once with the tune of `--before`
(a checkout or `git archive` of the commit before a change; it runs with PYTHONPATH pointing at
it, from a neutral folder, and the bench checks which `tuner` that imports) and once with this
checkout's ("after"), before and after interleaved seed by seed so that load moves both alike.
A run's answer is what `explore` prints as its best: the confirmed point with the best paired
speed-up over the baseline, or the baseline when none beat it (bench/peers_answers.py, the rule
bench/peers.py judges tune by). Then every answer and -O3 itself (the A/A row: the noise floor)
are re-measured together against -O3 in interleaved shuffled ABBA rounds, one pair of fresh
processes per candidate per round (bench/peers_remeasure.py), so a load spike hits both
versions alike. Printed: per seed each version's re-measured speed-up [95% interval], the
geometric means over seeds, and the A/A row. Runs and pairs are cached in `--out`, so the bench
splits into chunks under the heavy lock (`--max-minutes`: no new run or round starts after it)
and resumes; `--report` measures nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peers import cell, summarise, verdict  # noqa: E402
from peers_answers import answer  # noqa: E402
from peers_remeasure import Remeasure  # noqa: E402
from peers_runs import say, tune_run  # noqa: E402
from tuner.space import config_key  # noqa: E402
from tuner.study import load_study  # noqa: E402

VERSIONS = ("before", "after")
REFERENCE = {"opt_level": "-O3"}


@contextlib.contextmanager
def running(version: str, before: Path, out: Path) -> Iterator[None]:
    """The environment `tune_run`'s child processes inherit: for "before", PYTHONPATH at that
    checkout, and a working folder that is not this checkout (`python -m` puts the working
    folder first on the import path)."""
    saved_env, saved_cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    if version == "before":
        os.environ["PYTHONPATH"] = str(before)
    os.chdir(out)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_env


def check_source(version: str, before: Path, out: Path) -> None:
    """Fail loudly when "before" would not run the code of `--before` (or "after" would)."""
    with running(version, before, out):
        got = subprocess.run([sys.executable, "-c", "import tuner; print(tuner.__file__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    want = before if version == "before" else ROOT
    if not Path(got).resolve().is_relative_to(want.resolve()):
        raise SystemExit(f"{version}: imports {got}, not the tune of {want}")


def run_file(out: Path, version: str, seed: int) -> Path:
    return out / "runs" / f"{version}-s{seed}.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="the checkout (or git archive) to compare against")
    ap.add_argument("--study", default="conv2d-flags")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--pairs", type=int, default=15, help="re-measurement rounds (one ABBA pair each)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "sampler_ab")
    ap.add_argument("--max-minutes", type=float, default=None, help="start no run or round after this")
    ap.add_argument("--report", action="store_true", help="print from the cache, measure nothing")
    args = ap.parse_args()
    if not (args.before / "tuner" / "__init__.py").exists():
        print(f"--before {args.before}: not a tune checkout (no tuner/__init__.py)", file=sys.stderr)
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(f"--seeds {args.seeds}: not a comma-separated list of integers", file=sys.stderr)
        return 2
    out = args.out.resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    spec = load_study(args.study)
    t0 = time.time()
    stop = (lambda: False) if args.max_minutes is None else (lambda: time.time() - t0 > 60 * args.max_minutes)

    if not args.report:
        for version in VERSIONS:
            check_source(version, args.before, out)
        for seed in seeds:
            for version in VERSIONS:
                path = run_file(out, version, seed)
                if path.exists():
                    continue
                if stop():
                    say("time is up: rerun to go on")
                    return 3
                say(f"{version} seed {seed}: tune explore {args.study} --trials {args.trials}")
                with running(version, args.before, out):
                    run = tune_run(spec, version, [], seed, args.trials, 0.0, out / "work")
                path.write_text(json.dumps(run, default=str))

    rem = Remeasure(spec, out / "interleaved", REFERENCE)
    got: dict[tuple[str, int], dict | None] = {}
    for version in VERSIONS:
        for seed in seeds:
            path = run_file(out, version, seed)
            got[(version, seed)] = answer(json.loads(path.read_text()), evals=args.trials) if path.exists() else None
    if not args.report:
        if any(a is None for a in got.values()):
            raise SystemExit("a run has no answer (or is missing): see its file in " + str(out / "runs"))
        keys = list(dict.fromkeys([rem.add(rem.reference)] + [rem.add(a["config"]) for a in got.values()]))
        say(f"re-measuring {len(keys)} distinct candidates side by side, {args.pairs} rounds")
        try:
            if not rem.run(keys, args.pairs, stop, say):
                say("time is up: rerun to go on")
                return 3
        finally:
            rem.cleanup()

    fig = lambda config: rem.result(config_key(config))       # noqa: E731
    print(f"{args.study}, {args.trials} trials per run: each run's answer re-measured against -O3 side by side "
          f"(median pair ratio -O3/answer [95% interval], pairs)")
    print("| seed | before | after |")
    print("|---|---|---|")
    per: dict[str, list[dict]] = {v: [] for v in VERSIONS}
    for seed in seeds:
        cells = []
        for version in VERSIONS:
            a = got[(version, seed)]
            f = fig(a["config"]) if a else None
            if f and "speedup" in f:
                per[version].append(f)
                runs = json.loads(run_file(out, version, seed).read_text())
                skipped = (runs.get("surrogate") or {}).get("pruned")
                cells.append(f"{cell(f)} n={f['n']} ({a['how']}, in campaign {a['in_campaign']:.3f}"
                             + (f", {skipped} skipped" if skipped is not None else "") + ")")
            else:
                cells.append("-" if f is None else f"failed: {f.get('failed')}")
        print(f"| {seed} | " + " | ".join(cells) + " |")
    aa = fig(rem.reference)
    means = {v: summarise(per[v]) if len(per[v]) == len(seeds) else None for v in VERSIONS}
    print("| geometric mean | " + " | ".join(cell(means[v]) for v in VERSIONS) + " |")
    print(f"A/A (-O3 against itself): {cell(aa) if aa and 'speedup' in aa else '-'}")
    if means["before"] and means["after"]:
        print(f"after vs before: {verdict(means['after'], means['before'])}; "
              f"ratio of geometric means {means['after']['speedup'] / means['before']['speedup']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
