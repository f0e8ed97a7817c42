"""The README's quick-start transcript: `tune explore conv2d-flags --trials 40 --seed 0`, killed
with SIGKILL (the whole process group, as `kill -9` of a terminal job) once 15 trials have
finished, then the same command again. Prints both runs' wall times; the second run's output is
what the README shows.

    python bench/quickstart.py --out /tmp/qs     # a fresh, empty folder
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="an empty folder to run in")
    ap.add_argument("--study", default="conv2d-flags")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--kill-after", type=int, default=15, help="finished trials before the kill")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if any(args.out.iterdir()):
        print(f"{args.out}: not empty", file=sys.stderr)
        return 2
    tune = shutil.which("tune") or str(Path(sys.executable).with_name("tune"))
    argv = [tune, "explore", args.study, "--trials", str(args.trials), "--seed", "0"]
    t0 = time.time()
    first = subprocess.Popen(argv, cwd=args.out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    with open(args.out / "first.txt", "w") as log:
        for line in first.stdout:
            log.write(line)
            m = re.match(rf"\[(\d+)/{args.trials}\]", line)
            if m and int(m.group(1)) >= args.kill_after:
                os.killpg(first.pid, signal.SIGKILL)
                break
    first.wait()
    print(f"first run killed after {time.time() - t0:.1f}s")
    t1 = time.time()
    second = subprocess.run(argv, cwd=args.out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (args.out / "second.txt").write_text(second.stdout)
    print(f"second run {time.time() - t1:.1f}s, exit {second.returncode}; output in {args.out / 'second.txt'}")
    return second.returncode


if __name__ == "__main__":
    sys.exit(main())
