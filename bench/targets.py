"""Cost per trial of each target for the same small program: build, copy, run.

Builds programs/conv2d/conv2d.c at -O2 with a small shape (`--h 7 --w 5 --c 8 --k 4`) N
times per target (a fresh cache directory per invocation and a different, unused -D per
trial, so every build is a real compile) and times, per trial:

    build s   Build.build_s (the compiler and linker processes)
    copy s    the driver's deploy() on the fresh build (ssh: the binary over the ssh channel);
              "-" where deploy() is a no-op (local, qemu)
    run s     the Measurement's wall_s (the process, or the ssh round trip, as execute() saw it)
    total s   the whole trial end to end (build + deploy + run + the Python around them)

plus a one-time "setup s" per target (probe(): qemu builds its plugin there, ssh starts the
multiplexed connection). Each column is the median over the trials, so `total` need not be
the sum of the other medians. The ssh targets talk to a throw-away sshd on 127.0.0.1
(tests/sshd_fixture.py); ssh-aarch64 runs the static cross build under qemu-aarch64 there
(run_prefix), so its run time is emulator time, not an AArch64 board's.

For qemu-aarch64 it also prints the instruction counts (are they identical across runs?)
and the counting plugin's overhead: the same binary run under plain qemu-aarch64 without
the plugin (run_process) against the target's own run with it, wall time and CPU time
(RUSAGE_CHILDREN deltas), `--pairs` pairs per trial, alternating (the trial's own
plugin run, plain, plugin, ..., plain).

    python bench/targets.py                       # 5 trials per target, about a minute
    python bench/targets.py --trials 10 --targets local,qemu-aarch64
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tuner.program import ProgramSpec  # noqa: E402
from tuner.records import Build, Rendering  # noqa: E402
from tuner.targets import Target, load_target, make_target  # noqa: E402
from tuner.targets.local import run_process  # noqa: E402

CONV = ROOT / "programs" / "conv2d" / "conv2d.c"
SMALL = ("--h", "7", "--w", "5", "--c", "8", "--k", "4")
TARGETS = ("local", "qemu-aarch64", "ssh", "ssh-aarch64")
SSH_TARGETS = {"ssh": {}, "ssh-aarch64": {"run_prefix": ["qemu-aarch64"]}}


def program() -> ProgramSpec:
    return ProgramSpec(sources=(CONV,), cflags=("-std=c11",), ldflags=("-lm",), args=SMALL)


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Skip(Exception):
    pass


def start_server(root: Path):
    """The tests' throw-away sshd, or Skip with the reason it cannot start."""
    try:
        import sshd_fixture
    except ImportError as e:   # sshd_fixture imports pytest
        raise Skip(f"cannot import tests/sshd_fixture.py: {e}") from None
    skipped = getattr(getattr(sshd_fixture.pytest, "skip", None), "Exception", Exception)
    try:
        return sshd_fixture.start_sshd(root)
    except (Exception, skipped) as e:   # pytest.skip raises a BaseException
        raise Skip(f"sshd did not start: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}") from None


def bench_target(target: Target, n: int, nonce: str, pairs: int) -> dict:
    """Time n fresh builds and runs of the small conv2d on one target."""
    prog = program()
    copies = type(target).deploy is not Target.deploy
    rows: dict[str, list] = {k: [] for k in ("build", "copy", "run", "total", "insn", "insn_total",
                                                "plain_wall", "plugin_wall", "plain_cpu", "plugin_cpu")}
    counting = getattr(target, "counting", False)
    for i in range(n):
        rendering = Rendering(cflags=("-O2", f"-DTUNE_BENCH_TRIAL={nonce}_{i}"))
        t0 = time.perf_counter()
        build = target.build(prog, rendering)
        if not isinstance(build, Build):
            raise RuntimeError(f"build failed: {build.reason}: {build.detail}")
        if build.cached:
            raise RuntimeError("the build came from the cache; the trial would not be a real compile")
        if copies:
            c0 = time.perf_counter()
            target.deploy(build)        # fresh key: a real copy; run() below reuses it
            rows["copy"].append(time.perf_counter() - c0)
        cpu0 = cpu_children()
        m = target.run(build, prog, rendering)
        cpu1 = cpu_children()
        rows["total"].append(time.perf_counter() - t0)
        if not m.ok:
            raise RuntimeError(f"run failed: {m.reason}: {m.detail}")
        rows["build"].append(build.build_s)
        rows["run"].append(m.metrics["wall_s"])
        if not counting:
            continue
        rows["insn"].append(int(m.metrics["instructions"]))
        rows["insn_total"].append(int(m.metrics["instructions_total"]))
        # the plugin's overhead: the same binary, same env and args, without the plugin
        env = target.spec.measure.harness_env()
        timeout = target.spec.measure.timeout_s
        command = [*build.command, *prog.args]
        plain_argv = [*target.emulator_argv(), *command]
        rows["plugin_wall"].append(m.metrics["wall_s"])
        rows["plugin_cpu"].append(cpu1 - cpu0)
        for p in range(2 * pairs - 1):   # after the trial's own plugin run: plain, plugin, ..., plain
            plain = p % 2 == 0
            cpu0 = cpu_children()
            if plain:
                with tempfile.TemporaryDirectory(prefix="tune-bench-") as tmp:
                    done = run_process(plain_argv, env, timeout, cwd=tmp)
            else:
                done = target.execute(command, env, timeout, False)
            cpu = cpu_children() - cpu0
            if done.returncode != 0 or done.transport_error or "@tune " not in done.stdout:
                raise RuntimeError(f"{'plain' if plain else 'plugin'} run failed: "
                                   f"{done.transport_error or done.stderr.strip()[-300:]}")
            key = "plain" if plain else "plugin"
            rows[f"{key}_wall"].append(done.wall_s)
            rows[f"{key}_cpu"].append(cpu)
            if not plain:
                pm = target.parse(done, timeout)
                rows["insn"].append(int(pm.metrics["instructions"]))
                rows["insn_total"].append(int(pm.metrics["instructions_total"]))
    return rows


