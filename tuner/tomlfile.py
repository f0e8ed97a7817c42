"""Read TOML with errors that name the file and the line, and typed look-ups that name the key.

Every value a user writes is checked here, at load time, against the type the code needs:
a wrong type found later (after a build, inside Optuna) would be a traceback, not a message.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Callable

from tuner.errors import BadInput


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise BadInput("no such file", path) from None
    except IsADirectoryError:
        raise BadInput("is a directory, not a TOML file", path) from None
    except OSError as e:   # permission denied, a name too long, an I/O error
        raise BadInput(f"cannot read it: {e.strerror or e}", str(path)[:300]) from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"TOML syntax error: {e}", path) from None
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 text: {e}", path) from None
    except RecursionError:   # tomllib recurses on nested arrays/inline tables: [[[[...]]]]
        raise BadInput("TOML nested too deeply", path) from None


def check_keys(table: dict[str, Any], allowed: set[str], file: Path | str, where: str) -> None:
    """Unknown keys are typos more often than not: reject them with the key named."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise BadInput(f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})",
                       file, f"{where}.{unknown[0]}" if where else unknown[0])


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, bool)) or _number(v)


# The kinds of value a key may hold: name (as the message says it) -> test.
KINDS: dict[str, Callable[[Any], bool]] = {
    "a string": lambda v: isinstance(v, str),
    "a boolean (true or false)": lambda v: isinstance(v, bool),
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": _number,
    "a table": lambda v: isinstance(v, dict),
    "a list of strings": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list": lambda v: isinstance(v, list),
    "a string, number or boolean": _scalar,
    "a list of strings, numbers or booleans": lambda v: isinstance(v, list) and all(_scalar(x) for x in v),
}


def describe(value: Any) -> str:
    """A value as the user wrote it, shortened: `5`, `"A=B"`, `[1, 2]`, `{...}`."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, str):
        text = '"' + value + '"'
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def key_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def get(table: dict[str, Any], key: str, kind: str, file: Path | str | None, where: str,
        default: Any = None) -> Any:
    """table[key] if it is of `kind` (a name in KINDS), `default` if absent; else BadInput."""
    if key not in table:
        return default
    value = table[key]
    if not KINDS[kind](value):
        raise BadInput(f"must be {kind}, got {describe(value)}", file, key_path(where, key))
    return value


def positive(table: dict[str, Any], key: str, file: Path | str | None, where: str,
             default: float | None = None, zero: bool = False) -> float | None:
    """A number > 0 (>= 0 with `zero`), or `default` if absent."""
    value = get(table, key, "a number", file, where, default)
    if value is not None and (value < 0 or (value == 0 and not zero)):
        raise BadInput(f"must be {'>= 0' if zero else '> 0'}, got {describe(value)}", file, key_path(where, key))
    return value
