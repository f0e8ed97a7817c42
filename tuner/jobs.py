"""`tune explore --jobs N`: N candidates in flight, builds overlapping measurements.

A measured trial on this machine is a build (a compiler on the build cores) and then a run (on
the run core). One at a time, the run core idles while the next candidate compiles. With
`--jobs N` the campaign keeps N trials in flight, each in its own thread: their builds proceed
together, on the build cores, while one run is measured. Runs timed on this machine pass
through a gate one at a time, so no two runs are ever measured at once on one core; on a target
whose result does not depend on what else runs (simulated cycles: `parallel_runs` in its
[measure] table; counted instructions) or whose runs happen elsewhere (a remote device), N runs
go at once.

The main thread does everything that touches the study (ask, sample, tell) and the sampler
proposes the next candidates without the results of the ones in flight, as with several workers:
Optuna's TPE treats running trials as "liars", and deduplication sees trials in flight. Every
finished trial is told, and durable, as soon as it is done, whatever the order; Ctrl-C or a
machine fault marks every trial in flight interrupted (retried on the next run).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, Callable

import optuna

from tuner.campaign import DUPLICATE, SKIPPED, Campaign, Resamples
from tuner.errors import MachineFault
from tuner.evaluate import Outcome
from tuner.outcomes import duplicate, interrupted, judge, resampled
from tuner.result import TrialRecord
from tuner.space import Config, config_key

def concurrent_runs(campaign: Campaign, jobs: int) -> int:
    """How many runs may be measured at once: the target's `parallel_runs`, else one for timing on
    this machine (wall, or timed by the program itself), `jobs` for counted instructions or a
    remote device."""
    target = campaign.target
    measure = target.spec.measure
    cap = int(getattr(measure, "parallel_runs", 0) or 0)
    if cap > 0:
        return min(cap, jobs)
    if getattr(measure, "method", "wall") == "instructions" or not getattr(target, "runs_here", True):
        return jobs
    return 1


class RunGate:
    """At most `n` runs at once: wraps the target's `run` (a launch series) and the launches its
    `launcher` makes (one process each: the paired ABBA launches of a confirmation). Re-entrant
    in a thread: `run` launches through `launcher`, and a series holds its place to the end."""

    def __init__(self, target: Any, n: int) -> None:
        self.sem = threading.BoundedSemaphore(n)
        self.n = n
        self.active = 0
        self.peak = 0               # the most runs seen at once (tests and the README's figures)
        self._lock = threading.Lock()
        self._mine = threading.local()
        run, launcher = target.run, target.launcher
        target.run = lambda *a, **k: self.held(run, *a, **k)
        target.launcher = lambda *a, **k: self._gated(launcher(*a, **k))

    def _gated(self, once: Callable[[int], Any]) -> Callable[[int], Any]:
        return lambda i: self.held(once, i)

    def held(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        depth = getattr(self._mine, "depth", 0)
        if depth == 0:
            self.sem.acquire()
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
        self._mine.depth = depth + 1
        try:
            return f(*args, **kwargs)
        finally:
            self._mine.depth = depth
            if depth == 0:
                with self._lock:
                    self.active -= 1
                self.sem.release()


def _share_history(history: Any) -> None:
    """The campaign's History is told in the main thread while a measuring thread reads it (the
    confirmation reads the front, `history.complete()`): one lock between the two."""
    lock = threading.RLock()
    add, complete = history.add, history.complete

    def add_locked(*args: Any, **kwargs: Any) -> None:
        with lock:
            add(*args, **kwargs)

    def complete_locked() -> list[TrialRecord]:
        with lock:
            return complete()
    history.add, history.complete = add_locked, complete_locked


@dataclass
class _InFlight:
    trial: optuna.Trial
    base: TrialRecord
    config: Config
    t0: float
    prep_s: float = 0.0     # ask to submit: this trial's share of the engine's time
    eval_s: float = 0.0     # in its thread: build and run (waiting at the gate included)


def run(campaign: Campaign, jobs: int) -> int:
    """Like `Campaign.run`, with up to `jobs` trials in flight. Returns trials finished."""
    if jobs <= 1:
        return campaign.run()
    gate = RunGate(campaign.target, concurrent_runs(campaign, jobs))
    campaign.run_gate = gate          # for callers that report the peak
    _serialise_references(getattr(campaign.evaluator, "inner", campaign.evaluator))   # under Confirming
    _share_history(campaign.history)
    budget = campaign.options.trials
    sampler_for = campaign._sampler_for()
    flying: dict[Future, _InFlight] = {}
    resamples = Resamples()        # the same stop rule and message as the one loop
    idle: Counter[str] = Counter()        # proposals in a row not measured (Campaign._exhausted)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tune-job")
    try:
        while True:
            look = campaign.store.look(campaign.history)
            if look.dead:
                campaign.store.recover(look.dead)
                continue
            mine = {f.trial.number for f in flying.values()}
            others = [r for r in look.running if r.number not in mine]
            n = campaign.history.finished
            room = budget - n - len(others) - len(flying)
            started = False
            if room > 0 and len(flying) < jobs:
                t0 = time.perf_counter()
                proposal = campaign.proposals.next(campaign.history)
                trial, base, fixed = campaign._ask(proposal, sampler_for)
                near_end = room <= len({r.worker for r in others}) + 2
                if (near_end or fixed) and not campaign._claim(trial, base, fixed):
                    if near_end and not flying:
                        campaign.log("stopping: other workers took the last trials")
                        break
                    continue
                config = campaign.spec.space.sample(trial, campaign.options.pins)
                key = config_key(config)
                violated = campaign.spec.space.violations(config)
                if violated:
                    campaign._tell(trial, resampled(replace(base, config=config, config_key=key), violated,
                                                    campaign.history), t0)
                    resamples.add(violated)
                    continue
                resamples.clear()
                base, stored_at_ask = campaign._record(trial, base, fixed, config, key)
                prior = campaign._prior(trial, key, stored_at_ask) or next(
                    (f.base for f in flying.values() if f.base.config_key == key), None)
                if prior is not None:
                    campaign._tell(trial, duplicate(base, prior, campaign.history), t0)
                    idle[DUPLICATE] += 1
                    if campaign._exhausted(idle):
                        break
                    continue
                screened = campaign._screened(trial, config, base)
                if screened is not None:             # skipped by the surrogate: not counted
                    _finish(campaign, _InFlight(trial, base, config, t0), screened)
                    idle[SKIPPED] += 1
                    if campaign._exhausted(idle):
                        break
                    continue
                idle.clear()
                job = _InFlight(trial, base, config, t0, prep_s=time.perf_counter() - t0)
                flying[pool.submit(_evaluate, campaign, job)] = job
                started = True
            if not flying:
                if campaign.history.finished >= budget:
                    break
                if not started and room <= 0:      # other workers measure the last trials
                    time.sleep(1.0)
                continue
            if started and len(flying) < jobs and room > 1:
                continue                           # fill the pipeline before waiting
            done, _ = wait(list(flying), timeout=None, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()        # a machine fault: the except below tells it
                _finish(campaign, flying.pop(future), outcome)
                if outcome.same_as is not None:  # built a program measured before: not counted
                    idle[DUPLICATE] += 1
            if campaign._exhausted(idle):
                break
        for future in list(flying):            # a stop with trials in flight: they finish and are told
            _finish(campaign, flying[future], future.result())
            flying.pop(future)
    except BaseException as e:
        why = ("stopped by the user" if isinstance(e, KeyboardInterrupt) else f"machine fault: {e}"
               if isinstance(e, MachineFault) else f"stopped: {type(e).__name__}: {e}")
        for future, job in flying.items():      # every trial in flight: interrupted, retried later
            future.cancel()
            campaign.store.tell(job.trial, interrupted(job.base, why).record, None)
        # runs already started finish in their threads (a build or a run at most); their results
        # are dropped: the trials are told
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return campaign.history.finished


def _serialise_references(evaluator: Any) -> None:
    """The reference build of a configuration's semantics is made once and remembered in one
    file: two threads must not make it at once."""
    reference = getattr(evaluator, "reference", None)
    if reference is None:
        return
    lock = threading.Lock()

    def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return reference(*args, **kwargs)
    evaluator.reference = one_at_a_time


def _evaluate(campaign: Campaign, job: _InFlight) -> Outcome:
    t0 = time.perf_counter()
    try:
        with campaign.store.beat(job.trial, job.base):
            return campaign.evaluator.evaluate(job.config)
    finally:
        job.eval_s = time.perf_counter() - t0


def _finish(campaign: Campaign, job: _InFlight, outcome: Outcome) -> None:
    if outcome.same_as is not None:
        campaign._same_program(job.trial, job.base, outcome, job.t0)
        return
    audit = campaign.screen.observe(outcome) if campaign.screen else None
    # the trial's time in the loop: its own preparation, evaluation and telling, not the time it
    # waited for the others in flight (what the engine-overhead figure should see)
    t0 = time.perf_counter() - job.prep_s - job.eval_s
    rec = campaign._tell(job.trial, judge(outcome, replace(job.base, audit=audit), campaign.history), t0)
    if rec is not None and rec.measured:
        campaign._check_systematic(rec)


__all__ = ["RunGate", "concurrent_runs", "run"]
