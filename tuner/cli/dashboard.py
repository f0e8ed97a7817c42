"""`tune dashboard STUDY [--port P]`: optuna-dashboard on the study's storage, on loopback,
with knobs shown as their values (extra `dashboard`: pip install 'tune[dashboard]')."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from tuner.cli.common import add_study
from tuner.errors import RunFailure


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study(p)
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default: 8080)")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("optuna_dashboard") is None:
        raise RunFailure("tune dashboard needs optuna-dashboard: pip install 'tune[dashboard]'")
    from tuner.artifact.dashboard import serve
    from tuner.cli.common import results_dir
    from tuner.engine import load_campaign
    from tuner.storage import open_storage

    spec, _ = load_campaign(args.study, args.results, args.storage)      # checks that the campaign exists
    print(f"tune dashboard: {spec.name} on http://127.0.0.1:{args.port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    serve(open_storage(results_dir(args, spec), args.storage), spec.space.knobs, args.port)
    return 0
