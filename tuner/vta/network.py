"""Networks as data: a file of conv layers, found through the component library.

`search_spaces/networks/NAME.toml` holds `[[conv]]` tables (name, h, w, ic, oc, k, s, p, count).
The simulator reads the same file itself (a TOML subset: one `key = value` per line); this
module reads it with tomllib for the Python side (`tune vta`, benches, tests) and checks it the
same way, so a bad file is one line naming the file and the key, exit 2.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from tuner import library
from tuner.errors import BadInput

CONV_KEYS = ("name", "h", "w", "ic", "oc", "k", "s", "p", "count")
TOP_KEYS = {"name", "description", "source", "conv"}


@dataclass(frozen=True)
class Conv:
    """One conv2d layer; `count` is how often it occurs in one forward pass (0: listed only)."""

    name: str
    h: int
    w: int
    ic: int
    oc: int
    k: int
    s: int
    p: int
    count: int = 1

    @property
    def out_h(self) -> int:
        return (self.h + 2 * self.p - self.k) // self.s + 1

    @property
    def out_w(self) -> int:
        return (self.w + 2 * self.p - self.k) // self.s + 1

    def macs(self, batch: int = 1) -> int:
        return batch * self.out_h * self.out_w * self.oc * self.ic * self.k * self.k

    def shape_arg(self, batch: int | None = None) -> str:
        """The simulator's --shape value H,W,IC,OC,K,S,P[,N]."""
        vals = [self.h, self.w, self.ic, self.oc, self.k, self.s, self.p] + ([batch] if batch else [])
        return ",".join(map(str, vals))


@dataclass(frozen=True)
class Network:
    name: str
    path: Path
    description: str
    layers: tuple[Conv, ...]

    def layer(self, name: str) -> Conv:
        for c in self.layers:
            if c.name == name:
                return c
        raise BadInput(f"unknown layer '{name}' (known: {', '.join(c.name for c in self.layers)})", self.path)

    def macs(self, batch: int = 1) -> int:
        return sum(c.count * c.macs(batch) for c in self.layers)


def network_path(name: str) -> Path:
    """A network name from the library (`resnet18`) or a path to a .toml file."""
    return library.find("network", name)


def load_network(name: str) -> Network:
    path = network_path(name)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"cannot read network: {e}", path) from None
    for key in doc:
        if key not in TOP_KEYS:
            raise BadInput(f"unknown key (known: {', '.join(sorted(TOP_KEYS))})", path, key)
    convs = doc.get("conv")
    if not isinstance(convs, list) or not convs:
        raise BadInput("a network needs [[conv]] tables", path, "conv")
    layers, seen = [], set()
    for i, t in enumerate(convs):
        where = f"conv[{i}]"
        for key in t:
            if key not in CONV_KEYS:
                raise BadInput(f"unknown key (known: {' '.join(CONV_KEYS)})", path, f"{where}.{key}")
        for key in CONV_KEYS[:7]:
            if key not in t:
                raise BadInput("missing", path, f"{where}.{key}")
        name = t["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= 15 or name in seen:
            raise BadInput("a unique name of 1..15 characters", path, f"{where}.name")
        seen.add(name)
        vals = {k: t.get(k) for k in CONV_KEYS[1:]}
        vals["p"] = t.get("p", t["k"] // 2 if isinstance(t["k"], int) else 0)
        vals["count"] = t.get("count", 1)
        for key, v in vals.items():
            low = 0 if key in ("p", "count") else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise BadInput(f"an integer >= {low}", path, f"{where}.{key}")
        layers.append(Conv(name=name, **vals))
    return Network(str(doc.get("name", path.stem)), path, str(doc.get("description", "")), tuple(layers))
