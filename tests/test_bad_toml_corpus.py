"""A corpus of malformed files, made from every built-in study, knob include and target: none
may end in a traceback. Each mutation (a truncation, a stray byte, or one value swapped for a
value of another type) is loaded through the CLI entry point (`tune spaces FILE` for studies and
includes) or the target loader (`load_target` + `make_target`, what every command runs), and
must either load or be refused with a one-line BadInput naming the file.

The mutations are drawn from a fixed seed, so a failure reproduces; its id names the file and
the mutation.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import shutil
import tomllib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Iterator

import pytest

from tuner import library
from tuner.cli.main import main
from tuner.errors import BadInput

ROOT = library.BUILTIN_ROOT
STUDIES = sorted((ROOT / "search_spaces").glob("*.toml"))
INCLUDES = sorted((ROOT / "search_spaces" / "knobs").glob("*.toml"))
TARGETS = sorted((ROOT / "targets").glob("*.toml"))
PER_FILE = 16      # mutations per file

# Values of every TOML type (and some edge values) to swap in for a value.
SWAPS: list[Any] = [5, -5, 0, 2**63 - 1, 2.5, math.nan, math.inf, True, "", "x", "A=B", "{1}",
                    "-" * 3000, [], [1, "a"], [[1]], {}, {"a": 1}, {"file": 5}]
STRAY = [b'"', b"[", b"]", b"=", b"\n", b"{", b"}", b",", b"\xff", b"\x00", b"'''", b"[[", b"#", b"\\"]


# --- a small TOML writer (the test's own: the swapped values must reach the file as written) --
def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"


def dumps(table: dict[str, Any], prefix: str = "") -> str:
    lines = [f"{_key(k)} = {_value(v)}" for k, v in table.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))]
    out = "\n".join(lines) + "\n"
    for k, v in table.items():
        name = f"{prefix}{_key(k)}"
        if isinstance(v, dict):
            out += f"\n[{name}]\n" + dumps(v, name + ".")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                out += f"\n[[{name}]]\n" + dumps(item, name + ".")
    return out


def _leaves(node: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (k,)
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield path + (i,)
            yield from _leaves(v, path + (i,))


def _swap(table: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    table = json.loads(json.dumps(table, default=str))    # a deep copy (dates become strings)
    node = table
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return table


def mutations(path: Path, seed: int) -> Iterator[tuple[str, bytes]]:
    """(what, bytes): the file with one thing wrong."""
    rng = random.Random(f"{path.name}:{seed}")
    data = path.read_bytes()
    table = tomllib.loads(data.decode())
    leaves = list(_leaves(table))
    for i in range(PER_FILE):
        kind = i % 3
        if kind == 0:
            cut = rng.randrange(len(data))
            yield f"truncated at byte {cut}", data[:cut]
        elif kind == 1:
            at, stray = rng.randrange(len(data)), rng.choice(STRAY)
            yield f"{stray!r} inserted at byte {at}", data[:at] + stray + data[at:]
        else:
            leaf, value = rng.choice(leaves), rng.choice(SWAPS)
            try:
                text = dumps(_swap(table, leaf, value))
            except (TypeError, KeyError):
                continue
            yield f"{'.'.join(map(str, leaf))} = {_value(value)[:30]}", text.encode()


def run_cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _check(code: int, err: str, what: str) -> None:
    assert code in (0, 2), f"{what}: exit {code}\n{err}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tune: error: "), f"{what}:\n{err}"


@pytest.fixture
def library_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in __import__("os").environ if k.startswith("TUNE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TUNE_LIBRARY", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "search_spaces" / "knobs", tmp_path / "knobs")
    (tmp_path / "targets").mkdir()
    return tmp_path


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_malformed_studies_never_raise(library_dir: Path, path: Path) -> None:
    out = library_dir / path.name
    for what, data in mutations(path, 0):
        out.write_bytes(data)
        code, err = run_cli(["spaces", str(out)])
        _check(code, err, f"{path.name}, {what}")
        if code == 2:
            assert str(out) in err or "knobs/" in err or "objectives/" in err, f"{what}: names no file: {err}"


@pytest.mark.parametrize("path", INCLUDES, ids=[p.stem for p in INCLUDES])
def test_malformed_knob_includes_never_raise(library_dir: Path, path: Path) -> None:
    study = library_dir / "inc-study.toml"
    study.write_text(f'[study]\ntarget = "local"\nobjectives = ["latency_ms"]\ninclude = ["knobs/{path.name}"]\n'
                     '[program]\nsources = ["conv2d/conv2d.c"]\n')
    out = library_dir / "knobs" / path.name
    for what, data in mutations(path, 0):
        out.write_bytes(data)
        code, err = run_cli(["spaces", str(study)])
        _check(code, err, f"{path.name}, {what}")
        if code == 2:
            assert str(out) in err, f"{path.name}, {what}: does not name the include: {err}"


@pytest.mark.parametrize("path", TARGETS, ids=[p.stem for p in TARGETS])
def test_malformed_targets_never_raise(library_dir: Path, path: Path) -> None:
    from tuner.targets import load_target, make_target

    out = library_dir / "targets" / path.name
    for what, data in mutations(path, 0):
        out.write_bytes(data)
        try:
            make_target(load_target(path.stem), library_dir / "builds")
        except BadInput as e:
            assert "\n" not in str(e) and str(out) in str(e), f"{path.name}, {what}: {e}"
