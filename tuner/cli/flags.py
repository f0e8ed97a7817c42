"""`tune flags gcc|clang`: write a flag space generated from the installed compiler."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rest", nargs=argparse.REMAINDER, help="compiler and options (see `tune flags -- --help`)")


def main(argv: list[str]) -> int:
    from tuner.flagspace import main as real_main
    return real_main(argv)


def run(args: argparse.Namespace) -> int:
    from tuner.flagspace import main
    return main(args.rest)
