"""Measurements that span processes, on real tiny programs whose time the test controls.

The program sleeps in its kernel for a time chosen per launch (`--sleeps=2,40` alternates 2 ms
and 40 ms launches; each launch appends a line to a log and so knows its index), which
reproduces the across-process modes of a real machine without depending on it. Assertions use
gaps far wider than any scheduling noise (2 ms against 40 ms)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tuner.measure import compare_builds, environment
from tuner.measure.paired import cannot_beat
from tuner.program import ProgramSpec
from tuner.records import FailureReason, Rendering
from tuner.targets.local import LocalTarget
from tuner.targets.spec import MeasureSpec, TargetSpec, Toolchain

MODES_C = r"""
#include "tune_harness.h"
#include <time.h>
#ifndef TAG
#define TAG 0
#endif
static const char *log_path;
static double sleeps[64] = {1};
static int nsleeps = 1, crash_at = -1, wrong_at = -1, launch = 0, burn = 0;
static long long result = 42;

static int count_and_log(void) {
    int n = 0; char line[256];
    FILE *f = fopen(log_path, "r");
    if (f) { while (fgets(line, sizeof line, f)) n++; fclose(f); }
    f = fopen(log_path, "a");
    if (f) {
        char cpus[128] = "?"; FILE *s = fopen("/proc/self/status", "r");
        if (s) { while (fgets(line, sizeof line, s))
                     if (!strncmp(line, "Cpus_allowed_list:", 18)) sscanf(line + 18, "%127s", cpus);
                 fclose(s); }
        fprintf(f, "launch %d tag=%d cpus=%s\n", n, TAG, cpus); fclose(f);
    }
    return n;
}

