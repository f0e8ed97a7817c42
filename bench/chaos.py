"""Fault injection: random SIGKILLs of real campaigns, then the same command to finish them.

Part 1, a journal campaign: `tune explore STUDY --trials N --seed S` is started, SIGKILLed at a
random moment (alternately tune alone and its whole process group), and started again, K
times; then it runs to the end undisturbed. Part 2, PostgreSQL: three workers share one
study on a throw-away local server (tests/pg_fixture.py), one is SIGKILLed mid-run, the other
two finish, then the killed worker's command is run again.

Printed for each part:
  finished        trials finished at the end (want N)
  lost            finished trials (and journal records) seen before a kill and missing after it
  changed         finished trials (and journal records) whose stored content changed later
  measured twice  configurations built and run to a result more than once
  stuck           trials still unfinished after the final, undisturbed run (want 0)
  strays          processes started by a killed tune (compilers, programs, the guard) still
                  alive 3 s after the kill; found by a token in their environment
plus the SIGKILL count, duplicates, interrupted trials and leftover build directories.

    python bench/chaos.py                              # resnet18-vta, 80 trials, 12 kills, then PostgreSQL
    python bench/chaos.py --study conv2d-schedule --trials 20 --kills 10 --no-postgres
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import optuna  # noqa: E402

from tuner.storage import open_storage  # noqa: E402
from tuner.study import load_study  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
TOKEN_VAR = "TUNE_CHAOS_TOKEN"


# --- reading a campaign back ------------------------------------------------------------
def trials(spec: Any, results: Path, url: str | None) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(results, url)
    try:
        return optuna.load_study(study_name=spec.name, storage=storage).get_trials(deepcopy=False)
    except KeyError:      # not created yet (killed before its first write)
        return []


def summary(spec: Any, ts: list[optuna.trial.FrozenTrial]) -> list[tuple[int, bool, bool, str, str]]:
    """(number, finished, measured, config_key, status) per trial, through the trial record
    (tuner.result once the typed record has landed, else tuner.trials)."""
    out = []
    try:
        from tuner.result import record
    except ImportError:
        from tuner import trials as T
        for t in ts:
            r = T.record(t, spec.objectives)
            finished = r.status not in ("running", "waiting", "interrupted")
            measured = r.status in ("complete", "failed") or (r.status == "infeasible" and bool(r.attrs.get("build_key")))
            out.append((t.number, finished, measured, r.attrs.get("config_key", ""), r.status))
        return out
    for t in ts:
        r = record(t, spec.objectives)
        out.append((t.number, r.finished, r.measured, r.config_key, str(r.status)))
    return out


def finished_content(spec: Any, ts: list[optuna.trial.FrozenTrial]) -> dict[int, str]:
    """What is stored of every finished trial (state, values, params, attributes)."""
    done = {n for n, fin, *_ in summary(spec, ts) if fin}
    return {t.number: json.dumps([t.state.name, t.values, t.params, t.user_attrs], sort_keys=True, default=str)
            for t in ts if t.number in done}


def compare(before: dict[int, str], after: dict[int, str]) -> tuple[int, int]:
    lost = sum(1 for n in before if n not in after)
    changed = sum(1 for n in before if n in after and after[n] != before[n])
    return lost, changed


def measured_twice(rows: list[tuple[int, bool, bool, str, str]]) -> int:
    keys = Counter(key for _, fin, measured, key, _ in rows if fin and measured and key)
    return sum(c - 1 for c in keys.values())


# --- processes --------------------------------------------------------------------------
def with_token(token: str) -> list[int]:
    """Live processes whose environment holds TOKEN_VAR=token (every descendant of that tune)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if needle in (d / "environ").read_bytes():
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def strays_after_kill(token: str, grace_s: float = 3.0) -> int:
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and with_token(token):
        time.sleep(0.1)
    left = with_token(token)
    for pid in left:             # do not let them disturb what follows
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(left)


