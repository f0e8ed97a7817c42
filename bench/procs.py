"""What starting one child costs tune: tuner.procs.run of `true`, per start-up mode.

    python bench/procs.py [--children 200] [--modes fork,setpriv]

Each mode runs in a fresh Python process that first imports what `tune explore` imports
(optuna, numpy, scikit-learn's Gaussian process, the campaign), because the cost of a fork
grows with the parent's memory map (its page tables are copied; vfork copies nothing):

* fork: TUNE_PROCS_SPAWN=fork, the pre-exec hook (prctl between fork and exec), which rules
  out vfork: what tune did before;
* setpriv: `setpriv --pdeathsig KILL -- true` started by vfork (the default where util-linux's
  setpriv is installed): one exec more, no page-table copy.

Prints the median and 90th percentile of the wall time of run() per child (start, wait, the
guard's two pipe writes), and the parent's resident set size. Run it under
`flock /tmp/tune-heavy.lock`: the figure depends on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(n: int) -> dict:
    """In the measuring process: import tune's weight, then time n runs of `true`."""
    sys.path.insert(0, str(ROOT))
    import numpy  # noqa: F401
    import optuna  # noqa: F401
    import sklearn.gaussian_process  # noqa: F401

    import tuner.campaign  # noqa: F401
    from tuner import procs

    wrapper = procs.setpriv()
    for _ in range(5):      # the guard's start and the first exec's page cache out of the figure
        procs.run(["true"])
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        done = procs.run(["true"])
        times.append((time.perf_counter() - t0) * 1000)
        assert done.returncode == 0, done
    rss_kb = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    times.sort()
    return {"wrapper": wrapper, "median_ms": statistics.median(times),
            "p90_ms": times[int(0.9 * (len(times) - 1))], "rss_mb": rss_kb / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, default=200, help="timed runs per mode")
    ap.add_argument("--modes", default="fork,setpriv", help="comma-separated: fork, setpriv")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.children)))
        return 0
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("fork", "setpriv")]
    if bad or a.children < 1:
        print(f"bench/procs.py: unknown mode {bad[0]!r} (fork, setpriv)" if bad else
              "bench/procs.py: --children must be at least 1", file=sys.stderr)
        return 2
    print(f"{'mode':<9} {'median ms':>10} {'p90 ms':>8} {'parent RSS MB':>14}  started as")
    for mode in modes:
        env = {**os.environ, "TUNE_PROCS_SPAWN": mode}
        out = subprocess.run([sys.executable, __file__, "--child", "--children", str(a.children)],
                             env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"bench/procs.py: the {mode} run failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        r = json.loads(out.stdout)
        how = f"{r['wrapper']} --pdeathsig KILL -- true (vfork)" if r["wrapper"] else "fork + prctl hook"
        if mode == "setpriv" and not r["wrapper"]:
            how += " (no usable setpriv here)"
        print(f"{mode:<9} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f} {r['rss_mb']:>14.0f}  {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
