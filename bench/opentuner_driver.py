"""OpenTuner 0.8.8 as a peer of tune in bench/peers.py: runs in its own venv, never imports tuner.

OpenTuner needs SQLAlchemy < 2.0 and Optuna needs >= 2.0, so bench/peers.py runs this file with
the interpreter of a separate venv (`python bench/peers.py --setup-opentuner` creates it) and
talks to it over pipes, one JSON object per line:

    parent -> driver   {"params": [{"name": ..., "choices": [...]}, ...], "seed": S}   (first line)
    driver -> parent   {"config": {name: choice, ...}}       (OpenTuner wants this measured)
    parent -> driver   {"time": seconds-or-null}             (null: failed / wrong output)
    parent -> driver   {"stop": true}                        (budget spent: exit at once)

So OpenTuner searches with its own default (an AUC bandit over differential evolution, greedy
mutations and Nelder-Mead) and the parent builds, runs and verifies every configuration with
tune's own evaluator: both tools are timed and checked the same way. OpenTuner has no seed
option; Python's and numpy's generators are seeded here.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile

import numpy as np


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    random.seed(spec["seed"])
    np.random.seed(spec["seed"])
    out = os.fdopen(os.dup(1), "w")          # OpenTuner logs to stdout/stderr: keep ours clean
    os.dup2(2, 1)

    import opentuner
    from opentuner import ConfigurationManipulator, EnumParameter, MeasurementInterface, Result

    class Peer(MeasurementInterface):
        def manipulator(self) -> ConfigurationManipulator:
            m = ConfigurationManipulator()
            for p in spec["params"]:
                m.add_parameter(EnumParameter(p["name"], p["choices"]))
            return m

        def run(self, desired_result, input, limit):        # noqa: A002 (OpenTuner's signature)
            config = {p["name"]: desired_result.configuration.data[p["name"]] for p in spec["params"]}
            out.write(json.dumps({"config": config}) + "\n")
            out.flush()
            reply = json.loads(sys.stdin.readline() or '{"stop": true}')
            if reply.get("stop"):
                out.close()
                os._exit(0)
            if reply.get("time") is None:
                return Result(state="ERROR", time=float("inf"))
            return Result(time=float(reply["time"]))

    work = tempfile.mkdtemp(prefix="opentuner-")
    os.chdir(work)
    parser = opentuner.default_argparser()
    args = parser.parse_args(["--no-dups", "--parallelism=1", f"--database=sqlite:///{work}/ot.db",
                              "--test-limit=1000000"])
    Peer.main(args)


if __name__ == "__main__":
    main()
