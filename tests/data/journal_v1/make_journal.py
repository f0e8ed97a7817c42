"""How tests/data/journal_v1/journal.log was written: ONCE, with the campaign code of commit 9eebba0
(the untyped schema before tuner/result.py: user_attrs "result" plus "config", "config_key", "worker",
"baseline", "retry_of"). Kept to document the fixture; it does not run against later code."""
import sys, shutil
from pathlib import Path
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from tuner.campaign import Campaign, Options
from tuner.cli.explore import campaign_baseline
from tuner.evaluate import Outcome
from tuner.records import FailureReason, Measurement
from tuner.study import load_study
from tuner.targets import load_target, make_target

out = Path("out"); shutil.rmtree(out, ignore_errors=True)
spec = load_study(str(Path("study.toml").resolve()))
target = make_target(load_target("local"), out / "builds")

script = iter(["ok", "ok", "compile_error", "infeasible", "ok", "pruned", "ok", "interrupt"])
class Screen:
    def __call__(self, config, campaign):
        return None
    def observe(self, outcome):
        return {"false_prune": False, "audits": 1, "false_prunes": 0, "kappa": 0.5, "min_gain": 0.002} if outcome.config == {"x": 5, "y": 7} else None

def fake(config):
    what = next(script)
    x, y = config["x"], config["y"]
    if what == "ok":
        m = Measurement({"latency_ms": 1.0 + x + 0.5 * y, "binary_bytes": 1000.0 - 10 * x + y, "reps": 3.0},
                        (1.0, 1.1, 1.2), "abc123")
        return Outcome(config, m, {"latency_ms": 1.0 + x + 0.5 * y, "binary_bytes": 1000.0 - 10 * x + y},
                       (), f"bk{x}{y}", {"build_s": 0.2, "run_s": 0.1, "total_s": 0.35})
    if what == "compile_error":
        m = Measurement.failed(FailureReason.COMPILE_ERROR, "cc: error: something\nld: failed")
        return Outcome(config, m, timing={"build_s": 0.1, "total_s": 0.1})
    if what == "infeasible":
        m = Measurement.failed(FailureReason.INFEASIBLE, "violates x + y < 20")
        return Outcome(config, m, violated=("x + y < 20",), timing={"total_s": 0.001})
    if what == "pruned":
        m = Measurement(metrics={}, reason=FailureReason.PRUNED, detail="optimistic prediction adds 0.01% hypervolume")
        return Outcome(config, m, values={"latency_ms": 9.0, "binary_bytes": 990.0}, timing={"surrogate_s": 0.01},
                       extra={"surrogate": {"mean": [9.0, 990.0], "std": [0.1, 1.0], "p_fail": 0.0,
                                            "optimistic": [8.9, 989.0], "gain": 0.0001, "kappa": 0.5,
                                            "min_gain": 0.002, "why": "optimistic prediction adds 0.01% hypervolume",
                                            "surrogate_s": 0.01}, "predicted_failure": False})
    raise KeyboardInterrupt

opts = Options(20, "random", 3, {}, None, out, False)
c = Campaign(spec, target, opts, Screen())
c.evaluator.evaluate = fake
campaign_baseline(c)
# a duplicate: enqueue the baseline's configuration again after it ran
try:
    n = 0
    def on_trial(r):
        global n
        n += 1
        if n == 2:
            c.study.enqueue_trial(dict(c.study.trials[0].params))
    c.run(on_trial)
except KeyboardInterrupt:
    pass
# a second process: recover() requeues the interrupted config as WAITING with retry_of
c2 = Campaign(spec, target, opts, None)
c2.recover()
# a trial left RUNNING by a "dead" worker on another host, with its config attrs written
t = c2.study.ask()
t.set_user_attr("config", {"x": 7, "y": 7}); t.set_user_attr("config_key", "deadbeef")
t.set_user_attr("worker", "otherhost:1234")
c2.study.enqueue_trial({"x": 1, "y": 1})
for ft in c2.study.get_trials():
    print(ft.number, ft.state.name, ft.user_attrs)
