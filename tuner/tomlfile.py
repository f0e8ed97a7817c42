"""Read TOML with errors that name the file and the line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tuner.errors import BadInput


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise BadInput("no such file", path) from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"TOML syntax error: {e}", path) from None
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 text: {e}", path) from None


def check_keys(table: dict[str, Any], allowed: set[str], file: Path | str, where: str) -> None:
    """Unknown keys are typos more often than not: reject them with the key named."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise BadInput(f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})",
                       file, f"{where}.{unknown[0]}" if where else unknown[0])
