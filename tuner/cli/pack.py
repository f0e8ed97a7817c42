"""`tune pack STUDY`: the study, its knob files, program sources, target, journal and
references as one archive (see tuner.artifact.pack)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner.cli.common import add_study, results_dir
from tuner.engine import load_campaign


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    p.add_argument("--out", metavar="FILE", help="archive to write (default: STUDY.tune.tar.gz here)")


def run(args: argparse.Namespace) -> int:
    from tuner.artifact.pack import pack

    spec, study = load_campaign(args.study, args.results, args.storage)
    out = Path(args.out or f"{spec.name}.tune.tar.gz")
    targets = list(dict.fromkeys([spec.target, *spec.compatible_targets]))
    manifest = pack(spec, study, results_dir(args, spec), out, targets, args.storage)
    print(f"wrote {out} ({len(manifest['files'])} files, {out.stat().st_size / 1024:.0f} KiB)")
    print(f"re-check it elsewhere: tune unpack {out.name} --into DIR && cd DIR && tune reproduce {spec.name} --front")
    return 0