void tune_setup(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--log=", 6)) log_path = argv[i] + 6;
        else if (!strncmp(argv[i], "--crash-at=", 11)) crash_at = atoi(argv[i] + 11);
        else if (!strncmp(argv[i], "--wrong-at=", 11)) wrong_at = atoi(argv[i] + 11);
        else if (!strcmp(argv[i], "--burn")) burn = 1;       /* compute instead of sleeping */
        else if (!strncmp(argv[i], "--sleeps=", 9)) {
            nsleeps = 0;
            for (char *s = argv[i] + 9; *s && nsleeps < 64; ) {
                sleeps[nsleeps++] = strtod(s, &s);
                if (*s == ',') s++;
            }
        }
    }
    launch = count_and_log();
    if (launch == crash_at) abort();
    if (launch == wrong_at) result = 43;
}
static volatile double sink;
void tune_kernel(void) {
    double ms = sleeps[launch % nsleeps];
    if (burn) {          /* spin on the CPU clock: the CPU time is fixed, the wall time is not */
        struct timespec a, b;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
        do { sink += 1.0; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b); }
        while ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) * 1e-6 < ms);
        return;
    }
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000 * (long)(ms / 1000)) * 1e6)};
    nanosleep(&ts, NULL);
}
const void *tune_output(size_t *nbytes) { *nbytes = sizeof result; return &result; }
"""


@pytest.fixture
def lab(tmp_path):
    (tmp_path / "modes.c").write_text(MODES_C)
    return tmp_path


def target(tmp: Path, cc: str = "gcc", **measure) -> LocalTarget:
    # sleeping kernels are off their core by design: keep every launch in the figure here
    # (test_contended_launches_are_left_out covers the exclusion with a kernel that computes)
    m = dict(method="wall", warmup=0, min_reps=3, max_reps=3, ci_rel=0.05, max_seconds=5, timeout_s=30,
             min_launches=3, max_launches=10, exclude_contended=False)
    m.update(measure)
    return LocalTarget(TargetSpec("modes", "local", toolchain=Toolchain(cc), measure=MeasureSpec(**m)),
                       tmp / "cache")


def program(tmp: Path, *args: str) -> ProgramSpec:
    return ProgramSpec(sources=(tmp / "modes.c",), ldflags=("-lm",), args=(f"--log={tmp / 'log'}", *args))


def log_lines(tmp: Path) -> list[str]:
    path = tmp / "log"
    return path.read_text().splitlines() if path.exists() else []


def measure(tmp: Path, t: LocalTarget, prog: ProgramSpec, cflags=("-O1",), race=None):
    built = t.build(prog, Rendering(cflags=cflags))
    assert not hasattr(built, "reason"), built
    return t.run(built, prog, Rendering(cflags=cflags), race=race)


def test_a_measurement_is_several_launches_with_raw_samples_per_launch(lab):
    m = measure(lab, target(lab, max_launches=4, ci_rel=0.0), program(lab, "--sleeps=2"))
    assert m.ok and len(log_lines(lab)) == 4 == len(m.launches) == m.metrics["launches"]
    assert all(len(x.samples_ms) == 3 and all(s >= 2.0 for s in x.samples_ms) for x in m.launches)
    assert m.metrics["reps"] == 12 and m.stopped == "max"
    assert all(a.started <= b.started for a, b in zip(m.launches, m.launches[1:]))


def test_the_figure_is_the_median_across_launches_not_one_process(lab):
    # launches alternate 40, 2, 40, 2, 40 ms: one process would say 40 or 2; the median of the
    # five launch medians is a 40 ms launch, and the interval spans both modes
    m = measure(lab, target(lab, min_launches=5, max_launches=5), program(lab, "--sleeps=40,2"))
    values = [x.value for x in m.launches]
    assert [v > 20 for v in values] == [True, False, True, False, True]
    assert m.metrics["latency_ms"] > 20
    assert m.metrics["latency_ci_low_ms"] < 10 < 20 < m.metrics["latency_ci_high_ms"]
    assert m.metrics["latency_ci_coverage"] == pytest.approx(0.9375)   # 5 launches: the range


def test_launches_stop_when_the_across_launch_interval_is_tight(lab):
    m = measure(lab, target(lab, ci_rel=0.5, max_launches=10), program(lab, "--sleeps=20"))
    assert m.stopped == "ci" and len(m.launches) == 6 == len(log_lines(lab))


def test_deterministic_methods_stay_one_launch(lab):
    m = measure(lab, target(lab, method="reported", min_launches=0, max_launches=0), program(lab, "--sleeps=1"))
    assert m.ok and len(log_lines(lab)) == 1 and m.stopped == "single"


def test_racing_stops_a_slow_candidate_after_two_launches(lab):
    race = lambda iv, metrics: iv.n >= 2 and iv.low > 10.0      # noqa: E731 - the best so far takes 10 ms
    m = measure(lab, target(lab), program(lab, "--sleeps=30"), race=race)
    assert m.ok and m.stopped == "raced" and len(log_lines(lab)) == 2


def test_a_crash_in_a_later_launch_fails_the_measurement(lab):
    m = measure(lab, target(lab), program(lab, "--sleeps=1", "--crash-at=2"))
    assert m.reason == FailureReason.CRASH and m.detail.startswith("launch 3: killed by SIGABRT")
    assert len(log_lines(lab)) == 3


def test_a_wrong_output_in_a_later_launch_is_caught(lab, tmp_path):
    from tuner.evaluate import Evaluator
    from tuner.objectives import Objective
    from tuner.space import SearchSpace
    from tuner.study import StudySpec

    prog = program(lab, "--sleeps=1", "--wrong-at=3")   # the 4th launch (index 3) differs
    spec = StudySpec(name="modes", file=lab / "modes.toml", description="", space=SearchSpace([], [], "modes"),
                     program=prog, target="modes",
                     objectives=(Objective("latency_ms", "minimize", "ms", "latency_ms"),), trials=1)
    outcome = Evaluator(spec, target(lab, ci_rel=0.0, max_launches=5), tmp_path / "res").evaluate({})
    assert outcome.reason == FailureReason.WRONG_OUTPUT and "(launch 4 of 5)" in outcome.measurement.detail


@pytest.mark.skipif(len(environment.available_cpus()) < 2 or shutil.which("taskset") is None,
                    reason="needs two cores and taskset")
def test_runs_and_builds_on_separate_cores(lab):
    cpus = environment.available_cpus()
    wrapper = lab / "cc.sh"        # a compiler that notes the cores it may run on
    wrapper.write_text(f"#!/bin/sh\ngrep Cpus_allowed_list /proc/self/status >> {lab / 'cc.log'}\nexec gcc \"$@\"\n")
    wrapper.chmod(0o755)
    m = measure(lab, target(lab, cc=str(wrapper), max_launches=3, min_launches=3), program(lab, "--sleeps=1"))
    assert m.ok
    run_cpus = {ln.split("cpus=")[1] for ln in log_lines(lab)}
    assert run_cpus == {str(cpus[-1])}
    builds = (lab / "cc.log").read_text().split()
    assert str(cpus[-1]) not in builds[1::2]                      # builds kept off the run core
    assert m.environment["run_cpus"] == str(cpus[-1])
    assert os.sched_getaffinity(0) == set(cpus)                   # tune's own affinity restored


def test_run_cpu_none_pins_nothing_and_a_list_pins_there(lab):
    m = measure(lab, target(lab, run_cpu="none", max_launches=3), program(lab, "--sleeps=1"))
    assert m.environment["run_cpus"] == "any" and m.environment["cores_watched"] == "all"
    with pytest.raises(ValueError):
        MeasureSpec(run_cpu="1-0").placement()


def test_the_environment_is_recorded(lab):
    m = measure(lab, target(lab, max_launches=3), program(lab, "--sleeps=5"))
    env = m.environment
    for key in ("cpu_model", "governor", "run_cpus", "build_cpus", "load1", "other_cpu_s", "steal_s",
                "other_frac", "contended", "wall_s"):
        assert key in env, key
    assert env["own_cpu_s"] >= 0 and env["wall_s"] > 0.04


def measure_sleeper_beside_a_spinner(lab, cpu: int):
    """Three launches of a program that sleeps, while a busy loop holds core `cpu`."""
    spinner = subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        return measure(lab, target(lab, max_launches=3, min_launches=3), program(lab, "--sleeps=100"))
    finally:
        spinner.kill()
        spinner.wait()


@pytest.mark.skipif(len(environment.available_cpus()) < 2 or shutil.which("taskset") is None,
                    reason="needs two cores and taskset")
def test_contention_on_the_run_core_is_seen(lab):
    m = measure_sleeper_beside_a_spinner(lab, environment.available_cpus()[-1])
    # the program sleeps, so nearly all the run core's busy time is the spinner's
    assert m.environment["contended"] and m.environment["other_frac"] > 0.5, m.environment


@pytest.mark.skipif(len(environment.available_cpus()) < 2 or shutil.which("taskset") is None,
                    reason="needs two cores and taskset")
def test_a_job_on_the_other_core_is_recorded_for_the_whole_machine(lab):
    """A pinned run keeps its core but shares the cache and the memory bus: a spinner on the
    build core does not contend for the run core, and shows in the whole machine's share."""
    m = measure_sleeper_beside_a_spinner(lab, environment.available_cpus()[0])
    env = m.environment
    n = len(environment.read_stat()) - 1
    assert env["machine_other_frac"] > 0.8 / n, env          # the spinner held one of n cores
    assert "of the whole machine" in environment.describe(env)


