"""The `anchored` sampler: a search for wide spaces (hundreds of compiler flags and params).

Why not TPE or random there: with 384 knobs, a configuration drawn at random (or from a density
model fitted on a few dozen points, which is what multivariate TPE amounts to there) moves every
knob away from its default at once: random -O levels, odd -march/-mtune, all 196 params
perturbed. Most such configurations are slower than plain -O3, and the few knobs that matter
are drowned among the many that do not. Collective Knowledge's answer was an omit probability
(most knobs stay at their defaults); OpenTuner's is greedy mutation of the best configuration
found so far, under a bandit that shares trials among techniques. This sampler combines both:

* **Anchored.** Every proposal starts from a measured configuration (the study's baseline first,
  which the campaign measures as trial 0, else the knobs' defaults) and changes a few knobs.
* **Structural knobs first.** Knobs are ranked in tiers by kind: the -O level, target options
  (-march, -mtune, vector width) and every other non-flag, non-param knob first; on/off flags
  next; `--param`s last, with a share that grows as the campaign goes on.
* **Operators under a bandit.** `mutate` (a parent from the front, a few knobs changed),
  `crossover` (two good parents mixed knob by knob), `sweep` (the best configuration with one
  structural knob set to a value not measured yet: every value of a knob with a few (the -O
  levels, the vector width), the host's own value of a long list (-march=native); -mtune and the
  vector width again under each -march, as they mean something else there; the obvious ones
  (-march=native, the -O levels, target options) are proposed whenever one is owed, before the
  bandit chooses, and measured whatever the surrogate predicts, as the seeds are: left to the
  bandit, a run's losing -O0/-Og/-O1 sweeps starved the operator, and on depthwise-gcc seed 2
  (session 8) sweep got 6 of 76 measured proposals and never reached -march=native with 512-bit
  vectors, that kernel's gain),
  `shake` (a parent with a whole tier, all its flags or all its params, drawn afresh) and
  `random` (every knob drawn, as random search does). An area-under-the-curve bandit (as in
  OpenTuner) gives each operator trials in proportion to how often its recent proposals reached
  the Pareto front, plus an exploration bonus.
* **Why shake and random.** Some gains need several knobs at once and each alone does nothing
  or harm: on digits-gcc, random search's 1.4x came from params and -march together (`tune
  reduce` keeps -march=native, full peeling of the convolution's 3x3 loops and some twenty
  other params of a 1.7x shake), and one-knob steps from -O3 never reached it in 60 s
  (session 6: behind random by 21%). A shake keeps what
  the parent got right in the other tiers; random proposals keep random search's reach. Their
  price: in a minute's search (12-45 measured proposals) the bandit is still exploring and gave
  them 30-50% of the measured proposals on the six peers kernels, where they won only on digits
  (bench/peers.py, session 7: ahead of random on four kernels, a tie on two, behind on none).
* **Cheap.** No model: a proposal costs a pass over the measured trials (well under a
  millisecond per trial at 384 knobs, `bench/overhead.py`), and it never proposes a configuration
  already measured, nor one that breaks the space's declared constraints (tried up to 50 times).

It is multi-objective: parents come from the Pareto front of measured, verified, feasible trials
(the first objective's best most often), and success means reaching the front. The operator of
each trial is stored in its system attributes, so a resumed campaign restores the bandit.
"""

from __future__ import annotations

import math
import random
import weakref
from typing import Any, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from tuner.knobs.flag import FlagKnob
from tuner.knobs.param import ParamKnob
from tuner.pareto import nondominated_mask
from tuner.result import UNSCREENED_ATTR, TrialRecord, TrialStatus
from tuner.space import SearchSpace

