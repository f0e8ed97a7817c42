"""The knob conformance suite over every kind in tuner.knobs.KINDS and every knob of every
built-in study. One test per check and group (kinds' examples, studies' knobs) runs the check on
every knob and reports every failure with its knob, e.g. `check_roundtrip[conv2d-flags:opt_level]`
(one test per knob and check made 4,000 tests that took longer to collect than to run)."""

from __future__ import annotations

import json

import pytest

from tuner import library
from tuner.knobs import KINDS
from tuner.study import load_study
from tuner.testing.knob_checks import CHECKS, example_knobs, run_over

MISSING_DEPENDENCY = (ImportError, ModuleNotFoundError)


def _study_knobs():
    """(id, knob) of every built-in study's knobs, and a param per study that fails to load:
    skipped with the reason when a missing optional dependency is to blame, else failing.
    A knob whose kind and table equal one already listed (the generated gcc space that several
    studies include) is checked once, under the first study's name."""
    knobs, broken, seen = [], [], set()
    for name in library.names("study"):
        try:
            spec = load_study(name)
        except MISSING_DEPENDENCY as e:
            broken.append(pytest.param(name, None, id=name, marks=pytest.mark.skip(
                reason=f"study {name} needs an optional dependency that is not installed: {e}")))
            continue
        except Exception as e:   # anything else is a bug in the study or the engine
            broken.append(pytest.param(name, e, id=name))
            continue
        for k in spec.space.knobs.values():
            same = (k.name, json.dumps(k.table, sort_keys=True, default=str))
            if same not in seen:
                seen.add(same)
                knobs.append((f"{name}:{k.name}", k))
    return knobs, broken


STUDY_KNOBS, BROKEN_STUDIES = _study_knobs()
KIND_KNOBS = [pair for kind in KINDS for pair in example_knobs(kind)]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_examples(kind):
    assert example_knobs(kind), f"add example tables for kind '{kind}' to tuner/testing/knob_checks.py"


def test_built_in_studies_have_knobs():
    assert len(STUDY_KNOBS) > 10, "expected the built-in studies' knobs"
    assert any(i.startswith("conv2d-flags:") for i, _ in STUDY_KNOBS)


@pytest.mark.parametrize("study,error", BROKEN_STUDIES or [pytest.param(None, None, id="none-broken")])
def test_built_in_study_loads(study, error):
    if error is not None:
        raise AssertionError(f"built-in study {study} does not load: {error}")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_knob_kinds(check):
    failures = run_over(check, KIND_KNOBS)
    assert not failures, f"{len(failures)} of {len(KIND_KNOBS)} knobs fail:\n" + "\n".join(failures)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_study_knobs(check):
    failures = run_over(check, STUDY_KNOBS)
    assert not failures, f"{len(failures)} of {len(STUDY_KNOBS)} knobs fail:\n" + "\n".join(failures)


def test_a_failing_knob_is_named_and_the_others_still_run():
    """The consolidated checks fail for one bad knob among good ones, naming it; a check a kind
    declares as expected to fail must fail."""
    from tuner.knobs import make_knob

    good = make_knob("fine", {"kind": "int", "low": 0, "high": 3}, "t.toml")
    bad = make_knob("two_lines", {"kind": "int", "low": 0, "high": 3}, "t.toml")
    bad.domain = lambda: "[0, 3]\nand more"
    check = next(c for c in CHECKS if c.__name__ == "check_domain_text")
    assert run_over(check, [("a:fine", good), ("b:two_lines", bad)]) == [
        "check_domain_text[b:two_lines]: domain() must be one line, got '[0, 3]\\nand more'"]

    class Declared(type(good)):
        expected_failed_checks = {"check_domain_text": "known"}

    declared = Declared("x", {"kind": "int", "low": 0, "high": 3}, "t.toml")
    [msg] = run_over(check, [("c:x", declared)])
    assert "passed, but its kind expects it to fail" in msg
