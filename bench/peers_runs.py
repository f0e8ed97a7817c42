"""The search runs of bench/peers.py: one tool on one kernel and seed, until it has done `evals`
evaluations AND spent `wall` seconds, with every evaluation's time stamp (so bench/peers_answers.py
can read the answer at N evaluations or at T seconds). tune and random run `tune explore`;
OpenTuner 0.8.8 runs in its own venv (bench/opentuner_driver.py) and proposes configurations
that this process builds, runs and verifies with tune's evaluator, so all tools are measured and
checked the same way."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tuner.evaluate import Evaluator
from tuner.knobs.categorical import CategoricalKnob
from tuner.knobs.flag import FlagKnob
from tuner.measure.summary import confirmation
from tuner.measure.topup import PREFIX as TOPUP
from tuner.result import TrialRecord, TrialStatus
from tuner.study import StudySpec
from tuner.studystore import open_study
from tuner.targets import load_target, make_target

ROOT = Path(__file__).resolve().parents[1]
OT_VENV = ROOT / ".venv-opentuner"
OT_PYTHON = OT_VENV / "bin" / "python"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- OpenTuner's venv ---------------------------------------------------------------------
def setup_opentuner() -> None:
    if not OT_PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(OT_VENV)], check=True)
    subprocess.run([str(OT_PYTHON), "-m", "pip", "install", "-q", "opentuner==0.8.8", "sqlalchemy<2.0"], check=True)
    subprocess.run([str(OT_PYTHON), "-c", "import opentuner"], check=True)
    say(f"OpenTuner 0.8.8 is ready in {OT_VENV}")


# --- search runs ----------------------------------------------------------------------------
def run_path(out: Path, kernel: str, tool: str, seed: int) -> Path:
    return out / kernel / f"run-{tool}-s{seed}.json"


def tune_run(spec: StudySpec, tool: str, args: list[str], seed: int, evals: int, wall: float, out: Path) -> dict:
    """`tune explore` until `evals` trials have finished, then on (SIGINT) until `wall` seconds."""
    results = out / spec.name / f"{tool}-s{seed}"
    if results.exists():
        subprocess.run(["rm", "-rf", str(results)], check=True)
    base = [sys.executable, "-m", "tuner", "explore", spec.name, "--seed", str(seed), "--results", str(results),
            "--no-export", "--no-progress", *args]
    t0 = time.time()
    proc = subprocess.run([*base, "--trials", str(evals)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tune explore failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    stderr = proc.stderr
    first_end = time.time() - t0
    left = wall - first_end
    if left > 0:
        # SIGINT stops it as Ctrl-C would (a background shell starts us with SIGINT ignored, and
        # Python keeps an inherited "ignore": reset it for the child)
        p = subprocess.Popen([*base, "--trials", "100000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            p.wait(timeout=left)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
        stderr += p.communicate(timeout=600)[1]
    wall_s = time.time() - t0
    study = open_study(spec, results / spec.name, None, create=False)
    start = dt.datetime.fromtimestamp(t0)
    evals_out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        r = TrialRecord.from_trial(t, spec.objectives)
        if not r.finished or t.datetime_complete is None:
            continue
        conf = confirmation(r)           # tune's own paired figure, what its answer is chosen by
        evals_out.append({"t": (t.datetime_complete - start).total_seconds(), "config": r.config,
                          "latency_ms": r.values.get("latency_ms") if r.status == TrialStatus.COMPLETE else None,
                          "status": str(r.status.value), "trial": r.number, "baseline": r.baseline,
                          "confirm_tried": "confirmation" in (r.measurement or {}),
                          "confirmed": dict(conf["speedup"]) if conf else None})
    topups = []                          # figures explore topped up at its end (tuner.measure.topup)
    for key, doc in study.user_attrs.items():
        rest = key[len(TOPUP):] if key.startswith(TOPUP) else ""
        if rest.isdigit() and isinstance(doc, dict) and "speedup" in doc and "at" in doc:
            topups.append({"trial": int(rest), "t": doc["at"] - t0, "speedup": dict(doc["speedup"])})
    overhead = [ln for ln in stderr.splitlines() if "engine overhead" in ln]
    status = subprocess.run([sys.executable, "-m", "tuner", "status", spec.name, "--results", str(results),
                             "--format", "json"], capture_output=True, text=True)
    surrogate = json.loads(status.stdout).get("surrogate") if status.returncode == 0 else None
    return {"tool": tool, "args": args, "seed": seed, "evals": evals_out, "wall_s": wall_s,
            "surrogate": surrogate, "answer_rule": "confirmed", "first_end": first_end, "topups": topups,
            "notes": overhead + [ln for ln in stderr.splitlines() if ln.startswith("sampler:")][:1]}


def opentuner_params(spec: StudySpec) -> list[dict]:
    """The -O level and the on/off/default flags (and multi-valued -f options) of the space."""
    params = []
    for k in spec.space.knobs.values():
        if k.name == "opt_level" or isinstance(k, FlagKnob) or (isinstance(k, CategoricalKnob) and k.name.startswith("f_")):
            choices = list(k.states if isinstance(k, FlagKnob) else k.choices)
            params.append({"name": k.name, "choices": choices})
    return params


def opentuner_run(spec: StudySpec, seed: int, evals: int, wall: float, out: Path) -> dict:
    if not OT_PYTHON.exists():
        raise SystemExit(f"OpenTuner is not installed: run `python bench/peers.py --setup-opentuner` ({OT_VENV})")
    results = out / spec.name / f"opentuner-s{seed}"
    target = make_target(load_target(spec.target), results / "builds")
    evaluator = Evaluator(spec, target, results)
    params = opentuner_params(spec)
    proc = subprocess.Popen([str(OT_PYTHON), str(ROOT / "bench" / "opentuner_driver.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    t0 = time.time()
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps({"params": params, "seed": seed}) + "\n")
    proc.stdin.flush()
    evals_out: list[dict] = []
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        chosen = json.loads(line)["config"]
        config = spec.space.complete(chosen)
        outcome = evaluator.evaluate(config)
        latency = outcome.values["latency_ms"] if outcome.ok else None
        evals_out.append({"t": time.time() - t0, "config": config, "latency_ms": latency,
                          "status": "complete" if outcome.ok else str(outcome.reason)})
        done = len(evals_out) >= evals and time.time() - t0 >= wall
        proc.stdin.write(json.dumps({"stop": True} if done else {"time": None if latency is None else latency / 1e3}) + "\n")
        proc.stdin.flush()
        if done:
            break
    proc.wait(timeout=60)
    target.cleanup()
    return {"tool": "opentuner", "args": [], "seed": seed, "evals": evals_out, "wall_s": time.time() - t0,
            "notes": [f"{len(params)} OpenTuner parameters"]}