OPERATORS = ("sweep", "mutate", "crossover", "shake", "random")   # in this order before the bandit has data
SWEEP_ALL_UP_TO = 8     # a structural knob with at most this many values is swept through all of them
OP_ATTR = "tune:anchored_op"
TIER_STRUCTURAL, TIER_FLAG, TIER_PARAM = 0, 1, 2
OBVIOUS_RANK = 2        # sweeps up to this rank (-march=native, -O levels, target options) skip the surrogate
MAX_TRIES = 50          # proposals drawn before giving up on avoiding a measured/infeasible one
SWEEP_NEAR = 0.05       # a parent this close to the best (or the baseline) gets its target options swept


def under_march(knob: Any) -> bool:
    """A target option whose meaning depends on -march (-mtune, -mprefer-vector-width): 512-bit
    vectors do nothing without an -march that has them."""
    tags = set(knob.tags)
    return "target" in tags and "march" not in tags


def tier(knob: Any) -> int:
    """Structural knobs (the -O level, -march, tiles, ...) first, flags next, params last."""
    if isinstance(knob, ParamKnob):
        return TIER_PARAM
    if isinstance(knob, FlagKnob):
        return TIER_FLAG
    return TIER_STRUCTURAL


class AnchoredSampler(optuna.samplers.BaseSampler):
    """See the module docstring. `space` gives the knobs, their kinds, conditions and constraints."""

    def __init__(self, space: SearchSpace, seed: int | None = None, *, window: int = 60,
                 exploration: float = 0.5, param_ramp: int = 40,
                 operators: Sequence[str] = OPERATORS) -> None:
        unknown = set(operators) - set(OPERATORS)
        if unknown or "mutate" not in operators:
            raise ValueError(f"operators must include 'mutate' and be among {OPERATORS}: {sorted(operators)}")
        self.space = space
        self.operators = tuple(op for op in OPERATORS if op in operators)
        self._rng = random.Random(seed)
        self.window = window                  # the bandit looks at this many recent proposals
        self.exploration = exploration        # the bandit's exploration constant
        self.param_ramp = param_ramp          # measured trials over which params' share grows
        self._dists = {k.name: space.distribution(k) for k in space.knobs.values()}
        self._tiers: dict[int, list[str]] = {TIER_STRUCTURAL: [], TIER_FLAG: [], TIER_PARAM: []}
        for k in space.knobs.values():
            self._tiers[tier(k)].append(k.name)
        structural = [space.knobs[n] for n in self._tiers[TIER_STRUCTURAL]]
        self._marches = [k.name for k in structural if "march" in k.tags]
        self._under_march = [k.name for k in structural if under_march(k)] if self._marches else []
        self._planned: dict[int, dict[str, Any]] = {}     # trial number -> its params (conditional knobs)
        self._swept_rank: int | None = None                # the rank of the last draw's sweep, if it swept

    def reseed_rng(self) -> None:
        self._rng.seed()

    # --- Optuna's sampler protocol ------------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._dists)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if trial.params:          # created with its configuration (the baseline, a retry, a seed)
            return {}
        history = _digests_of(study, self.space).history(study)
        op, params = self._propose(self._choose_operator(history), history)
        study._storage.set_trial_system_attr(trial._trial_id, OP_ATTR, op)
        if op == "sweep" and self._swept_rank is not None and self._swept_rank <= OBVIOUS_RANK:
            study._storage.set_trial_system_attr(trial._trial_id, UNSCREENED_ATTR, True)
        self._planned[trial.number] = params
        if len(self._planned) > 64:
            self._planned.pop(min(self._planned))
        return params

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        planned = self._planned.get(trial.number, {})
        if param_name in planned and param_distribution._contains(param_distribution.to_internal_repr(planned[param_name])):
            return planned[param_name]
        return self._random_value(param_distribution)

    # --- the bandit -----------------------------------------------------------------------------
    def _choose_operator(self, history: "_History") -> str:
        recent = history.outcomes[-self.window:]
        if len(history.parents) == 0:
            return "mutate"
        if any(rank <= OBVIOUS_RANK for rank, _, _, _ in self._sweep_todo(history)):
            return "sweep"            # the obvious points are owed, as the seeds are: not the bandit's to ration
        total = len(recent) + 1
        best, best_score = "mutate", -math.inf
        for op in self.operators:
            wins = [w for o, w in recent if o == op]
            if op == "crossover" and len(history.parents) < 2:
                continue
            if op == "sweep" and not self._sweep_todo(history):
                continue
            if not wins:
                return op             # every operator is tried once before the bandit decides
            # area under the curve of the operator's recent successes, recent ones weighing more
            auc = sum((i + 1) * w for i, w in enumerate(wins)) / (len(wins) * (len(wins) + 1) / 2)
            score = auc + self.exploration * math.sqrt(2 * math.log(total) / len(wins))
            score += self._rng.random() * 1e-9          # ties broken at random
            if score > best_score:
                best, best_score = op, score
        return best

    # --- proposals --------------------------------------------------------------------------------
    def _propose(self, op: str, history: "_History") -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        for _ in range(MAX_TRIES):
            params = self._draw(op, history)
            config = self._config(params)
            if config is None:
                continue
            if history.measured_key(params) or self.space.violations(config):
                op = "mutate"                     # an exhausted sweep or crossover: fall back
                continue
            return op, params
        return op, params                         # the campaign records a duplicate/infeasible

    def _draw(self, op: str, history: "_History") -> dict[str, Any]:
        self._swept_rank = None
        if not history.parents:
            return self._mutate(dict(history.anchor), history, changes=1)
        if op == "sweep":
            swept = self._sweep(history)
            if swept is not None:
                return swept
        if op == "random":
            return {}                                  # _config draws every knob
        if op == "shake":
            return self._shake(self._select_parent(history))
        if op == "crossover" and len(history.parents) >= 2:
            a, b = self._rng.sample(history.good(5), 2) if len(history.good(5)) >= 2 else history.parents[:2]
            child = {k: (a.params if self._rng.random() < 0.5 else b.params).get(k, a.params.get(k))
                     for k in sorted(set(a.params) | set(b.params))}  # sorted: the same draws whatever the hash seed
            child = {k: v for k, v in child.items() if v is not None}
            return self._mutate(child, history, changes=self._rng.random() < 0.5)
        parent = self._select_parent(history)
        return self._mutate(dict(parent.params), history, changes=1 + _poisson(self._rng, 0.7))

    def _select_parent(self, history: "_History") -> "_Digest":
        r = self._rng.random()
        if r < 0.5:
            return history.parents[0]                        # best on the first objective
        if r < 0.8:
            return self._rng.choice(history.front)
        return self._rng.choice(history.good(5))

    def _tier_weights(self, history: "_History") -> list[float]:
        ramp = min(1.0, len(history.parents) / max(1, self.param_ramp))
        w = [0.45, 0.4, 0.05 + 0.25 * ramp]
        return [wi if self._tiers[t] else 0.0 for t, wi in enumerate(w)]

    def _mutate(self, params: dict[str, Any], history: "_History", changes: int) -> dict[str, Any]:
        weights = self._tier_weights(history)
        if sum(weights) == 0:
            return params
        for _ in range(int(changes)):
            t = self._rng.choices(range(3), weights)[0]
            name = self._rng.choice(self._tiers[t])
            params[name] = self._new_value(self._dists[name], params.get(name))
        return params

    def _shake(self, parent: "_Digest") -> dict[str, Any]:
        """The parent with one whole tier (all flags, or all params) drawn afresh: the moves
        where knobs only pay off together (several params with -march at once) and which
        one-knob steps never reach."""
        tiers = [t for t in (TIER_FLAG, TIER_PARAM) if self._tiers[t]] or [TIER_STRUCTURAL]
        names = self._tiers[self._rng.choice(tiers)]
        params = dict(parent.params)
        for name in names:
            params[name] = self._random_value(self._dists[name])
        return params

    def _sweep(self, history: "_History") -> dict[str, Any] | None:
        """A parent with one structural knob at a value not measured yet: the host's own value
        (-march=native) first, then the -O levels, target options, the rest."""
        todo = self._sweep_todo(history)
        if not todo:
            return None
        first = self._swept_rank = min(rank for rank, _, _, _ in todo)
        candidates = sorted((t for t in todo if t[0] == first), key=lambda t: (t[2], str(t[3]), t[1].number))
        _, parent, name, value = self._rng.choice(candidates)
        return {**parent.params, name: value}

    def _sweep_todo(self, history: "_History") -> list[tuple[int, "_Digest", str, Any]]:
        """What a sweep may propose: (rank, parent, knob, value). From the best: each structural
        knob's values no trial has had, except that -mtune and the vector width count as
        unmeasured under each -march of their own (their meaning depends on it). From the
        parents with an -march of their own within SWEEP_NEAR of the best (or of the baseline
        if that is slower): those target options only. Why: on an AVX-512 host, -O3
        -march=native alone measured 3% slower than -O3 on depthwise-gcc and 512-bit vectors
        under it 5% faster (GCC's tuning prefers 256), a pair that no one-knob step from the
        best reaches. Cached per history (one ask)."""
        if history.sweep_todo is not None:
            return history.sweep_todo
        todo: list[tuple[int, _Digest, str, Any]] = []
        if history.parents:
            best = history.parents[0]
            found = history.unswept(self._tiers[TIER_STRUCTURAL], self._dists, best, self._marches, self._under_march)
            todo += [(self._sweep_rank(n, v), best, n, v) for n, values in found.items() for v in values]
            if self._under_march:
                sign = history.sign[0]
                bar = max(p.values[0] * sign for p in history.parents if p is best or p.baseline)
                limit = bar + SWEEP_NEAR * abs(bar)
                contexts = {best.context(self._marches)}
                for parent in history.parents[1:]:
                    if parent.values[0] * sign > limit:
                        break                          # parents are sorted by the first objective
                    context = parent.context(self._marches)
                    if context in contexts:
                        continue
                    contexts.add(context)
                    found = history.unswept(self._under_march, self._dists, parent, self._marches, self._under_march)
                    todo += [(self._sweep_rank(n, v), parent, n, v) for n, values in found.items() for v in values]
        # only what can be proposed: an owed sweep that breaks a declared constraint (or is in
        # flight under --jobs) would otherwise be forced at every ask and fall back to mutate
        history.sweep_todo = [t for t in todo if self._proposable({**t[1].params, t[2]: t[3]}, history)]
        return history.sweep_todo

    def _proposable(self, params: dict[str, Any], history: "_History") -> bool:
        """Not measured nor in flight, and inside the space's declared constraints."""
        if history.measured_key(params):
            return False
        if not self.space.constraints:
            return True
        config = self._config(dict(params))
        return config is not None and not self.space.violations(config)

    def _sweep_rank(self, name: str, value: Any) -> int:
        tags = set(self.space.knobs[name].tags)
        if "native" in str(value):
            return 0
        if "olevel" in tags or name == "opt_level":
            return 1
        if tags & {"target", "march", "mtune"}:
            return 2
        return 3

    def _new_value(self, dist: BaseDistribution, current: Any) -> Any:
        if isinstance(dist, CategoricalDistribution):
            others = [c for c in dist.choices if c != current] or list(dist.choices)
            return self._rng.choice(others)
        assert isinstance(dist, IntDistribution)
        if current is None or self._rng.random() < 0.25:
            return self._random_value(dist)
        n = (dist.high - dist.low) // dist.step + 1
        if n <= 16:                                          # a short range: a neighbour
            i = (int(current) - dist.low) // dist.step + self._rng.choice((-2, -1, 1, 2))
            return dist.low + min(max(i, 0), n - 1) * dist.step
        # a wide range (params): scale by up to 4x either way, at least one step
        scaled = int(round(max(int(current), 1) * 2.0 ** self._rng.uniform(-2, 2)))
        if scaled == current:
            scaled += dist.step * self._rng.choice((-1, 1))
        scaled = dist.low + round((scaled - dist.low) / dist.step) * dist.step
        return min(max(scaled, dist.low), dist.high)

    def _random_value(self, dist: BaseDistribution) -> Any:
        if isinstance(dist, CategoricalDistribution):
            return self._rng.choice(dist.choices)
        assert isinstance(dist, IntDistribution)
        if dist.log:
            v = int(round(math.exp(self._rng.uniform(math.log(dist.low), math.log(dist.high)))))
            return min(max(v, dist.low), dist.high)
        return self._rng.randrange(dist.low, dist.high + 1, dist.step)

    def _config(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """Knob values of the active knobs (a condition's knob missing: fill it at random)."""
        config: dict[str, Any] = {}
        for knob in self.space.knobs.values():
            if not self.space.active(knob, config):
                continue
            if knob.name not in params:
                params[knob.name] = self._random_value(self._dists[knob.name])
            try:
                config[knob.name] = knob.decode(params[knob.name])
            except (IndexError, ValueError, TypeError):
                return None
        return config


class _History:
    """What the sampler learns from the study: measured verified trials, the front, outcomes.

    Finished trials never change, so each is digested once (`_Digest`) and kept by number: an
    ask costs a pass over small records, not over every trial's 384 params."""

    def __init__(self, directions: Sequence[str], digests: list["_Digest"], anchor: dict[str, Any],
                 keys: set[tuple] | None = None) -> None:
        self.sign = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in directions])
        # `keys`: the digests' keys, kept by _Digests (a copy of a set keeps the keys' hashes,
        # where rebuilding it would hash every trial's 384 parameters again at every ask)
        self.measured = set(keys) if keys is not None else {d.key for d in digests if d.key is not None}
        self.tried = digests
        self.anchor = anchor
        self.outcomes: list[tuple[str, float]] = []        # (operator, 1 if it reached the front)
        self.sweep_todo: list | None = None                  # AnchoredSampler._sweep_todo's, once per ask
        good: list[_Digest] = []
        front_values = np.empty((0, len(directions)))
        for d in digests:
            win = False
            if d.values is not None:
                y = d.values * self.sign
                win = not bool(np.any(np.all(front_values <= y, axis=1))) if len(front_values) else True
                if win:
                    front_values = np.vstack([front_values[~np.all(y <= front_values, axis=1)], y])
                good.append(d)
            if d.op:
                self.outcomes.append((d.op, float(win)))
        good.sort(key=lambda d: d.values[0] * self.sign[0])     # the first objective's best first
        self.parents = good
        if good:
            Y = np.array([d.values for d in good], dtype=float) * self.sign
            mask = nondominated_mask(Y, ["minimize"] * Y.shape[1])
            self.front = [d for d, m in zip(good, mask) if m]
        else:
            self.front = []

    def good(self, k: int) -> list["_Digest"]:
        return self.parents[:k]

    def measured_key(self, params: dict[str, Any]) -> bool:
        return _key(params) in self.measured

    def unswept(self, names: list[str], dists: dict[str, BaseDistribution], parent: "_Digest",
                marches: Sequence[str], under_march: Sequence[str]) -> dict[str, list]:
        """Knobs `names` with values that no tried trial has had, and those values; for a knob
        in `under_march`, no tried trial with the parent's -march (`marches`' values)."""
        if not self.parents:
            return {}
        seen: dict[str, set] = {n: set() for n in names}
        context = parent.context(marches)
        for d in self.tried:          # failed ones too: a value that crashed is not swept again
            same = d.context(marches) == context
            for n in names:
                if n in d.params and (same or n not in under_march):
                    seen[n].add(d.params[n])
        out = {}
        for n in names:
            dist = dists[n]
            values = (list(dist.choices) if isinstance(dist, CategoricalDistribution)
                      else list(range(dist.low, dist.high + 1, dist.step)))
            if len(values) > SWEEP_ALL_UP_TO:     # a long list (-march): only the host's own value
                values = [v for v in values if "native" in str(v)]
            todo = [v for v in values if v not in seen[n]]
            if todo:
                out[n] = todo
        return out


