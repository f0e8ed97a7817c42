"""Bad input, one case per line: every case is refused when the study or target is loaded
(before anything is built), with exit 2, one line on stderr naming the file and the key, no
traceback, and nothing under results/ changed.

A case is (where, snippet, key):
- where: the section the TOML snippet goes into (`study`, `program`, `knob` = [knobs.x],
  `toolchain` / `measure` / `target` = the case's target file), `file` (appended at the end),
  `top` (before [study]), or `argv` (the snippet is the command line; STUDY is the study file);
- a snippet line `key = value` replaces the base file's line for that key, or adds it;
- key: what the one-line message must name.

The cases run in-process through the CLI entry point (`tuner.cli.main.main`, what the console
script calls), so a traceback surfaces as the test's own exception; the ones marked `SUB` run
again as a real `tune` subprocess.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from conftest import needs_gcc, one_line_error, write_library
from tuner.cli.main import main

STUDY_LINES = {
    "top": [],
    "study": ['description = "bad-input base"', 'target = "fast"', 'objectives = ["cost", "gain"]', "trials = 2"],
    "program": ['sources = ["./kernel.c"]', 'cflags = ["-O1"]', 'args = []'],
    "knob": ['kind = "int"', "low = 0", "high = 10", 'define = "X"'],
    "file": ['[knobs.mode]', 'kind = "categorical"', 'choices = ["a", "b"]', 'to = "none"', "",
             "[knobs.y]", 'kind = "int"', "low = 0", "high = 3", 'to = "none"', "when = \"mode == 'b'\""],
}
TARGET_LINES = {
    "target": ['description = "bad-input target"', 'driver = "local"'],
    "toolchain": ['cc = "gcc"'],
    "measure": ['method = "wall"', "warmup = 0", "min_reps = 1", "max_reps = 2", "ci_rel = 1.0",
                "max_seconds = 1", "timeout_s = 30"],
}
EXPLORE = ("explore", "STUDY", "--trials", "1", "--no-progress", "--no-export")
SUB = "subprocess"    # also run this case as a real `tune` process

X1000 = "+".join(["x"] * 1000)

CASES = [
    # --- [study] -------------------------------------------------------------------------
    ("study", "constants = 5", "study.constants"),
    ("study", "constants = {n = [1, 2]}", "study.constants.n"),
    ("study", "constants = {n = {a = 1}}", "study.constants.n"),
    ("study", "reference_point = 5", "study.reference_point"),
    ("study", 'reference_point = {cost = "high", gain = 0}', "study.reference_point.cost"),
    ("study", "reference_point = {speed = 1, cost = 1, gain = 1}", "study.reference_point.speed"),
    ("study", "reference_point = {cost = 1}", "study.reference_point"),
    ("study", "include = [{file = 5}]", "study.include[0].file"),
    ("study", "include = [5]", "study.include[0]"),
    ("study", 'include = "knobs.toml"', "study.include"),
    ("study", 'include = [{file = "inc.toml", tags = "fast"}]', "study.include[0].tags"),
    ("study", 'include = [{file = "inc.toml", colour = "red"}]', "study.include[0].colour"),
    ("study", 'include = ["missing.toml"]', "missing.toml"),
    ("study", "trials = true", "study.trials"),
    ("study", "trials = 0", "study.trials"),
    ("study", "trials = 2.5", "study.trials"),
    ("study", "sampler = 5", "study.sampler"),
    ("study", 'sampler = "annealing"', "study.sampler"),
    ("study", "target = 5", "study.target"),
    ("study", 'target = ["fast"]', "study.target"),
    ("study", 'target = "no-such-target"', "no-such-target"),
    ("study", 'targets = "fast"', "study.targets"),
    ("study", 'objectives = "cost"', "study.objectives"),
    ("study", "objectives = [5]", "study.objectives"),
    ("study", "objectives = []", "study.objectives"),
    ("study", 'objectives = ["cost", "cost"]', "study.objectives"),
    ("study", 'objectives = ["speed"]', "study.objectives"),
    ("study", "baseline = 5", "study.baseline"),
    ("study", "baseline = {x = 11}", "study.baseline"),
    ("study", "baseline = {z = 1}", "study.baseline"),
    ("study", "baseline = {y = 1}", "study.baseline"),          # y is inactive while mode = 'a'
    ("study", "description = 5", "study.description"),
    ("top", "colour = 1", "colour"),
    ("top", "knobs = 5", "TOML syntax error"),      # clashes with [knobs.x]: a syntax error naming the line
    ("top", "constraints = 5", "constraints"),
    ("top", 'study = "x"', "TOML syntax error"),
    # --- [program] -----------------------------------------------------------------------
    ("program", "template = 5", "program.template"),
    ("program", 'template = "./no-such.c.j2"', "program.template"),
    ("program", "params = 5", "program.params"),
    ("program", "params = {N = {a = 1}}", "program.params.N"),
    ("program", 'params = {"not a name" = 1}', "program.params.not a name"),
    ("program", 'timeout_s = "10"', "program.timeout_s"),
    ("program", "timeout_s = -5", "program.timeout_s"),
    ("program", "timeout_s = 0", "program.timeout_s"),
    ("program", "timeout_s = true", "program.timeout_s"),
    ("program", "timeout_s = nan", "program.timeout_s"),
    ("program", "module = 5", "program.module"),
    ("program", 'language = "fortran"', "program.language"),
    ("program", 'sources = "./kernel.c"', "program.sources"),
    ("program", 'sources = ["./missing.c"]', "program.sources"),
    ("program", 'cflags = "-O2"', "program.cflags"),
    ("program", "verify = 5", "program.verify"),
    ("program", 'verify = "rtol=abc"', "program.verify"),
    ("program", 'colour = "red"', "program.colour"),
    # --- a knob ([knobs.x]) --------------------------------------------------------------
    ("knob", "tags = 5", "knobs.x.tags"),
    ("knob", 'tags = "fast"', "knobs.x.tags"),
    ("knob", "when = 5", "knobs.x.when"),
    ("knob", 'when = "mode =="', "knobs.x.when"),
    ("knob", 'when = "nope > 1"', "knobs.x.when"),
    ("knob", 'to = "arg"\narg = "{1}"', "knobs.x.arg", SUB),
    ("knob", 'to = "arg"\narg = 5', "knobs.x.arg"),
    ("knob", 'to = "arg"\narg = "--x={y}"', "knobs.x.arg"),
    ("knob", 'to = "arg"\narg = "--x={"', "knobs.x.arg"),
    ("knob", 'to = "env"\nenv = "A=B"', "knobs.x.env"),
    ("knob", 'to = "env"\nenv = ""', "knobs.x.env"),
    ("knob", "to = 5", "knobs.x.to"),
    ("knob", 'to = ["cflag"]', "knobs.x.to"),
    ("knob", 'to = "shell"', "knobs.x.to"),
    ("knob", "define = 5", "knobs.x.define"),
    ("knob", 'define = "X Y"', "knobs.x.define"),
    ("knob", 'kind = ["int"]', "knobs.x.kind"),
    ("knob", 'kind = "float"', "knobs.x.kind"),
    ("knob", 'low = "zero"', "knobs.x"),
    ("knob", "low = 20", "knobs.x"),
    ("knob", 'log = "yes"', "knobs.x.log"),
    ("knob", "step = 0", "knobs.x.step"),
    ("knob", "default = 11", "knobs.x.default"),
    ("knob", "default = [1]", "knobs.x.default"),
    ("knob", "description = 5", "knobs.x.description"),
    ("knob", 'fp_unsafe = "no"', "knobs.x.fp_unsafe"),
    ("knob", "hgih = 3", "knobs.x.hgih"),
    # --- other knob kinds, constraints (appended to the file) -----------------------------
    ("file", '[knobs.z]\nkind = "categorical"\nchoices = [[1], [2]]', "knobs.z.choices"),
    ("file", '[knobs.z]\nkind = "categorical"\nchoices = []', "knobs.z.choices"),
    ("file", '[knobs.z]\nkind = "ordinal"\nvalues = [{a = 1}]', "knobs.z.values"),
    ("file", '[knobs.z]\nkind = "flag"\nflag = 5', "knobs.z.flag"),
    ("file", '[knobs.z]\nkind = "flag"\nflag = "-fx"\ntristate = "no"', "knobs.z.tristate"),
    ("file", '[knobs.z]\nkind = "flag"\nflag = "-fx"\noff_flag = 5', "knobs.z.off_flag"),
    ("file", '[knobs.z]\nkind = "flag"\nflag = "-fx"\noff_flag = "x y"', "knobs.z.off_flag"),
    ("file", '[knobs.z]\nkind = "param"\nparam = 5\nlow = 0\nhigh = 1', "knobs.z.param"),
    ("file", '[knobs.z]\nkind = "permutation"\nitems = ["a", 1]', "knobs.z.items"),
    ("file", "[knobs.z]\nkind = 5", "knobs.z.kind"),
    ("file", '[knobs.z]\nkind = "int"\nlow = 0\nhigh = 1\nwhen = "' + "-" * 3000 + 'x"', "knobs.z.when"),
    ("file", f'[[constraints]]\nexpr = "{X1000} > 0"', "constraints[0].expr", SUB),
    ("file", '[[constraints]]\nexpr = "' + "-" * 3000 + 'x > 0"', "constraints[0].expr"),
    ("file", '[[constraints]]\nexpr = "' + "-" * 900 + 'x > 0"', "constraints[0].expr"),
    ("file", '[[constraints]]\nexpr = "' + "(" * 250 + "x" + ")" * 250 + ' > 0"', "constraints[0].expr"),
    ("file", "[[constraints]]\nexpr = \"len('%20000000d' % x) < 3\"", "constraints[0].expr"),
    ("file", "[[constraints]]\nexpr = \"len(mode % x) < 3\"", "constraints"),   # a string knob: refused when evaluated
    ("file", '[[constraints]]\nexpr = "2 ** 10 ** 10 > 1"', "constraints"),
    ("file", "[[constraints]]\nexpr = \"len('a' * 10 ** 9) > 1\"", "constraints"),
    ("file", '[[constraints]]\nexpr = "x > 0"\ncolour = "red"', "constraints[0].colour"),
    ("file", "[[constraints]]\nexpr = 5", "constraints[0]"),
    ("file", '[[constraints]]\nexpr = "x > 0"\nname = 5', "constraints[0].name"),
    ("file", '[[constraints]]\nexpr = "x.__class__"', "constraints[0].expr"),
    ("file", '[[constraints]]\nexpr = "x > 100"', "constraints"),                # unsatisfiable
    # --- the target file -----------------------------------------------------------------
    ("measure", "timeout_s = -5", "measure.timeout_s"),
    ("measure", 'timeout_s = "60"', "measure.timeout_s"),
    ("measure", "min_reps = 0", "measure.min_reps"),
    ("measure", "warmup = 1.5", "measure.warmup"),
    ("measure", "warmup = true", "measure.warmup"),
    ("measure", 'method = "cycles"', "measure.method"),
    ("measure", "pin_cpu = 1", "measure.pin_cpu"),
    ("measure", "colour = 1", "measure.colour"),
    ("toolchain", "cc = 5", "toolchain.cc"),
    ("toolchain", 'cflags = "-O2"', "toolchain.cflags"),
    ("target", 'cores = "x"', "cores"),
    ("target", "cores = -1", "cores"),
    ("target", "driver = 5", "driver"),
    ("target", 'driver = "teleport"', "driver"),
    ("target", "transport = 5", "transport"),
    ("target", "description = 5", "description"),
    # --- the command line ----------------------------------------------------------------
    ("argv", "explore STUDY --set mode=a --set y=1", "--set", SUB),       # y inactive under mode = 'a'
    ("argv", "measure STUDY --set y=1", "--set"),                        # mode defaults to 'a'
    ("argv", "explore STUDY --set y=9", "--set"),
    ("argv", "explore STUDY --set nope=1", "--set"),
    ("argv", "explore STUDY --set x", "--set"),
    ("argv", "explore STUDY --trials 0", "--trials"),
    ("argv", "explore STUDY --trials many", "--trials"),
    ("argv", "explore STUDY --seed -1", "--seed"),
    ("argv", "explore STUDY --seed 4294967296", "--seed"),
    ("argv", "explore STUDY --sampler annealing", "--sampler"),
    ("argv", "explore STUDY --target-opt timeout_s=-5", "--target-opt.timeout_s"),
    ("argv", "explore STUDY --target-opt warmup=many", "--target-opt"),
    ("argv", "explore STUDY --target-opt nothing", "--target-opt"),
    ("argv", "explore STUDY --target no-such-target", "no-such-target"),
    ("argv", "explore STUDY --colour red", "--colour"),
]


def _apply(lines: list[str], snippet: str) -> list[str]:
    """The snippet's `key = value` lines replace the base's line for that key (or are added)."""
    out = list(lines)
    for line in snippet.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("[") else None
        if key:
            out = [ln for ln in out if ln.split("=", 1)[0].strip() != key]
        out.append(line)
    return out


def study_text(where: str = "", snippet: str = "", target: str = "fast") -> str:
    s = {k: (_apply(v, snippet) if k == where else list(v)) for k, v in STUDY_LINES.items()}
    if where == "file":    # whole tables, appended
        s["file"] = [*STUDY_LINES["file"], "", snippet]
    if target != "fast" and where != "study":
        s["study"] = _apply(s["study"], f'target = "{target}"')
    return "\n".join([*s["top"], "[study]", *s["study"], "", "[program]", *s["program"], "",
                      "[knobs.x]", *s["knob"], "", *s["file"], ""])


def target_text(where: str, snippet: str) -> str:
    t = {k: (_apply(v, snippet) if k == where else list(v)) for k, v in TARGET_LINES.items()}
    return "\n".join([*t["target"], "[toolchain]", *t["toolchain"], "[measure]", *t["measure"], ""])


def cli(argv: list[str]) -> subprocess.CompletedProcess:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "results").rglob("*")) if p.is_file()}


class Bench:
    """One library for every case: a finished campaign of study `base` and the files to break."""

    def __init__(self, root: Path) -> None:
        self.root = root
        write_library(root)
        (root / "inc.toml").write_text('[knobs.w]\nkind = "int"\nlow = 0\nhigh = 1\nto = "none"\n')
        self.study = root / "base.toml"
        self.study.write_text(study_text())
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TUNE_")}
        self.env["TUNE_LIBRARY"] = str(root)
        proc = subprocess.run([sys.executable, "-m", "tuner", *self.argv(EXPLORE)], cwd=root, env=self.env,
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr
        self.before = snapshot(root)
        assert "results/base/journal.log" in self.before

    def argv(self, argv: tuple[str, ...] | list[str]) -> list[str]:
        return [str(self.study) if a == "STUDY" else a for a in argv]

    def write(self, where: str, snippet: str) -> list[str]:
        """Write the case's files; return its command line."""
        if where in TARGET_LINES:
            (self.root / "targets" / "case.toml").write_text(target_text(where, snippet))
            self.study.write_text(study_text(target="case"))
            return self.argv(EXPLORE)
        self.study.write_text(study_text(where, snippet) if where != "argv" else study_text())
        return self.argv(snippet.split() if where == "argv" else EXPLORE)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("bad-input")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("TUNE_")]:
            mp.delenv(key)
        mp.setenv("TUNE_LIBRARY", str(root))
        mp.chdir(root)
        yield Bench(root)


def _id(case: tuple) -> str:
    return f"{case[0]}:{case[1][:40]}"


@needs_gcc
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_refused_at_load_in_one_line(bench: Bench, case: tuple) -> None:
    where, snippet, key = case[:3]
    argv = bench.write(where, snippet)
    try:
        line = one_line_error(cli(argv))
        assert line.startswith("tune: error: "), line
        assert key in line, f"the message does not name {key!r}: {line}"
        if where not in ("argv", "measure", "toolchain", "target") and "missing" not in snippet:
            assert str(bench.study) in line or "inc.toml" in line, f"the message does not name the file: {line}"
        if where in TARGET_LINES:
            assert "case.toml" in line, f"the message does not name the target file: {line}"
        if SUB in case:
            proc = subprocess.run([sys.executable, "-m", "tuner", *argv], cwd=bench.root, env=bench.env,
                                  capture_output=True, text=True, timeout=240)
            assert one_line_error(proc) == line
        assert snapshot(bench.root) == bench.before, "a refused command changed results/"
    finally:
        bench.study.write_text(study_text())


def test_every_bad_input_case_is_distinct() -> None:
    assert len({c[:2] for c in CASES}) == len(CASES)
