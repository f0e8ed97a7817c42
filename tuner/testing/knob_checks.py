"""Conformance checks that every knob must pass (like scikit-learn's estimator checks).

Each check is a small named function `check_x(knob)` that raises AssertionError on a
violation. `yield_checks(knob)` yields them for one knob instance; `parametrize_with_checks`
turns (id, knob) pairs into pytest parameters with ids such as
`check_roundtrip[conv2d-flags:opt_level]`. A kind that cannot meet a check says so in its
own class attribute `expected_failed_checks = {"check_name": "reason"}` (run as xfail), never
in a list kept here. `tests/test_common_knobs.py` runs the checks over every kind in
`tuner.knobs.KINDS` (with `example_knobs`) and over every knob of every built-in study.

What the checks hold a knob to (the protocol in tuner/knobs/base.py):

* `distribution()` is an Optuna distribution the search space can ask for (categorical or
  int), equal from call to call (Optuna rejects a parameter whose distribution changes);
* every sampler value decodes to a knob value that `contains`, `coerce` keeps, `encode`
  maps back to the same sampler value, and that survives JSON (how configurations are
  stored) and its own text form (how `--set` passes it);
* `coerce` rejects values outside the domain with ValueError;
* `render` gives argv pieces and environment entries, never a shell string, and distinct
  values give distinct renderings (or the value would not reach the build or the run);
* the default is in the domain.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Iterable, Iterator

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution

from tuner.knobs import Knob, make_knob
from tuner.knobs import dist as D
from tuner.knobs.base import DESTINATIONS
from tuner.records import Rendering

MAX_VALUES = 64          # values of a large domain visited by one check (ends included)
_SENTINEL = "__tune_check_no_such_value__"

# A few tables per kind, for checking the kinds themselves (built-in studies add real knobs).
EXAMPLE_TABLES: dict[str, list[dict[str, Any]]] = {
    "categorical": [
        {"choices": ["-O1", "-O2", "-O3", "-Os"], "to": "cflag"},
        {"choices": [1, 2, 8], "to": "define"},
        {"choices": [True, False], "to": "env", "env": "USE_X"},
        {"choices": ["gcc", "clang"], "to": "compiler"},
    ],
    "int": [
        {"low": 0, "high": 10},
        {"low": 2, "high": 64, "step": 2, "to": "arg"},
        {"low": 1, "high": 4096, "log": True, "to": "env"},
        {"low": -5, "high": 5, "default": 0, "to": "none"},
    ],
    "ordinal": [
        {"values": [1, 2, 4, 7, 14]},
        {"values": ["small", "medium", "large"], "to": "arg"},
        {"values": [0.5, 1.0, 2.0], "to": "env"},
    ],
    "flag": [
        {"flag": "-funroll-loops"},
        {"flag": "-ftree-vectorize", "tristate": True},
        {"flag": "-mavx2", "tristate": True, "to": "define"},
        {"flag": "-fno-inline", "off_flag": "-finline"},
    ],
    "param": [
        {"param": "max-unroll-times", "low": 2, "high": 32},
        {"param": "max-inline-insns-auto", "low": 10, "high": 1000, "step": 10},
    ],
    "permutation": [
        {"items": ["h", "w"]},
        {"items": ["co", "h", "w", "ci"], "to": "arg", "arg": "--order={}"},
        {"items": list("abcdefg"), "to": "define"},
    ],
    "divisor": [
        {"of": 512},
        {"of": "14 * 14", "min": 2, "max": 98, "to": "arg"},
        {"of": 112, "min": 8, "to": "env"},
        {"of": 7},
    ],
}


def example_knobs(kind: str) -> list[tuple[str, Knob]]:
    """(id, knob) for the example tables of `kind`; an unknown kind has none (a test says so)."""
    out = []
    for i, table in enumerate(EXAMPLE_TABLES.get(kind, [])):
        name = f"{kind}_{i}"
        out.append((f"{kind}:{name}", make_knob(name, {"kind": kind, **table}, "<knob_checks>")))
    return out


# --- helpers ------------------------------------------------------------------------------
def raw_values(dist: BaseDistribution, limit: int = MAX_VALUES) -> list[Any]:
    """Sampler values of `dist`: all of them, or `limit` spread evenly (both ends included)."""
    return D.spread(dist, limit)


def all_values(knob: Knob, limit: int = 100_000) -> list[Any] | None:
    """Every knob value, or None when the domain is too large to list."""
    dist = knob.distribution()
    size = D.size(dist)
    if size > limit:
        return None
    return [knob.decode(r) for r in raw_values(dist, limit=size)]


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same type (1 is not True, 2 is not 2.0)."""
    return type(a) is type(b) and a == b