def describe_counts(values: list[int]) -> str:
    distinct = sorted(set(values))
    if len(distinct) == 1:
        return f"{distinct[0]:,} on {len(values)} of {len(values)} runs (identical)"
    return (f"{distinct[0]:,}..{distinct[-1]:,} over {len(values)} runs "
            f"({len(distinct)} distinct values, spread {distinct[-1] - distinct[0]:,})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=5, help="builds and runs per target (default 5)")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}")
    ap.add_argument("--pairs", type=int, default=3,
                    help="qemu-aarch64: plain/plugin run pairs per trial for the overhead (default 3)")
    args = ap.parse_args()
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown or args.trials < 1 or args.pairs < 1:
        ap.error(f"unknown targets {unknown}" if unknown else "--trials and --pairs must be >= 1")

    nonce = secrets.token_hex(4)
    work = Path(tempfile.mkdtemp(prefix="tune-bench-targets-"))
    server, ssh_skip = None, ""
    results: dict[str, dict | str] = {}
    print(f"conv2d.c {' '.join(SMALL)}, -O2, {args.trials} trials per target, each a fresh build; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    try:
        if any(n in SSH_TARGETS for n in names):
            try:
                server = start_server(work / "sshd")
            except Skip as e:
                ssh_skip = str(e)
        for name in names:
            if name in SSH_TARGETS:
                if server is None:
                    results[name] = f"skipped: {ssh_skip}"
                    continue
                spec = load_target(name, server.transport(**SSH_TARGETS[name]))
            else:
                spec = load_target(name)
            target = make_target(spec, work / f"cache-{name}")
            try:
                t0 = time.perf_counter()
                avail = target.probe()
                setup = time.perf_counter() - t0
                if not avail.usable:
                    results[name] = f"skipped: {avail.reason}"
                    continue
                rows = bench_target(target, args.trials, nonce, args.pairs)
                rows["setup"] = setup
                results[name] = rows
            except RuntimeError as e:
                results[name] = f"failed: {e}"
            finally:
                target.cleanup()
    finally:
        if server is not None:
            import sshd_fixture
            sshd_fixture.stop_sshd(server)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'target':<14}{'setup s':>9}{'build s':>9}{'copy s':>9}{'run s':>9}{'total s':>9}   (medians per trial)")
    for name in names:
        r = results[name]
        if isinstance(r, str):
            print(f"{name:<14}{r}")
            continue
        copy = f"{med(r['copy']):9.3f}" if r["copy"] else f"{'-':>9}"
        print(f"{name:<14}{r['setup']:9.3f}{med(r['build']):9.3f}{copy}{med(r['run']):9.3f}{med(r['total']):9.3f}")
    q = results.get("qemu-aarch64")
    if isinstance(q, dict) and q["insn"]:
        print("\nqemu-aarch64 instruction counts (every plugin run, all fresh builds):")
        print(f"  kernel region      {describe_counts(q['insn'])}")
        print(f"  whole program      {describe_counts(q['insn_total'])}")
        pw, uw = med(q["plugin_wall"]), med(q["plain_wall"])
        pc, uc = med(q["plugin_cpu"]), med(q["plain_cpu"])
        print(f"qemu-aarch64 counting-plugin overhead ({len(q['plain_wall'])} plain / "
              f"{len(q['plugin_wall'])} plugin runs, medians):")
        print(f"  wall  plain {uw:.4f} s   plugin {pw:.4f} s   {100 * (pw / uw - 1):+.0f}%")
        print(f"  CPU   plain {uc:.4f} s   plugin {pc:.4f} s   {100 * (pc / uc - 1):+.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