def start(argv: list[str], token: str) -> subprocess.Popen:
    env = {**os.environ, TOKEN_VAR: token, "TUNE_HEARTBEAT_S": os.environ.get("TUNE_HEARTBEAT_S", "2")}
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def kill(proc: subprocess.Popen, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def tune_argv(study: str, trials_n: int, seed: int, results: Path, url: str | None) -> list[str]:
    argv = [sys.executable, "-m", "tuner", "explore", study, "--trials", str(trials_n), "--seed", str(seed),
            "--results", str(results), "--no-progress", "--no-export"]
    return argv + (["--storage", url] if url else [])


def journal_lines(path: Path) -> list[bytes]:
    data = path.read_bytes() if path.exists() else b""
    return data[: data.rfind(b"\n") + 1].splitlines(keepends=True)     # a torn last line is not a record yet


def report(title: str, n: int, rows: list, lost: int, changed: int, strays: int, extra: str) -> dict[str, Any]:
    finished = sum(1 for _, fin, *_ in rows if fin)
    status = Counter(s for *_, s in rows)
    result = {"finished": finished, "of": n, "lost": lost, "changed": changed,
              "measured_twice": measured_twice(rows), "stuck": max(0, n - finished), "strays": strays}
    print(f"{title}")
    print(f"  finished {finished} (of {n})  lost {lost}  changed {changed}  measured twice {result['measured_twice']}"
          f"  stuck {result['stuck']}  strays {strays}")
    print(f"  {extra}; trials by status: " + ", ".join(f"{k} {v}" for k, v in sorted(status.items())))
    return result


# --- part 1: a journal campaign, killed K times -------------------------------------------
def journal_chaos(args: argparse.Namespace, root: Path, rng: random.Random) -> dict[str, Any]:
    spec = load_study(args.study)
    results = root / "journal"
    out = results / spec.name
    argv = tune_argv(args.study, args.trials, args.seed, results, None)
    before: dict[int, str] = {}
    lines: list[bytes] = []
    lost = changed = rec_lost = rec_changed = strays = 0
    kills = Counter()
    for i in range(args.kills):
        token = secrets.token_hex(8)
        proc = start(argv, token)
        at = rng.uniform(args.min_s, args.max_s)
        try:
            proc.wait(timeout=at)
            print(f"  run {i + 1} ended by itself before its kill at {at:.1f}s (exit {proc.returncode})")
            break
        except subprocess.TimeoutExpired:
            pass
        group = i % 2 == 1
        kill(proc, group)
        kills["group" if group else "tune"] += 1
        strays += strays_after_kill(token)
        now = finished_content(spec, trials(spec, out, None))
        lo, ch = compare(before, now)
        lost, changed = lost + lo, changed + ch
        before = {**before, **now}
        new_lines = journal_lines(out / "journal.log")
        rec_lost += max(0, len(lines) - len(new_lines))
        rec_changed += sum(1 for a, b in zip(lines, new_lines) if a != b)
        lines = new_lines
        print(f"  kill {i + 1:>2} at {at:4.1f}s ({'group' if group else 'tune '}): "
              f"{len(now)} finished, {len(lines)} journal records")
    token = secrets.token_hex(8)
    final = start(argv, token)
    _, err = final.communicate(timeout=args.final_timeout_s)
    if final.returncode != 0:
        print(f"  the final run exited {final.returncode}: {err.strip()[-500:]}")
    ts = trials(spec, out, None)
    now = finished_content(spec, ts)
    lo, ch = compare(before, now)
    new_lines = journal_lines(out / "journal.log")
    rec_lost += max(0, len(lines) - len(new_lines))
    rec_changed += sum(1 for a, b in zip(lines, new_lines) if a != b)
    leftovers = len(list((out / "builds").glob(".build-*")))
    return report(f"journal: {spec.name}, {sum(kills.values())} SIGKILLs ({kills['tune']} of tune alone, "
                  f"{kills['group']} of its process group), then the same command",
                  args.trials, summary(spec, ts), lost + lo, changed + ch, strays,
                  f"journal records: {len(new_lines)}, lost {rec_lost}, changed {rec_changed}; "
                  f"build temp dirs left: {leftovers}")


# --- part 2: three PostgreSQL workers, one killed -----------------------------------------
def postgres_chaos(args: argparse.Namespace, root: Path, rng: random.Random) -> dict[str, Any] | None:
    from pg_fixture import start_postgres, stop_postgres

    try:
        server = start_postgres()
    except BaseException as e:  # noqa: BLE001 - pytest.skip's exception says why (no server, no driver)
        print(f"postgresql: skipped ({e})")
        return None
    try:
        url = server.database()
        spec = load_study(args.study)
        argvs = [tune_argv(args.study, args.pg_trials, args.seed + i, root / "pg" / f"w{i}", url) for i in range(3)]
        tokens = [secrets.token_hex(8) for _ in argvs]
        procs = [start(a, t) for a, t in zip(argvs, tokens)]
        at = rng.uniform(args.min_s + 2, args.max_s + 4)
        time.sleep(at)
        victim = rng.randrange(3)
        kill(procs[victim], group=True)
        strays = strays_after_kill(tokens[victim])
        before = finished_content(spec, trials(spec, root, url))
        for i, p in enumerate(procs):
            if i != victim:
                p.communicate(timeout=args.final_timeout_s)
        again = start(argvs[victim], secrets.token_hex(8))
        _, err = again.communicate(timeout=args.final_timeout_s)
        if again.returncode != 0:
            print(f"  the killed worker's command, run again, exited {again.returncode}: {err.strip()[-500:]}")
        ts = trials(spec, root, url)
        lost, changed = compare(before, finished_content(spec, ts))
        codes = [p.returncode for i, p in enumerate(procs) if i != victim]
        return report(f"postgresql: {spec.name}, 3 workers, worker {victim} SIGKILLed (its process group) at "
                      f"{at:.1f}s, then its command again", args.pg_trials, summary(spec, ts), lost, changed,
                      strays, f"the other workers exited {codes}")
    finally:
        stop_postgres(server)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default="resnet18-vta")
    p.add_argument("--trials", type=int, default=80, help="the journal campaign's budget")
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--pg-trials", type=int, default=40)
    p.add_argument("--seed", type=int, default=0, help="tune's --seed, and the kill times'")
    p.add_argument("--min-s", type=float, default=0.5, help="earliest kill, seconds after a start")
    p.add_argument("--max-s", type=float, default=5.0, help="latest kill, seconds after a start")
    p.add_argument("--final-timeout-s", type=float, default=1200)
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the results directories")
    args = p.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="tune-chaos-"))
    print(f"chaos: {args.study}, seed {args.seed}, kills at {args.min_s}-{args.max_s}s after each start; in {root}")
    try:
        results = {"journal": journal_chaos(args, root, rng)}
        if not args.no_postgres:
            results["postgresql"] = postgres_chaos(args, root, rng)
        print(json.dumps(results))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    bad = [r for r in results.values() if r and (r["lost"] or r["changed"] or r["stuck"] or r["strays"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
