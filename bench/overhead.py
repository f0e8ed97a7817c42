"""Engine overhead per trial at 384 knobs: sampler, surrogate and storage, measured apart.

    python bench/overhead.py --trials 60 --samplers anchored,tpe,random
    python bench/overhead.py --trials 30 --samplers auto --surrogate on   # the default

Runs the real campaign loop (tuner.campaign.Campaign with the journal storage and, where asked,
the surrogate's pruning policy, exactly as `tune explore` builds them) on the generated gcc space
(search_spaces/knobs/gcc.toml: 384 knobs) around a tiny conv2d, so that building and running
cost little, and times each part of every trial:

* sampler: creating the trial plus drawing every knob (Optuna samples lazily, at each suggest,
  and writes each parameter to the storage: that part is here too);
* surrogate: the pruning policy's screen (fitting every 4 measurements, predicting, the
  hypervolume test);
* storage: telling the result (and the fsync), writing the trial's record, the loop's reads;
* engine: everything but the build and the run (what `tune explore` prints at the end).

Prints the median and 90th percentile of each, per sampler and surrogate setting.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402

from tuner import engine  # noqa: E402
from tuner.campaign import Options  # noqa: E402
from tuner.progress import OverheadMeter  # noqa: E402
from tuner.samplers import choose  # noqa: E402
from tuner.study import load_study  # noqa: E402
from tuner.surrogate import PruningPolicy  # noqa: E402
from tuner.targets import load_target, make_target  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
GOAL_MS = 50.0          # issue #10 item 4

STUDY = """[study]
description = "overhead bench: the generated gcc space around a tiny conv2d"
target = "local"
objectives = ["latency_ms", "binary_bytes"]
trials = 60
baseline = {{ opt_level = "-O3" }}
include = ["{knobs}"]

[program]
sources = ["{conv2d}"]
cflags = ["-std=c11"]
ldflags = ["-lm"]
args = ["--h", "4", "--c", "4", "--k", "4"]
verify = "exact"
reference_cflags = ["-O0"]
"""


class Timer:
    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def wrap(self, part: str, fn):
        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.parts[part] = self.parts.get(part, 0.0) + time.perf_counter() - t0
        return timed


def run(sampler: str, surrogate: bool, trials: int, seed: int, work: Path) -> tuple[dict[str, list[float]], bool]:
    """Times per trial by part, and whether `sampler` is the one `tune explore` picks here."""
    study_file = work / "overhead.toml"
    study_file.write_text(STUDY.format(knobs=ROOT / "search_spaces" / "knobs" / "gcc.toml",
                                       conv2d=ROOT / "programs" / "conv2d" / "conv2d.c"))
    spec = load_study(str(study_file))
    assert len(spec.space) == 384, len(spec.space)
    out = work / f"{sampler}-{'on' if surrogate else 'off'}"
    target = make_target(load_target("local", {"min_launches": 1, "max_launches": 1, "min_reps": 3,
                                               "max_reps": 3}), out / "builds")
    screen = PruningPolicy(spec, seed=seed) if surrogate else None
    meter = OverheadMeter()
    timer = Timer()
    per_trial: dict[str, list[float]] = {"sampler": [], "surrogate": [], "storage": [], "engine": []}

    def on_trial(told) -> None:
        parts = {part: timer.parts.pop(part, 0.0) for part in ("sampler", "surrogate", "storage")}
        if told.record.status.measured or told.record.status == "pruned":
            for part, v in parts.items():
                per_trial[part].append(v)
            busy = told.record.timing.get("build_s", 0.0) + told.record.timing.get("run_s", 0.0)
            per_trial["engine"].append(max(told.elapsed_s - busy, 0.0))

    chosen = choose(sampler, spec.space, trials)[0]        # `auto`: what `tune explore` picks here
    campaign = engine.start(spec, target, Options(trials, chosen, seed, {}, None, out, False), screen,
                            observers=[meter, on_trial])
    store = campaign.store
    store.ask = timer.wrap("sampler", store.ask)                       # creating the trial
    campaign.spec.space.sample = timer.wrap("sampler", campaign.spec.space.sample)   # drawing every knob
    if screen is not None:
        wrapped = timer.wrap("surrogate", screen)
        wrapped.observe = screen.observe
        campaign.screen = wrapped
    for name in ("look", "write", "tell"):                             # the journal: reads, records, tells
        setattr(store, name, timer.wrap("storage", getattr(store, name)))
    try:
        campaign.run()
    finally:
        target.cleanup()
    return per_trial, chosen == choose("auto", spec.space, trials)[0]


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"{statistics.median(xs) * 1e3:6.1f} ms (p90 {xs[int(0.9 * (len(xs) - 1))] * 1e3:6.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--samplers", default="anchored,tpe,random")
    ap.add_argument("--surrogate", default="on,off", help="on, off or both (on,off)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"engine overhead per trial, 384 knobs, {args.trials} trials (medians over the measured trials; "
          "the first trials, before the surrogate's warm-up, included)")
    print(f"{'sampler':10} {'surrogate':9} {'sampler':>24} {'surrogate':>24} {'storage':>24} {'engine (all)':>24}")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="tune-overhead-") as tmp:
        for sampler in args.samplers.split(","):
            for sur in args.surrogate.split(","):
                per, default = run(sampler, sur == "on", args.trials, args.seed, Path(tmp))
                print(f"{sampler:10} {sur:9} " + " ".join(f"{stats(per[p]):>24}" for p in
                                                          ("sampler", "surrogate", "storage", "engine")), flush=True)
                if sur == "on" and default:
                    verdicts.append((sampler, statistics.median(per["engine"]) * 1e3))
    for sampler, ms in verdicts:     # issue #10 item 4: the default search, surrogate on
        print(f"goal: engine overhead under {GOAL_MS:.0f} ms per trial at 384 knobs with the surrogate "
              f"({sampler}, {args.trials} measured trials): {ms:.1f} ms median: "
              + ("MET" if ms < GOAL_MS else "NOT MET"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
