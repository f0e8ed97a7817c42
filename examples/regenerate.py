"""Regenerate examples/ from scratch with the current code: each study's campaign, its
reductions, its paper bundle, its archive, and the archive re-checked from another folder.

Why a script: the examples are evidence for the README ("From campaign to paper"), so they
must come from one command a reader can rerun on the code they have, not from a session's
history. Every step is the `tune` command a user would type, run without a shell (argv lists;
no knob value ever passes through one), in a scratch folder; what it printed is written next
to the bundle (`STUDY/explore.txt`, `reduce.txt`, `export.txt`, `pack.txt`, `reproduce.txt`),
headed by the command and ended by its exit code and wall time.

    python examples/regenerate.py                        # both studies into examples/ (~12 min)
    python examples/regenerate.py --study resnet18-vta   # one study
    python examples/regenerate.py --out /tmp/ex --trials 8   # a quick check, not for committing

Which points are reduced is decided from the front, not by hand: the best point of the first
objective and the knee (`tune pareto --format json` marks it). The bundle is committed without
what is derivable or bulky: the classic `pareto.*`/`trials.csv` export and the PGF copies of
the figures, except `front.pgf`, which `preview.tex` inputs. `tune reproduce` exits 1 when a
point did not reproduce; that is a result (written to the transcript), not a failure of the
script. Any other step exiting non-zero stops the script with one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DROPPED = {"pareto.csv", "pareto.json", "pareto.tex", "pareto.png", "pareto.pdf", "trials.csv",
           "hypervolume.pgf", "importance.pgf"}
TRANSCRIPTS = ("explore.txt", "reduce.txt", "export.txt", "pack.txt", "reproduce.txt")


@dataclass(frozen=True)
class Example:
    """One study's recipe: how its campaign is run and which of its points are reduced how."""

    study: str
    explore: tuple[str, ...] = ("--seed", "0")
    reduce_points: tuple[str, ...] = ("best", "knee")
    reduce: tuple[str, ...] = ()


EXAMPLES = {
    e.study: e for e in (
        Example("resnet18-vta"),
        # A flag space's reduction measures every test in ABBA pairs (minutes per point), so
        # only its fastest point is reduced, to 5% rather than 2% (timing noise on this machine).
        Example("conv2d-flags", reduce_points=("best",),
                reduce=("--tolerance", "0.05", "--max-tests", "60")),
    )
}


class StepFailed(Exception):
    """A `tune` step exited non-zero where the example needs it to succeed."""


@dataclass
class Transcript:
    """What each command printed, in order, for one transcript file."""

    path: Path
    parts: list[str] = field(default_factory=list)

    def write(self) -> None:
        self.path.write_text("\n".join(self.parts))


def tune_argv() -> list[str]:
    """The `tune` of the interpreter running this script (its venv), else the one on PATH."""
    local = Path(sys.executable).with_name("tune")
    if local.exists():
        return [str(local)]
    found = shutil.which("tune")
    if not found:
        raise StepFailed("no `tune` next to this Python or on PATH (run `make python` first)")
    return [found]


def run(args: list[str], cwd: Path, log: Transcript, ok: tuple[int, ...] = (0,),
        quiet: bool = False) -> str:
    """Run `tune ARGS` in CWD, append its output to LOG, return its stdout."""
    env = {k: v for k, v in os.environ.items() if k != "TUNE_LIBRARY"}   # built-in studies only
    start = time.monotonic()
    proc = subprocess.run([*tune_argv(), *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if quiet else subprocess.STDOUT)
    took = time.monotonic() - start
    printed = proc.stdout.rstrip() + (f"\n{proc.stderr.rstrip()}" if proc.stderr else "")
    log.parts.append(f"$ tune {' '.join(args)}\n{printed}\n"
                     f"[exit {proc.returncode}, {took:.1f} s]\n")
    if not quiet:
        print(f"  tune {' '.join(args)}: exit {proc.returncode}, {took:.1f} s", flush=True)
    if proc.returncode not in ok:
        log.write()
        raise StepFailed(f"`tune {' '.join(args)}` exited {proc.returncode} (see {log.path})")
    return proc.stdout


def points_to_reduce(ex: Example, work: Path) -> list[int]:
    """The front's best point on the first objective and its knee, as the recipe asks."""
    from tuner.study import load_study

    printed = run(["pareto", ex.study, "--format", "json"], work, Transcript(work / "pareto.txt"),
                  quiet=True)
    front = [p for p in json.loads(printed) if p.get("values")]
    first = load_study(ex.study).objectives[0]
    sign = 1 if first.direction == "minimize" else -1
    chosen: list[int] = []
    for which in ex.reduce_points:
        if which == "best":
            trial = min(front, key=lambda p: sign * p["values"][first.name])["trial"]
        else:
            trial = next((p["trial"] for p in front if p.get("knee")), None)
        if trial is not None and trial != 0 and trial not in chosen:   # the baseline has no knobs to drop
            chosen.append(trial)
    return chosen


def regenerate(ex: Example, out: Path, work: Path, trials: int | None) -> None:
    """Every step for one study; the bundle, archive and transcripts end up in OUT."""
    print(f"{ex.study}:", flush=True)
    logs = {name: Transcript(work / name) for name in TRANSCRIPTS}
    budget = ("--trials", str(trials)) if trials else ()
    run(["explore", ex.study, *ex.explore, *budget, "--no-export", "--no-progress"], work,
        logs["explore.txt"])
    for trial in points_to_reduce(ex, work):
        run(["reduce", ex.study, "--trial", str(trial), *ex.reduce], work, logs["reduce.txt"])
    run(["export", ex.study, "--out", "bundle"], work, logs["export.txt"])
    archive = f"{ex.study}.tune.tar.gz"
    run(["pack", ex.study, "--out", archive], work, logs["pack.txt"])
    elsewhere = work / "elsewhere"            # no results/, no library: only the archive
    elsewhere.mkdir()
    shutil.copy2(work / archive, elsewhere / archive)
    run(["unpack", archive, "--into", "art"], elsewhere, logs["reproduce.txt"])
    run(["reproduce", ex.study, "--front"], elsewhere / "art", logs["reproduce.txt"], ok=(0, 1))

    dest = out / ex.study
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in sorted((work / "bundle").iterdir()):
        if f.name not in DROPPED:
            shutil.copy2(f, dest / f.name)
    for log in logs.values():
        if log.parts:
            log.path = dest / log.path.name
            log.write()
    shutil.copy2(work / archive, out / archive)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", action="append", choices=sorted(EXAMPLES),
                   help="regenerate only this study (repeatable; default: all)")
    p.add_argument("--out", type=Path, default=HERE, help="where the bundles go (default: examples/)")
    p.add_argument("--trials", type=int, help="override the studies' budgets (a quick check only)")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch folders and say where")
    args = p.parse_args(argv)
    if args.trials is not None and args.trials < 2:
        p.error("--trials must be at least 2 (the baseline and one more)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.study or list(EXAMPLES):
        work = Path(tempfile.mkdtemp(prefix=f"tune-example-{name}-"))
        try:
            regenerate(EXAMPLES[name], args.out.resolve(), work, args.trials)
        except StepFailed as e:
            print(f"regenerate: {name}: {e}; scratch folder kept: {work}", file=sys.stderr)
            return 1
        if args.keep_work:
            print(f"  scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
