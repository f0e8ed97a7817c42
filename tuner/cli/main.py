"""Entry point: parse, dispatch, and turn every known error into one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from tuner import __version__
from tuner.cli import COMMANDS, PASSTHROUGH
from tuner.errors import BadInput, RunFailure

SUCCESS, RUN_FAILURE, BAD_INPUT = 0, 1, 2


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error of every other bad input (argparse prints the usage too)."""

    def error(self, message: str) -> NoReturn:
        print(f"tune: error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(BAD_INPUT)


def check_common(args: argparse.Namespace) -> None:
    """Options several commands share, checked before any command runs."""
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2**32:
        raise BadInput(f"must be between 0 and 2**32 - 1, got {seed}", None, "--seed")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tune",
        description="Reproducible autotuning and design-space exploration: "
                    "search space x target x objectives -> a verified Pareto front.",
        epilog="Start with `tune spaces`, then `tune explore STUDY`. Exit codes: 0 ok, 1 run-time failure, 2 bad input.",
    )
    parser.add_argument("--version", action="version", version=f"tune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        if name in PASSTHROUGH:   # listed for --help; main() hands their arguments over untouched
            sub.add_parser(name, help=summary, add_help=False)
            continue
        p = sub.add_parser(name, help=summary, description=summary)
        importlib.import_module(module).add_arguments(p)
    return parser


def quiet_optuna() -> None:
    """tune prints its own progress; Optuna's per-trial INFO lines and experimental warnings are noise."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_optuna()
    if argv and argv[0] in PASSTHROUGH:
        try:
            return importlib.import_module(COMMANDS[argv[0]][0]).main(argv[1:])
        except BadInput as e:
            print(f"tune: error: {e}", file=sys.stderr)
            return BAD_INPUT
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:   # argparse already printed its message
        return BAD_INPUT if e.code not in (0, None) else SUCCESS
    if not args.command:
        parser.print_help()
        return BAD_INPUT
    try:
        check_common(args)
        return importlib.import_module(COMMANDS[args.command][0]).run(args)
    except BadInput as e:
        print(f"tune: error: {e}", file=sys.stderr)
        return BAD_INPUT
    except RunFailure as e:
        print(f"tune: failed: {e}", file=sys.stderr)
        return RUN_FAILURE
    except KeyboardInterrupt:
        print("tune: interrupted; everything finished so far is stored", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SUCCESS


if __name__ == "__main__":
    sys.exit(main())
