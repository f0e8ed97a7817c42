"""Shared fixtures: a tiny study library in a temp dir, its own C program, and `tune` as a subprocess.

`lab` (a Lab) writes `kernel.c`, a fast target (`targets/fast.toml`) and a few objectives into
a temp dir, and makes that dir the working directory and $TUNE_LIBRARY, so every `tune` run
(a subprocess with cwd=tmp) keeps its results in tmp/results. Studies are written as
tmp/NAME.toml and passed to `tune` as paths.

kernel.c sums an array and reports what reached it, so one program serves every test:

    -DMODE=1 abort()   -DMODE=2 NULL write   -DMODE=3 infinite loop   -DMODE=5 syntax error
    -DMODE=4 a wrong result, but only when optimised (`#ifdef __OPTIMIZE__`): the -O0
             reference disagrees
    -DX=, -DY=         change the result and the metrics `cost` (minimize) / `gain` (maximize)
    -DECHO_D=          echoed as metric `define`;  $TUNE_TEST_E as metric `env`
    --echo-arg=V       echoed as metric `arg`;     --order=b,a,c as metric `order` (213)
    __clang__, __CHAR_UNSIGNED__, __FAST_MATH__ echoed as metrics clang, unsigned_char, fast_math
    --sleep-ms=MS      sleep in tune_setup (slow trials for the interrupt tests)
    --counter=FILE     append "start ..." and "done ..." lines (opt=0 for the -O0 reference)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import pytest

pytest_plugins = ["ci_skips"]      # tests/ci_skips.py: the fast subset, skips CI refuses

KERNEL_C = r"""
#include "tune_harness.h"
#ifndef MODE
#define MODE 0
#endif
#if MODE == 5
this is not C at all;
#endif
#ifndef X
#define X 0
#endif
#ifndef Y
#define Y 0
#endif
#ifndef ECHO_D
#define ECHO_D (-1)
#endif
#ifdef __OPTIMIZE__
#define OPTIMIZED 1
#else
#define OPTIMIZED 0
#endif
#define N 256

static int data[N];
static long long result;
static double echo_arg = -1, order = -1, sleep_ms = 0;
static const char *counter;