def test_compare_builds_interleaves_fresh_processes_abba(lab):
    t = target(lab, confirm_min_pairs=6, confirm_max_pairs=6, confirm_ci_rel=0.0)
    prog = program(lab, "--sleeps=4")
    ra, rb = Rendering(cflags=("-O1", "-DTAG=1")), Rendering(cflags=("-O1", "-DTAG=2"), args=("--sleeps=24",))
    ba, bb = t.build(prog, ra), t.build(prog, rb)
    c = compare_builds(t, prog, (ba, ra), (bb, rb))
    tags = "".join(ln.split("tag=")[1][0] for ln in log_lines(lab))
    assert tags == "122112211221"                                   # A B, B A, A B, ...
    assert c.pairs == 6 and c.ok and c.stopped == "max"
    assert 0.1 < c.ratio.low <= c.ratio.value <= c.ratio.high < 0.5   # 4 ms against 24 ms (and sleep overshoot)
    assert 0.12 < c.ratio.value < 0.3
    assert c.speedup.value == pytest.approx(1 / c.ratio.value)
    assert "environment" in c.extra and len(c.as_dict()["a"]) == 6


def test_compare_builds_races_out_early(lab):
    t = target(lab, confirm_min_pairs=6, confirm_max_pairs=16, confirm_ci_rel=0.0)
    prog = program(lab, "--sleeps=30")
    r = Rendering(cflags=("-O1",))
    b = t.build(prog, r)
    fast = Rendering(cflags=("-O1",), args=("--sleeps=3",))
    c = compare_builds(t, prog, (b, r), (b, fast), race=cannot_beat(1.0))
    assert c.stopped == "raced" and c.pairs == 6 and c.ratio.low > 1.0
    assert len(log_lines(lab)) == 12


