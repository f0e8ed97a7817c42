"""A search space: ordered knobs, conditions between them, and constraints.

Sampling is define-by-run (Optuna's `suggest_*`), so a conditional knob is only asked for
when its condition holds, and constraints are checked before anything is built.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import optuna

from tuner.errors import BadInput
from tuner.expr import Expr, ExprError
from tuner.knobs import Knob
from tuner.knobs import dist as D
from tuner.records import Rendering
from tuner.tomlfile import check_keys, get

Config = dict[str, Any]


@dataclass(frozen=True)
class Constraint:
    expr: Expr
    name: str

    def violated(self, env: Mapping[str, Any]) -> bool:
        return not bool(self.expr(env))


def config_key(config: Mapping[str, Any]) -> str:
    """A stable identity of a configuration, for deduplication across runs."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SearchSpace:
    def __init__(self, knobs: list[Knob], constraints: list[Constraint], file: Path | str,
                 constants: Mapping[str, Any] | None = None) -> None:
        self.knobs = {k.name: k for k in knobs}
        self.constraints = constraints
        self.file = file
        self.constants = dict(constants or {})
        self._dists: dict[str, tuple[Knob, Any]] = {}     # knob name -> (knob, its distribution)
        self._check_names()

    def _check_names(self) -> None:
        seen: set[str] = set(self.constants)
        for knob in self.knobs.values():
            if knob.when is not None:
                unknown = knob.when.names - seen
                if unknown:
                    raise BadInput(f"condition uses '{sorted(unknown)[0]}', which is not an earlier knob",
                                   knob.file, f"knobs.{knob.name}.when")
            seen.add(knob.name)
        for c in self.constraints:
            unknown = c.expr.names - seen
            if unknown:
                raise BadInput(f"constraint '{c.name}' uses unknown knob '{sorted(unknown)[0]}'",
                               self.file, "constraints")

    def __len__(self) -> int:
        return len(self.knobs)

    # --- the configurations ---------------------------------------------------------
    def active(self, knob: Knob, config: Mapping[str, Any]) -> bool:
        if knob.when is None:
            return True
        try:
            # a knob that is inactive is None here (as in violations), so conditions can chain
            return bool(knob.when({**self.constants, **{k: None for k in self.knobs}, **config}))
        except (ExprError, TypeError, ZeroDivisionError) as e:
            raise BadInput(str(e), knob.file, f"knobs.{knob.name}.when") from None

    def sample(self, trial: optuna.trial.BaseTrial, pins: Mapping[str, Any] | None = None) -> Config:
        """Ask the trial for every active, unpinned knob (in file order)."""
        pins = pins or {}
        config: Config = {}
        for knob in self.knobs.values():
            if not self.active(knob, config):
                continue
            if knob.name in pins:
                config[knob.name] = pins[knob.name]
            else:
                config[knob.name] = knob.decode(D.suggest(trial, knob.name, self.distribution(knob)))
        return config

    def distribution(self, knob: Knob) -> Any:
        """The knob's distribution, made once: one object for every trial, proposal, sampler and
        encoding, so the journal reuses its JSON text and compatibility checks find it identical
        (tuner.storage) instead of making and comparing 384 distributions per trial."""
        found = self._dists.get(knob.name)
        if found is None or found[0] is not knob:
            found = self._dists[knob.name] = (knob, knob.distribution())
        return found[1]

    def complete(self, partial: Mapping[str, Any], where: str = "study.baseline") -> Config:
        """A full configuration from some values, the rest at their defaults (for baselines).
        A value given for a knob that is inactive in the result is refused: it would be dropped."""
        config: Config = {}
        for knob in self.knobs.values():
            if self.active(knob, config):
                config[knob.name] = knob.coerce(partial[knob.name]) if knob.name in partial else knob.default
        for name in partial:
            if name in self.knobs and name not in config:
                when = self.knobs[name].when
                raise BadInput(f"knob '{name}' is inactive under its condition '{when.text if when else ''}' "
                               "with the other knobs at these values, so its value would be ignored",
                               self.file if where.startswith("study.") else None, where)
        return config

    def parse_pins(self, assignments: list[str], where: str = "--set") -> Config:
        """`knob=value` strings from the command line -> checked knob values."""
        pins: Config = {}
        for item in assignments:
            name, sep, text = item.partition("=")
            name = name.strip()
            if not sep:
                raise BadInput(f"expected knob=value, got '{item}'", where)
            if name not in self.knobs:
                raise BadInput(f"unknown knob '{name}' (this study's knobs: {', '.join(self.knobs) or 'none'})",
                               self.file, where)
            try:
                pins[name] = self.knobs[name].coerce(text)
            except (ValueError, TypeError) as e:
                raise BadInput(f"{name}: {e}", self.file, where) from None
        self._check_pins_active(pins, where)
        return pins

    def _check_pins_active(self, pins: Mapping[str, Any], where: str, samples: int = 200) -> None:
        """Refuse a pin of a knob that no configuration with these pins makes active: it would
        be dropped silently. Random configurations are drawn (the pins held); a knob active in
        one of them is accepted (it applies whenever its condition holds). A condition on
        `cores` is not judged before the target says how many there are."""
        unsure = [n for n in pins if self.knobs[n].when is not None
                  and not ("cores" in self.knobs[n].when.names and not self.constants.get("cores"))]
        rng = random.Random(0)
        for _ in range(samples if unsure else 0):
            config = self._random_config(rng, pins)
            unsure = [n for n in unsure if n not in config]
            if not unsure:
                return
        if unsure:
            knob = self.knobs[unsure[0]]
            others = ", ".join(f"{k}={v}" for k, v in pins.items() if k != knob.name) or "no other knob set"
            raise BadInput(f"knob '{knob.name}' is inactive under its condition '{knob.when.text}' "  # type: ignore
                           f"({others}), so '{knob.name}={pins[knob.name]}' would be ignored", self.file, where)

    def _random_config(self, rng: random.Random, pins: Mapping[str, Any] | None = None) -> Config:
        """A uniformly drawn configuration (active knobs only, pins held)."""
        config: Config = {}
        for knob in self.knobs.values():
            if not self.active(knob, config):
                continue
            if pins and knob.name in pins:
                config[knob.name] = pins[knob.name]
                continue
            config[knob.name] = knob.decode(D.draw(knob.distribution(), rng))
        return config

    def violations(self, config: Mapping[str, Any]) -> list[str]:
        """The constraints this configuration breaks (their text), in file order."""
        env = {**self.constants, **{k: None for k in self.knobs}, **config}
        broken = []
        for c in self.constraints:
            try:
                if c.violated(env):
                    broken.append(c.name)
            except (ExprError, TypeError, ZeroDivisionError, ValueError) as e:
                broken.append(f"{c.name} ({e})")
        return broken

    def check_satisfiable(self, pins: Mapping[str, Any] | None = None, samples: int = 2000, seed: int = 0) -> None:
        """Reject a space whose constraints no configuration meets (before anything is built).

        Random configurations are drawn; if none is feasible the constraint broken most often
        is named. A space with rare feasible points may be rejected wrongly only when fewer than
        1 in `samples` configurations is feasible, which no sampler could explore anyway.
        """
        if pins:   # now that `cores` is known, conditions on it are judged too
            self._check_pins_active(pins, "--set")
        if not self.constraints:
            return
        rng = random.Random(seed)
        broken: Counter[str] = Counter()
        for _ in range(samples):
            config = self._random_config(rng, pins)
            violated = self.violations(config)
            if not violated:
                return
            broken.update(violated)
        worst = broken.most_common(1)[0][0]
        raise BadInput(f"no configuration satisfies the constraints (of {samples} random ones, "
                       f"{broken[worst]} break '{worst}')", self.file, "constraints")

    def render(self, config: Mapping[str, Any]) -> Rendering:
        """Merge the knobs' renderings in file order."""
        cflags: list[str] = []
        env: dict[str, str] = {}
        args: list[str] = []
        compiler = None
        for name, value in config.items():
            r = self.knobs[name].render(value)
            cflags += r.cflags
            env.update(r.env)
            args += r.args
            compiler = r.compiler or compiler
        variables = {name: self.knobs[name].template_value(v) for name, v in config.items()}
        return Rendering(tuple(cflags), env, tuple(args), compiler, variables)


def parse_constraints(items: Any, file: Path | str) -> list[Constraint]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadInput("'constraints' must be an array of tables ([[constraints]])", file, "constraints")
    out = []
    for i, item in enumerate(items):
        where = f"constraints[{i}]"
        if isinstance(item, dict):
            check_keys(item, {"expr", "name"}, file, where)
        text = item.get("expr") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise BadInput("each constraint needs expr = \"...\"", file, where)
        name = get(item, "name", "a string", file, where, text) if isinstance(item, dict) else text
        try:
            out.append(Constraint(Expr(text), name))
        except ExprError as e:
            raise BadInput(str(e), file, f"{where}.expr") from None
    return out
