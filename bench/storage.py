"""Per-trial engine overhead of each storage backend: journal file, SQLite, PostgreSQL.

Runs the same tiny campaign (the test suite's kernel.c on the `fast` target, a 41x41 int
space, random sampler, surrogate off) in-process through the Campaign API against each
backend, and prints the median and 90th percentile of `OverheadMeter.overheads_s`: the loop time
per measured trial minus build and run (asking, the storage reads that learn other
workers' trials, telling, fsync). PostgreSQL is a throw-away local server (tests/pg_fixture.py;
as root it runs as the `postgres` user), reached over TCP on 127.0.0.1.

    python bench/storage.py                  # 30 trials per backend
    python bench/storage.py --trials 60 --backends journal,postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import Lab  # noqa: E402  (the tests' tiny study library)

from tuner.campaign import Campaign, Options  # noqa: E402
from tuner.progress import OverheadMeter  # noqa: E402
from tuner.study import load_study  # noqa: E402
from tuner.targets import load_target, make_target  # noqa: E402

SPACE = """
[knobs.x]
kind = "int"
low = 0
high = 40
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 40
define = "Y"
"""


def run(lab: Lab, backend: str, url: str | None, trials: int) -> list[float]:
    study = lab.study(f"bench-{backend}", SPACE, verify="none")
    spec = load_study(str(study))
    out = lab.root / "results" / spec.name
    target = make_target(load_target(spec.target), out / "builds")
    try:
        meter = OverheadMeter()
        campaign = Campaign(spec, target, Options(trials, "random", 0, {}, url, out, False), observers=[meter])
        campaign.log = lambda msg: None
        campaign.run()
    finally:
        target.cleanup()
    return meter.overheads_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--backends", default="journal,sqlite,postgres")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    root = Path(tempfile.mkdtemp(prefix="tune-bench-storage-"))
    os.environ["TUNE_LIBRARY"] = str(root)
    os.chdir(root)
    lab = Lab(root)
    server = None
    print(f"{'backend':<10} {'trials':>6} {'median ms':>10} {'p90 ms':>8}")
    try:
        for backend in args.backends.split(","):
            if backend == "journal":
                url = None
            elif backend == "sqlite":
                url = f"sqlite:///{root / 'bench.db'}"
            elif backend == "postgres":
                import pg_fixture
                server = server or pg_fixture.start_postgres()
                url = server.database()
            else:
                raise SystemExit(f"unknown backend {backend}")
            o = sorted(x * 1e3 for x in run(lab, backend, url, args.trials))
            print(f"{backend:<10} {len(o):>6} {statistics.median(o):>10.1f} {o[int(0.9 * (len(o) - 1))]:>8.1f}",
                  flush=True)
    finally:
        if server is not None:
            import pg_fixture
            pg_fixture.stop_postgres(server)


if __name__ == "__main__":
    main()
