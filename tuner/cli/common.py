"""Options and look-ups that several subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner import engine
from tuner.errors import BadInput, RunFailure
from tuner.study import StudySpec
from tuner.targets import Target, load_target, make_target


def fmt_config(c: dict) -> str:
    """A configuration as the commands print it: knob=value pairs, or "defaults"."""
    return " ".join(f"{k}={v}" for k, v in c.items()) or "defaults"


def fmt_ratios(ratios: dict) -> str:
    """Objective ratios against a reference as the commands print them: "name xV [low, high]"."""
    return ", ".join(f"{name} x{r[0]:.4g} [{r[1]:.4g}, {r[2]:.4g}]" if r else f"{name} n/a"
                     for name, r in ratios.items())


def fmt_reference(against: dict) -> str:
    """The reference of an `against` document ({"reference": "baseline"/"defaults", "config"})."""
    return f"the baseline ({fmt_config(against['config'])})" if against["reference"] == "baseline" else "the defaults"


def add_study(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="a built-in study name (see `tune spaces`) or a path to a study .toml")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="results root; the study's files go to DIR/STUDY (default: ./results)")
    p.add_argument("--storage", metavar="URL",
                   help="an Optuna storage URL instead of the journal file (sqlite:///x.db, postgresql://...)")


def add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", metavar="NAME", help="run on another compatible target (see `tune targets`)")
    p.add_argument("--target-opt", metavar="KEY=VALUE", action="append", default=[],
                   help="override a [transport] key of the target file (host, port, serial, ...)")


def add_format(p: argparse.ArgumentParser, choices: tuple[str, ...], default: str) -> None:
    p.add_argument("--format", choices=choices, default=default, help=f"output format (default: {default})")


def results_dir(args: argparse.Namespace, spec: StudySpec) -> Path:
    return engine.results_dir(args.results, spec)


def _overrides(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInput(f"expected KEY=VALUE, got '{item}'", None, "--target-opt")
        out[key.strip()] = int(value) if value.isdigit() else value
    return out


def open_target(args: argparse.Namespace, spec: StudySpec, results: Path, check: bool = True) -> Target:
    missing = spec.program.missing_requirements()
    if missing:
        raise RunFailure(f"study '{spec.name}' needs the Python package(s) {', '.join(missing)}, "
                         "which are not installed (see the README's optional extras)")
    name = getattr(args, "target", None) or spec.target
    if getattr(args, "target", None) and spec.compatible_targets and name not in spec.compatible_targets:
        raise BadInput(f"study '{spec.name}' runs on {', '.join(spec.compatible_targets)}, not '{name}'",
                       spec.file, "study.targets")
    target = make_target(load_target(name, _overrides(getattr(args, "target_opt", []))), results / "builds")
    if check:
        avail = target.probe()
        if not avail.usable:
            raise RunFailure(f"target '{name}' is not usable here: {avail.reason}")
    return target
