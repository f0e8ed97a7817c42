"""`tune unpack ARCHIVE [--into DIR]`: extract a `tune pack` archive and check every file
against its manifest; the folder is then a library in which `tune reproduce STUDY` works."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("archive", help="a STUDY.tune.tar.gz written by `tune pack`")
    p.add_argument("--into", metavar="DIR", help="folder to unpack into (default: STUDY.tune)")


def run(args: argparse.Namespace) -> int:
    from tuner.artifact.pack import unpack

    archive = Path(args.archive)
    into = Path(args.into) if args.into else Path(archive.name.removesuffix(".tar.gz"))
    manifest = unpack(archive, into)
    study = manifest["study"]
    print(f"unpacked {study} into {into} ({len(manifest['files'])} files, hashes checked)")
    print(f"next: cd {into} && tune reproduce {study} --front")
    return 0
