"""The knob conformance suite over every kind in tuner.knobs.KINDS and every knob of every
built-in study: ids like `check_roundtrip[conv2d-flags:opt_level]`."""

from __future__ import annotations

import pytest

from tuner import library
from tuner.knobs import KINDS
from tuner.study import load_study
from tuner.testing.knob_checks import example_knobs, parametrize_with_checks

MISSING_DEPENDENCY = (ImportError, ModuleNotFoundError)


def _study_knobs():
    """(id, knob) of every built-in study's knobs, and a param per study that fails to load:
    skipped with the reason when a missing optional dependency is to blame, else failing."""
    knobs, broken = [], []
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
        knobs += [(f"{name}:{k.name}", k) for k in spec.space.knobs.values()]
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


@parametrize_with_checks(KIND_KNOBS)
def test_knob_kinds(check):
    check()


@parametrize_with_checks(STUDY_KNOBS)
def test_study_knobs(check):
    check()
