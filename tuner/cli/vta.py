"""`tune vta ...`: the VTA simulator on its own (a layer, or all of ResNet-18)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rest", nargs=argparse.REMAINDER, help="simulator options (see `tune vta --help`)")


def main(argv: list[str]) -> int:
    from tuner.vta.cli import main as real_main
    return real_main(argv)


def run(args: argparse.Namespace) -> int:
    from tuner.vta.cli import main
    return main(args.rest)