static void note(const char *what) {
    if (!counter) return;
    FILE *f = fopen(counter, "a");
    if (!f) return;
    fprintf(f, "%s opt=%d mode=%d x=%d y=%d\n", what, OPTIMIZED, MODE, X, Y);
    fclose(f);
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--echo-arg=", 11)) echo_arg = atof(argv[i] + 11);
        else if (!strncmp(argv[i], "--sleep-ms=", 11)) sleep_ms = atof(argv[i] + 11);
        else if (!strncmp(argv[i], "--counter=", 10)) counter = argv[i] + 10;
        else if (!strncmp(argv[i], "--order=", 8)) {
            order = 0;
            for (const char *s = argv[i] + 8; *s; s++)
                if (*s != ',') order = order * 10 + (*s - 'a' + 1);
        }
    }
    note("start");
    for (int i = 0; i < N; i++) data[i] = i * 7 % 13;
    if (sleep_ms > 0) {
        struct timespec ts = {(time_t)(sleep_ms / 1000), ((long)sleep_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
#if MODE == 1
    fprintf(stderr, "tune-test: about to abort\n");
    abort();
#elif MODE == 2
    fprintf(stderr, "tune-test: about to write through NULL\n");
    fflush(stderr);
    *(volatile int *)0 = 1;
#elif MODE == 3
    fprintf(stderr, "tune-test: about to hang\n");
    fflush(stderr);
    volatile int spin = 1;
    while (spin) {}
#endif
}

void tune_kernel(void) {
    long long s = 0;
    for (int i = 0; i < N; i++) s += data[i];
    result = s + X * 1000 + Y;
#if MODE == 4 && defined(__OPTIMIZE__)
    result += 1;
#endif
}

const void *tune_output(size_t *nbytes) { *nbytes = sizeof result; return &result; }

void tune_finish(void) {
    const char *e = getenv("TUNE_TEST_E");
    tune_metric("define", ECHO_D);
    tune_metric("env", e ? atof(e) : -1);
    tune_metric("arg", echo_arg);
    tune_metric("order", order);
#ifdef __clang__
    tune_metric("clang", 1);
#else
    tune_metric("clang", 0);
#endif
#ifdef __CHAR_UNSIGNED__
    tune_metric("unsigned_char", 1);
#else
    tune_metric("unsigned_char", 0);
#endif
#ifdef __FAST_MATH__
    tune_metric("fast_math", 1);
#else
    tune_metric("fast_math", 0);
#endif
    tune_metric("cost", 3 * X + 5 * Y + (X * Y) % 4);
    tune_metric("gain", X * X + 2 * Y);
    note("done");
}
"""

FAST_TARGET = """
description = "tests: this machine, two repetitions"
driver = "local"
[toolchain]
cc = "gcc"
[measure]
method = "wall"
warmup = 0
min_reps = 1
max_reps = 2
ci_rel = 1.0
max_seconds = 1
timeout_s = 30
min_launches = 1
max_launches = 1
"""

OBJECTIVES = {
    "cost": 'description = "test cost"\ndirection = "minimize"\nunit = ""\nmetric = "cost"\n',
    "gain": 'description = "test gain"\ndirection = "maximize"\nunit = ""\nmetric = "gain"\n',
}

TUNE_TIMEOUT_S = 240   # generous: the machine is shared, a hung `tune` should still fail the test


# two 20-value int knobs: a 400-point grid for the replay campaign tests (see grid_rows)
GRID_XY = """
[knobs.x]
kind = "int"
low = 0
high = 19
define = "X"

[knobs.y]
kind = "int"
low = 0
high = 19
define = "Y"
"""


def write_library(root: Path) -> None:
    """The temp library every campaign test starts from: kernel.c, target `fast`, objectives."""
    (root / "kernel.c").write_text(KERNEL_C)
    (root / "targets").mkdir()
    (root / "targets" / "fast.toml").write_text(FAST_TARGET)
    (root / "objectives").mkdir()
    for name, text in OBJECTIVES.items():
        (root / "objectives" / f"{name}.toml").write_text(text)


class Lab:
    """A temp library: kernel.c, target `fast`, objectives `cost` and `gain`, and studies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        write_library(root)

    # --- studies -----------------------------------------------------------------------
    def counter(self, study: str) -> Path:
        return self.root / f"{study}.counter"

    def study(self, name: str, knobs: str, *, objectives: Sequence[str] = ("cost", "gain"),
              constraints: Sequence[str] = (), verify: str = "exact", args: Sequence[str] = (),
              program: str = "", meta: str = "", target: str = "fast") -> Path:
        """Write tmp/NAME.toml around `knobs` (TOML text of [knobs.*] tables); return its path."""
        prog_args = [f"--counter={self.counter(name)}", *args]
        text = (
            f'[study]\ndescription = "test study {name}"\ntarget = "{target}"\n'
            f"objectives = {json.dumps(list(objectives))}\ntrials = 4\n{meta}\n\n"
            f'[program]\nsources = ["./kernel.c"]\ncflags = ["-O1"]\nldflags = ["-lm"]\n'
            f"args = {json.dumps(prog_args)}\nverify = \"{verify}\"\n{program}\n\n"
            f"{knobs}\n"
        )
        for c in constraints:
            text += f"\n[[constraints]]\nexpr = {json.dumps(c)}\n"
        path = self.root / f"{name}.toml"
        path.write_text(text)
        return path

    def counter_lines(self, study: str, what: str = "", optimised_only: bool = True) -> list[str]:
        path = self.counter(study)
        lines = path.read_text().splitlines() if path.exists() else []
        return [ln for ln in lines if ln.startswith(what) and (not optimised_only or " opt=1 " in ln)]

    # --- running tune ----------------------------------------------------------------------
    def argv(self, *args: Any) -> list[str]:
        return [sys.executable, "-m", "tuner", *map(str, args)]

    def tune(self, *args: Any, timeout: float = TUNE_TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, env=self.env())

    def popen(self, *args: Any) -> subprocess.Popen:
        """`tune` in the background; SIGINT reaches it as Ctrl-C would even if ours is ignored."""
        return subprocess.Popen(self.argv(*args), cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def ok(self, *args: Any) -> subprocess.CompletedProcess:
        proc = self.tune(*args)
        assert proc.returncode == 0, f"tune {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stderr}"
        return proc

    def json(self, *args: Any) -> Any:
        return json.loads(self.ok(*args, "--format", "json").stdout)

    def fork(self, *args: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """`tune ARGS` in a forked child: the real CLI, real signals (a SIGKILL kills the child
        only), without the half second of Python start-up and imports a subprocess costs.
        returncode is negative for a signal, as with subprocess."""
        out_path, err_path = self.root / ".fork.out", self.root / ".fork.err"
        _preload()
        pid = os.fork()
        if pid == 0:                          # the child: never returns into pytest
            code = 70
            try:
                with open(out_path, "wb") as o, open(err_path, "wb") as e:
                    os.dup2(o.fileno(), 1)
                    os.dup2(e.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                os.chdir(self.root)
                os.environ.clear()
                os.environ.update({**self.env(), **(env or {})})
                from tuner.cli.main import main
                code = main([str(a) for a in args])
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        return subprocess.CompletedProcess([*args], rc, out_path.read_text(), err_path.read_text())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUNE_")}
        env["TUNE_LIBRARY"] = str(self.root)
        return env

    # --- reading a campaign back (in-process, read-only) ---------------------------------
    def records(self, study: Path) -> list:
        from tuner import trials as T
        from tuner.studystore import open_study
        from tuner.study import load_study

        spec = load_study(str(study))
        s = open_study(spec, self.root / "results" / spec.name, None, create=False)
        return T.records(s, spec.objectives)

    def journal(self, study: Path) -> Path:
        return self.root / "results" / study.stem / "journal.log"


def _preload() -> None:
    """Import what `tune` imports (every command, the surrogate) once, in the parent: forked
    children then start in milliseconds."""
    from tuner.cli.main import build_parser, quiet_optuna
    import tuner.surrogate  # noqa: F401

    build_parser()
    quiet_optuna()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def pids_with(marker: str) -> list[int]:
    """Live processes (not this one) whose command line holds `marker` (zombies have an empty
    cmdline): how the process tests see what outlived what."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker.encode() in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """Assert the `tune` run failed with `code` and exactly one line on stderr, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, f"exit {proc.returncode}, want {code}; stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, f"want one line on stderr, got {len(lines)}:\n{proc.stderr}"
    return lines[0]


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    for key in [k for k in os.environ if k.startswith("TUNE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TUNE_LIBRARY", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return Lab(tmp_path)


# --- the replay target: recorded measurements, no compiler --------------------------------------
def replay_metrics(x: int, y: int) -> dict[str, float]:
    """What kernel.c reports for -DX=x -DY=y (cost minimised, gain maximised)."""
    return {"cost": 3 * x + 5 * y + (x * y) % 4, "gain": x * x + 2 * y}


def write_replay(lab: Lab, name: str, rows: list[dict[str, Any]], run_ms: float = 0) -> str:
    """targets/NAME.toml replaying NAME.csv; each row: param.* columns, metric.* columns, and
    optionally state/reason/detail. Returns the target name."""
    import csv

    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(lab.root / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (lab.root / "targets" / f"{name}.toml").write_text(
        f'description = "tests: replay {name}.csv"\ndriver = "replay"\n'
        f'[transport]\nsource = "../{name}.csv"\nrun_ms = {run_ms}\n')
    return name


def grid_rows(n: int = 20, fail: Any = None) -> list[dict[str, Any]]:
    """Every (x, y) in [0, n)^2 with replay_metrics; `fail(x, y)` -> (reason, detail) or None."""
    rows = []
    for x in range(n):
        for y in range(n):
            row: dict[str, Any] = {"param.x": x, "param.y": y}
            failure = fail(x, y) if fail else None
            if failure:
                row.update(state="failed", reason=failure[0], detail=failure[1])
            else:
                row.update({f"metric.{k}": v for k, v in replay_metrics(x, y).items()}, state="COMPLETE")
            rows.append(row)
    return rows

