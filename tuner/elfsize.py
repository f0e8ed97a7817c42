"""Code size of an ELF binary: the bytes of its executable sections.

File size barely moves between -O3 and -Os because of padding, so objectives read the
code sections instead, like `size`'s text but without read-only data. Pure Python, so it
works on cross-compiled binaries that the host binutils cannot read.
"""

from __future__ import annotations

import struct
from pathlib import Path

SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4


def code_bytes(path: Path) -> int | None:
    """Sum of allocated executable section sizes, or None if `path` is not ELF."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF":
        return None
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x3A)
        fmt, flags_at, size_at = endian + "Q", 0x08, 0x20
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x2E)
        fmt, flags_at, size_at = endian + "I", 0x08, 0x14
    total = 0
    for i in range(shnum):
        base = shoff + i * shentsize
        flags, = struct.unpack_from(fmt, data, base + flags_at)
        size, = struct.unpack_from(fmt, data, base + size_at)
        if flags & SHF_ALLOC and flags & SHF_EXECINSTR:
            total += size
    return total
