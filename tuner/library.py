"""Where studies, targets, objectives, knob includes and programs are found.

The built-in library is the source tree's search_spaces/, targets/, objectives/ and programs/
(a checkout or an editable install), or their copy inside the installed package,
tuner/_library/ (a wheel or a plain `pip install .`; setup.py copies them there). A user's own
files come first: each directory in $TUNE_LIBRARY (colon-separated), then the working
directory, so a user extends or overrides a component without editing tune.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

from tuner.errors import BadInput



def _builtin_root() -> Path:
    packaged = Path(__file__).resolve().parent / "_library"      # installed from a wheel
    if (packaged / "search_spaces").is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent                # a source checkout


BUILTIN_ROOT = _builtin_root()
KINDS = {"study": "search_spaces", "target": "targets", "objective": "objectives",
         "network": "search_spaces/networks"}


def roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("TUNE_LIBRARY", "").split(os.pathsep) if p]
    seen: list[Path] = []
    for root in [*extra, Path.cwd(), BUILTIN_ROOT]:
        root = root.resolve()
        if root not in seen:
            seen.append(root)
    return seen


def find(kind: str, name: str) -> Path:
    """The file for `name`: a path to a .toml file, or a name looked up in the library."""
    if len(name) > 255 or "\0" in name:   # the file system would refuse it with an OSError
        raise BadInput(f"not a {kind} name: {name[:40]!r}{'...' if len(name) > 40 else ''}")
    if name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise BadInput(f"no such {kind} file", path)
        return path.resolve()
    folder = KINDS[kind]
    for root in roots():
        path = root / folder / f"{name}.toml"
        if path.is_file():
            return path
    known = ", ".join(names(kind)) or "none"
    raise BadInput(f"unknown {kind} '{name}' (known: {known})")


def names(kind: str) -> list[str]:
    found: set[str] = set()
    for root in roots():
        folder = root / KINDS[kind]
        if folder.is_dir():
            found.update(p.stem for p in folder.glob("*.toml"))
    return sorted(found)


def find_include(rel: str, study_file: Path) -> Path:
    """A knob file a study includes (`include = ["knobs/gcc.toml"]`): beside the study first,
    then in search_spaces/ of each library root, so a study anywhere can include the built-in
    knob files. A path found nowhere is returned as given, for the caller to report."""
    local = (study_file.parent / rel).resolve()
    if local.is_file() or Path(rel).is_absolute():
        return local
    for root in roots():
        path = root / KINDS["study"] / rel
        if path.is_file():
            return path.resolve()
    return local


def program_module(rel: str) -> ModuleType:
    """A Python workload of the library (`programs/REL`, e.g. "tvm_matmul/tvm_matmul.py") as a
    module, for tests and benchmarks that call it in-process; loaded once, named by its file."""
    path = programs_dir() / rel
    name = path.stem
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput("no such program file", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def programs_dir() -> Path:
    return BUILTIN_ROOT / "programs"


_REF = re.compile(r"\{(network):([A-Za-z0-9_.-]+)\}")


def expand(text: str, file: Path | str | None = None, key: str | None = None) -> str:
    """A program argument with `{network:NAME}` replaced by that library file's path.

    Lets a study hand its program a data file found like studies and targets, e.g. the
    VTA simulator's `--network {network:resnet18}`. An unknown name is a BadInput naming
    `file` and `key` (the study and its program.args)."""
    try:
        return _REF.sub(lambda m: str(find(m.group(1), m.group(2))), text)
    except BadInput as e:
        raise BadInput(e.message, file, key) from None