class _Digest:
    """One finished trial as the sampler needs it."""

    __slots__ = ("number", "params", "key", "values", "op", "baseline")

    def __init__(self, t: FrozenTrial) -> None:
        rec = TrialRecord.from_trial(t, [])
        self.number = t.number
        self.params = dict(t.params)
        self.key = _key(t.params) if t.params else None
        self.baseline = rec.baseline
        status = rec.status
        ok = (status == TrialStatus.COMPLETE and t.state == TrialState.COMPLETE and t.values is not None
              and all(v <= 0 for v in t.constraints.values()))
        self.values = np.asarray(t.values, dtype=float) if ok else None
        op = t.system_attrs.get(OP_ATTR)
        # a repeated configuration or a pruned proposal says nothing about its operator, nor does
        # an obvious sweep (proposed whatever the bandit thinks, UNSCREENED_ATTR): no outcome. A
        # configuration that built a program measured before (program_key) cost its operator a
        # build for nothing new: an outcome, a loss
        owed = bool(t.system_attrs.get(UNSCREENED_ATTR))
        silent = status == TrialStatus.PRUNED or (status == TrialStatus.DUPLICATE and not rec.program_key)
        self.op = op if op and not owed and not silent else None

    def context(self, marches: Sequence[str]) -> tuple:
        return tuple(self.params.get(m) for m in marches)