def out_of_domain_values(knob: Knob) -> list[Any]:
    """Values that are certainly outside the knob's domain (checked against every value)."""
    candidates: list[Any] = [_SENTINEL, None, object(), [[_SENTINEL]], 12345.5, "12345.5x"]
    low, high, step = getattr(knob, "low", None), getattr(knob, "high", None), getattr(knob, "step", 1)
    if isinstance(low, int) and isinstance(high, int):
        candidates += [low - 1, high + 1, str(high + 1), str(low - 1), f"{low}.5", "abc", True]
        if step > 1:
            candidates += [low + 1, str(low + 1)]
    listed = getattr(knob, "values", None) or getattr(knob, "choices", None)
    if isinstance(listed, tuple):
        nums = [v for v in listed if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums:
            candidates += [max(nums) + 1, min(nums) - 1, str(max(nums) + 1)]
        strs = [v for v in listed if isinstance(v, str)]
        if strs:
            candidates += [strs[0] + "_x", strs[0] + " " + strs[-1]]
    items = getattr(knob, "items", None)
    if isinstance(items, tuple) and items and all(isinstance(i, str) for i in items):
        candidates += [",".join(items[:-1]), ",".join([items[0]] * len(items)),
                       ",".join(items) + ",zz", list(items[:-1])]
    states = getattr(knob, "states", None)
    if isinstance(states, tuple):
        candidates += ["maybe", 2, "onoff"] + (["default"] if "default" not in states else [])
    inside = all_values(knob)
    if inside is None:
        return candidates
    def listed_inside(c: Any) -> bool:
        return any(_same(c, v) or (isinstance(c, str) and c.strip() == str(v)) for v in inside)
    return [c for c in candidates if not listed_inside(c)]


def _text(value: Any) -> str:
    """How a user writes a value on the command line (`--set knob=TEXT`)."""
    return str(value)


# --- the checks ------------------------------------------------------------------------------
def check_distribution_is_optuna(knob: Knob) -> None:
    dist = knob.distribution()
    assert isinstance(dist, BaseDistribution), f"distribution() gave {dist!r}, not an Optuna distribution"
    try:
        D.size(dist)
    except TypeError as e:
        raise AssertionError(f"the search space cannot ask for it: {e}") from None
    assert dist == knob.distribution(), "distribution() differs between calls (Optuna rejects that)"
    assert json_to_distribution(distribution_to_json(dist)) == dist, "the distribution does not survive JSON"
    # a real ask: the value Optuna hands back decodes into the domain
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        value = knob.decode(D.suggest(trial, knob.name, dist))
        assert knob.contains(value), f"a sampled value {value!r} is outside the domain"
        study.tell(trial, 0.0)


def check_roundtrip(knob: Knob) -> None:
    dist = knob.distribution()
    raws = raw_values(dist)
    for raw in raws:
        value = knob.decode(raw)
        where = f"sampler value {raw!r} -> {value!r}"
        assert knob.contains(value), f"{where}: not in the domain"
        assert _same(knob.coerce(value), value), f"{where}: coerce changes it to {knob.coerce(value)!r}"
        enc = knob.encode(value)
        assert dist.to_internal_repr(enc) == dist.to_internal_repr(raw), \
            f"{where}: encode gives {enc!r}, not the sampler value back"
        assert _same(knob.decode(enc), value), f"{where}: decode(encode(v)) = {knob.decode(enc)!r}"
        stored = json.loads(json.dumps(value))
        assert _same(knob.coerce(stored), value), \
            f"{where}: does not survive JSON storage (back as {knob.coerce(stored)!r})"
        assert _same(knob.coerce(_text(value)), value), \
            f"{where}: its text {_text(value)!r} coerces to {knob.coerce(_text(value))!r}"
    # an enqueued (pinned, baseline) configuration comes back from Optuna as the same value
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for raw in {0: raws[0], 1: raws[-1], 2: raws[len(raws) // 2]}.values():
        value = knob.decode(raw)
        study.enqueue_trial({knob.name: knob.encode(value)})
        trial = study.ask()
        back = knob.decode(D.suggest(trial, knob.name, dist))
        study.tell(trial, 0.0)
        assert _same(back, value), f"enqueued {value!r}, Optuna gave back {back!r}"


def check_coerce_rejects(knob: Knob) -> None:
    for bad in out_of_domain_values(knob):
        try:
            got = knob.coerce(bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"coerce({bad!r}) accepted an out-of-domain value as {got!r}")
        assert not knob.contains(bad), f"contains({bad!r}) is true for an out-of-domain value"


def _check_rendering(knob: Knob, value: Any, r: Rendering) -> None:
    where = f"render({value!r}) with to={knob.to!r}"
    assert isinstance(r, Rendering), f"{where} gave {r!r}, not a Rendering"
    assert isinstance(r.cflags, tuple) and all(isinstance(c, str) for c in r.cflags), \
        f"{where}: cflags {r.cflags!r} must be a tuple of strings (argv pieces)"
    assert isinstance(r.args, tuple) and all(isinstance(a, str) for a in r.args), \
        f"{where}: args {r.args!r} must be a tuple of strings (argv pieces)"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in dict(r.env).items()), \
        f"{where}: env {dict(r.env)!r} must map strings to strings"
    assert r.compiler is None or isinstance(r.compiler, str), f"{where}: compiler {r.compiler!r}"
    if knob.to == "cflag":
        assert not r.args and not r.env and r.compiler is None, f"{where}: went beyond the compiler line"
        for piece in r.cflags:
            assert piece.startswith("-") and not any(ch.isspace() for ch in piece), \
                f"{where}: {piece!r} is not one compiler argument (a shell string?)"
    elif knob.to == "define":   # one define, or none (a value that leaves it to the program)
        assert len(r.cflags) <= 1 and all(c.startswith(f"-D{knob.define}=") for c in r.cflags), \
            f"{where}: {r.cflags!r}"
        assert not r.args and not r.env, f"{where}: a define went elsewhere too"
    elif knob.to == "env":
        assert set(dict(r.env)) <= {knob.env} and not r.cflags and not r.args, f"{where}: {r!r}"
    elif knob.to == "arg":
        assert len(r.args) <= 1 and not r.cflags and not r.env, f"{where}: {r!r}"
    elif knob.to == "compiler":
        assert r.compiler == str(value) and not r.cflags and not r.args and not r.env, f"{where}: {r!r}"
    elif knob.to == "none":
        assert not r.cflags and not r.args and not r.env and r.compiler is None, f"{where}: {r!r}"
    else:
        raise AssertionError(f"unknown destination {knob.to!r} (known: {sorted(DESTINATIONS)})")


def check_render_argv_only(knob: Knob) -> None:
    """Every value renders to argv pieces / env entries that fit its destination."""
    for raw in raw_values(knob.distribution()):
        value = knob.decode(raw)
        _check_rendering(knob, value, knob.render(value))
    # the same knob sent to each other destination renders just as cleanly
    for dest in sorted(DESTINATIONS - {"cflag", "compiler"}):
        other = type(knob)(knob.name, {**knob.table, "to": dest}, knob.file)
        for raw in raw_values(other.distribution(), limit=8):
            value = other.decode(raw)
            _check_rendering(other, value, other.render(value))


def check_render_distinguishes_values(knob: Knob) -> None:
    """Distinct values reach the build or the run distinctly (else tuning them is pointless)."""
    if knob.to == "none":
        return
    seen: dict[str, Any] = {}
    for raw in raw_values(knob.distribution()):
        value = knob.decode(raw)
        r = knob.render(value)
        key = json.dumps([r.cflags, sorted(dict(r.env).items()), r.args, r.compiler])
        assert key not in seen, f"values {seen[key]!r} and {value!r} render the same: {key}"
        seen[key] = value


def check_default_in_domain(knob: Knob) -> None:
    d = knob.default
    assert knob.contains(d), f"default {d!r} is outside the domain {knob.domain()}"
    assert _same(knob.coerce(d), d), f"default {d!r} is not a knob value (coerce gives {knob.coerce(d)!r})"
    dist = knob.distribution()
    internal = dist.to_internal_repr(knob.encode(d))
    assert dist._contains(internal), f"default {d!r} encodes to {knob.encode(d)!r}, outside {dist!r}"


def check_domain_text(knob: Knob) -> None:
    text = knob.domain()
    assert isinstance(text, str) and text.strip(), "domain() must describe the domain"
    assert "\n" not in text, f"domain() must be one line, got {text!r}"
    assert knob.name in repr(knob), f"repr {knob!r} does not name the knob"


CHECKS: tuple[Callable[[Knob], None], ...] = (
    check_distribution_is_optuna,
    check_roundtrip,
    check_coerce_rejects,
    check_render_argv_only,
    check_render_distinguishes_values,
    check_default_in_domain,
    check_domain_text,
)


def yield_checks(knob: Knob) -> Iterator[tuple[str, Callable[[], None], str | None]]:
    """(check name, a callable running it on `knob`, xfail reason or None)."""
    expected = getattr(type(knob), "expected_failed_checks", {}) or {}
    for check in CHECKS:
        yield check.__name__, functools.partial(check, knob), expected.get(check.__name__)


def run_over(check: Callable[[Knob], None], knobs: Iterable[tuple[str, Knob]]) -> list[str]:
    """Run one check on every (id, knob); the failures, each naming its knob. A knob whose kind
    declares the check in `expected_failed_checks` must fail it (like a strict xfail)."""
    failures = []
    for ident, knob in knobs:
        xfail = (getattr(type(knob), "expected_failed_checks", {}) or {}).get(check.__name__)
        try:
            check(knob)
        except Exception as e:          # an AssertionError, or a crash of the knob's code
            if not xfail:
                what = "" if isinstance(e, AssertionError) else f"{type(e).__name__}: "
                failures.append(f"{check.__name__}[{ident}]: {what}{e}")
            continue
        if xfail:
            failures.append(f"{check.__name__}[{ident}]: passed, but its kind expects it to fail ({xfail})")
    return failures


def parametrize_with_checks(knobs: Iterable[tuple[str, Knob]]):
    """A pytest.mark.parametrize over every check of every (id, knob): ids `check_x[id]`."""
    import pytest

    params = []
    for ident, knob in knobs:
        for name, run, xfail in yield_checks(knob):
            marks = [pytest.mark.xfail(reason=xfail, strict=True)] if xfail else []
            params.append(pytest.param(run, id=f"{name}[{ident}]", marks=marks))
    return pytest.mark.parametrize("check", params)


__all__ = ["CHECKS", "EXAMPLE_TABLES", "example_knobs", "out_of_domain_values", "parametrize_with_checks",
           "raw_values", "run_over", "yield_checks"] + [c.__name__ for c in CHECKS]