def test_compare_builds_reports_a_failed_launch(lab):
    t = target(lab, confirm_min_pairs=6, confirm_max_pairs=6)
    prog = program(lab, "--sleeps=1")
    r = Rendering(cflags=("-O1",))
    b = t.build(prog, r)
    # launches are numbered across both builds: A0 B1, B2 A3, A4 B5 -- b's third launch crashes
    c = compare_builds(t, prog, (b, r), (b, Rendering(cflags=("-O1",), args=("--crash-at=5",))))
    assert not c.ok and c.which_failed == "b" and c.failure.reason == FailureReason.CRASH
    assert (len(c.a), len(c.b)) == (3, 2) and c.stopped == "failed"


@pytest.mark.skipif(len(environment.available_cpus()) < 2 or shutil.which("taskset") is None,
                    reason="needs two cores and taskset")
def test_contended_launches_are_left_out(lab):
    """Launches that share their core with a spinner are flagged and left out of the figure
    while enough clean ones exist; the spinner runs during the launches logged as 3 and 4."""
    run_cpu = environment.available_cpus()[-1]
    t = target(lab, min_launches=3, max_launches=6, ci_rel=0.0, exclude_contended=True, contention=0.2)
    prog = program(lab, "--burn", "--sleeps=20")
    r = Rendering(cflags=("-O1",))
    built = t.build(prog, r)
    once = t.launcher(built, prog, r)
    spinner = None

    def launch(i):
        nonlocal spinner
        if i == 3:
            spinner = subprocess.Popen(["taskset", "-c", str(run_cpu), sys.executable, "-c", "while True: pass"])
            time.sleep(0.2)
        if i == 5 and spinner is not None:
            spinner.kill()
            spinner.wait()
        return once(i)
    from tuner.measure.launches import launch_series
    try:
        m = launch_series(launch, t.spec.measure.launch_policy())
    finally:
        if spinner is not None and spinner.poll() is None:
            spinner.kill()
            spinner.wait()
    flags = [x.contended for x in m.launches]
    assert flags[3] and flags[4], [(x.offcore, x.preempted) for x in m.launches]
    assert all(x.offcore > 0.2 and x.preempted > 0 for x in m.launches if x.contended)
    assert all(x.cpu_ms and min(x.cpu_ms) >= 19.0 for x in m.launches)       # CPU time as asked
    assert m.metrics["contended_launches"] == sum(flags)
    # other jobs on this shared machine may contend the other launches too: either enough clean
    # launches remain and the figure is theirs alone, or none is left out
    clean = [x.value for x in m.launches if not x.contended]
    if len(clean) >= 3:
        assert m.metrics["launches_counted"] == len(clean)
        assert m.metrics["latency_ms"] == pytest.approx(statistics.median(clean))
    else:
        assert m.metrics["launches_counted"] == 6


def test_auto_placement_follows_the_threads_a_run_wants():
    from tuner.measure.environment import Placement, threads_wanted
    two, four = (0, 1), (0, 1, 2, 3)
    assert Placement.choose(available=two) == Placement((1,), (0,))
    assert Placement.choose(available=two, threads=2) == Placement((), (0,))       # OpenMP x2: anywhere
    assert Placement.choose(available=four, threads=2) == Placement((2, 3), (0, 1))
    assert Placement.choose(available=four, threads=None) == Placement((), (0, 1, 2))
    assert Placement.choose(available=(0,)) == Placement((), ())                   # one core: nothing to separate
    assert Placement.choose("none", "none", available=two) == Placement((), ())
    assert Placement.choose("0", "1", available=two) == Placement((0,), (1,))
    assert threads_wanted(["-O2"], {}) == 1
    assert threads_wanted(["-fopenmp"], {}) is None
    assert threads_wanted(["-fopenmp"], {"OMP_NUM_THREADS": "2"}) == 2
    assert threads_wanted(["-O3"], {"OMP_NUM_THREADS": "1"}) == 1