class _Digests:
    """The digests of a study's finished trials, kept across asks."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.by_number: dict[int, _Digest] = {}
        self.keys: set[tuple] = set()        # the digests' keys
        self.anchor: dict[str, Any] | None = None

    def history(self, study: optuna.Study) -> _History:
        for t in study.get_trials(deepcopy=False):
            if t.number in self.by_number:
                continue
            if not t.state.is_finished():       # the baseline may still be running elsewhere
                if self.anchor is None and t.params and TrialRecord.from_trial(t, []).baseline:
                    self.anchor = dict(t.params)
                continue
            d = self.by_number[t.number] = _Digest(t)
            if d.key is not None:
                self.keys.add(d.key)
            if self.anchor is None and d.baseline and d.params:
                self.anchor = dict(d.params)
        anchor = self.anchor or {k.name: k.encode(k.default) for k in self.space.knobs.values()}
        digests = [self.by_number[n] for n in sorted(self.by_number)]
        history = _History(study.directions, digests, anchor, self.keys)
        # trials in flight (other workers, --jobs) are not proposed again either
        history.measured |= {_key(t.params) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                             if t.params}
        return history


_DIGESTS: dict[tuple[int, int], tuple[weakref.ref, "_Digests"]] = {}


def _digests_of(study: optuna.Study, space: SearchSpace) -> _Digests:
    """The digests of a study, shared by every sampler object on it: a campaign may make a fresh
    sampler per trial (a seed per trial number), and finished trials need digesting only once."""
    key = (id(study._storage), study._study_id)
    found = _DIGESTS.get(key)
    if found is None or found[0]() is not study._storage or found[1].space is not space:
        found = (weakref.ref(study._storage), _Digests(space))
        _DIGESTS[key] = found
    return found[1]


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, rng.random(), math.exp(-lam)
    while p > limit:
        k += 1
        p *= rng.random()
    return k


__all__ = ["AnchoredSampler", "OPERATORS", "tier", "under_march"]
