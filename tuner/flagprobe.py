"""What the installed compiler and this CPU accept: the queries and probes behind `tune flags`.

tuner.flagspace decides which candidates become knobs; this module only asks: the compiler's
version and target lists, whether an argv group compiles a small C file with `-O2 -Werror`
(batched, bisected on failure, in parallel), and which -march names produce programs that RUN
here (a probe checks with __builtin_cpu_supports that every ISA extension the -march enables is
present; an exit code or SIGILL excludes the name).
"""
from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHECK_SRC = r"""
float a[256], b[256];
int g(int *p, int n) { int s = 0; for (int i = 0; i < n; i++) s += p[i] * 3; return s; }
void f(int n) { for (int i = 0; i < n; i++) a[i] = a[i] * b[i] + 1.0f; }
int main(void) { f(256); return 0; }
"""

# ISA extensions that -march may enable; a name is usable only if the CPU has all it enables.
CPU_FEATURES = ["sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "bmi",
                "bmi2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512er",
                "avx512pf", "avx512vnni", "avx512vbmi", "avx512vbmi2", "avx512ifma",
                "avx512bitalg", "avx512vpopcntdq", "avx512bf16", "avx5124vnniw",
                "avx5124fmaps", "avx512vp2intersect", "gfni", "vaes", "vpclmulqdq", "fma4",
                "xop", "sse4a"]


def run_src(cmd: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    """One compiler query or probe (argv, no shell), in the C locale so its output parses."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LC_ALL": "C"})


class Checker:
    """Which argv groups the compiler accepts with -Werror: batches, bisected on failure."""

    def __init__(self, cc: str, workdir: Path, jobs: int):
        self.cc, self.dir, self.jobs = cc, workdir, jobs
        self.src = workdir / "check.c"
        self.src.write_text(CHECK_SRC)
        self.compiles = 0

    def accepts(self, args: list[str]) -> bool:
        self.compiles += 1
        proc = run_src([self.cc, "-O2", "-Werror", *args, "-c", str(self.src), "-o", os.devnull])
        return proc.returncode == 0

    def bisect(self, items: list[list[str]]) -> list[bool]:
        """Which argv groups are accepted; one compile per batch when all are fine."""
        if not items:
            return []
        if self.accepts([a for it in items for a in it]):
            return [True] * len(items)
        if len(items) == 1:
            return [False]
        mid = len(items) // 2
        return self.bisect(items[:mid]) + self.bisect(items[mid:])

    def check_all(self, items: list[list[str]], batch: int = 24) -> list[bool]:
        chunks = [items[i:i + batch] for i in range(0, len(items), batch)]
        with ThreadPoolExecutor(self.jobs) as pool:
            parts = list(pool.map(self.bisect, chunks))
        return [ok for part in parts for ok in part]


def version_of(cc: str) -> str:
    return run_src([cc, "--version"]).stdout.splitlines()[0].strip()


def gcc_target_lists(cc: str) -> tuple[list[str], list[str], list[str]]:
    out = run_src([cc, "-Q", "--help=target"]).stdout.splitlines()

    def after(header: str) -> list[str]:
        for i, line in enumerate(out):
            if header in line and i + 1 < len(out):
                return out[i + 1].split()
        return []
    march = after("Known valid arguments for -march= option")
    mtune = after("Known valid arguments for -mtune= option")
    widths = [w for w in after("Known preferred register vector length") if w != "none"]
    return march, mtune, widths or ["128", "256", "512"]


def clang_target_lists(cc: str) -> tuple[list[str], list[str], list[str]]:
    proc = run_src([cc, "--print-supported-cpus"])
    text = proc.stdout + proc.stderr
    names, started = [], False
    for line in text.splitlines():
        if line.startswith("Available CPUs"):
            started = True
            continue
        if started:
            if not line.strip() or line.startswith("Use -mcpu"):
                if names:
                    break
                continue
            names.append(line.split()[0])
    names = names + ["native"] if "native" not in names else names
    return names, list(names), ["128", "256", "512"]


def known_cpu_features(cc: str, workdir: Path, jobs: int) -> list[str]:
    """The CPU_FEATURES names this compiler's __builtin_cpu_supports understands."""
    def ok(feat: str) -> bool:
        src = workdir / f"feat_{re.sub(r'[^a-z0-9]', '_', feat)}.c"
        src.write_text(f'int main(void) {{ return __builtin_cpu_supports("{feat}"); }}\n')
        return run_src([cc, "-fsyntax-only", "-Werror", str(src)], 60).returncode == 0
    with ThreadPoolExecutor(jobs) as pool:
        return [f for f, good in zip(CPU_FEATURES, pool.map(ok, CPU_FEATURES)) if good]


def march_probe_src(features: list[str] = CPU_FEATURES) -> str:
    checks = []
    for feat in features:
        macro = "__" + feat.upper().replace(".", "_") + "__"
        checks.append(f'#ifdef {macro}\n  if (!__builtin_cpu_supports("{feat}")) '
                      f'{{ puts("{feat}"); return 3; }}\n#endif')
    body = "\n".join(checks)
    return (
        "#include <stdio.h>\n#include <stdlib.h>\n"
        "float a[1024], b[1024];\n"
        "int main(int argc, char **argv) {\n  __builtin_cpu_init();\n" + body + "\n"
        "  for (int i = 0; i < 1024; i++) { a[i] = (float)i * 0.5f; b[i] = (float)(argc + i); }\n"
        "  for (int r = 0; r < 64; r++) for (int i = 0; i < 1024; i++) a[i] = a[i] * b[i] * 1e-3f + 1.0f;\n"
        "  double s = 0; for (int i = 0; i < 1024; i++) s += a[i];\n"
        "  printf(\"%g\\n\", s); return s > 0 ? 0 : 4;\n}\n")


def check_march(cc: str, names: list[str], workdir: Path, jobs: int) -> tuple[list[str], dict[str, str]]:
    """The -march names that compile, link and run here, and why each other one does not."""
    src = workdir / "march_probe.c"
    src.write_text(march_probe_src(known_cpu_features(cc, workdir, jobs)))
    # (every feature name above is known to __builtin_cpu_supports of gcc 12 and clang 14;
    #  with another compiler an unknown name makes every probe fail to compile, visibly)

    def one(name: str) -> tuple[str, str | None]:
        exe = workdir / f"probe_{re.sub(r'[^A-Za-z0-9]', '_', name)}"
        proc = run_src([cc, "-O2", "-Werror", f"-march={name}", str(src), "-o", str(exe)])
        if proc.returncode != 0:
            errs = [l for l in proc.stderr.splitlines() if "error" in l] or ["compile failed"]
            return name, "does not compile: " + errs[0].split("error:", 1)[-1].strip()[:100]
        try:
            run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return name, "probe timed out"
        if run.returncode < 0:
            return name, f"killed by signal {-run.returncode} (illegal instruction?)"
        if run.returncode == 3:
            return name, "CPU lacks " + run.stdout.strip()
        if run.returncode != 0:
            return name, f"probe exit {run.returncode}"
        return name, None
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(one, names))
    return [n for n, why in results if why is None], {n: why for n, why in results if why is not None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"
