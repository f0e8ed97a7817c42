"""`tune flags gcc|clang`: generate a knob TOML from what the installed compiler accepts.

    python -m tuner.flagspace gcc --out search_spaces/knobs/gcc.toml
    python -m tuner.flagspace clang --out search_spaces/knobs/clang.toml

Where the candidates come from
------------------------------
gcc:   `gcc -Q --help=optimizers` (boolean -fX flags and enumerated -fX=[a|b] options),
       `gcc -Q --help=params` (--param names with their <low,high> range and default),
       `gcc -Q --help=target` (the -march= / -mtune= name lists, -mprefer-vector-width values).
clang: clang has no -Q --help=optimizers and no --param. We take the `-f` options listed by
       `clang --help` whose name or help text is about optimisation (unrolling, vectorisation,
       inlining, jump tables, FP math...) and that are boolean (-fX / -fno-X), plus -O levels,
       -march (from `clang --print-supported-cpus`), -mtune and -mprefer-vector-width.
       LLVM's internal `-mllvm -<option>=N` knobs (-unroll-threshold, -inline-threshold...) are
       NOT emitted: clang 14 has no joined `-mllvm=` spelling, so one knob value would have to
       render as two argv words, which the knob kinds cannot express yet. `-cc1` options are
       also left out (they need -Xclang and bypass the driver's checks).

Verification: every candidate (-fX and -fno-X for a flag, low and high for a param, each
choice of a categorical) must compile a small C file with `-O2 -Werror` (GCC warns on options it
ignores; clang warns "optimization flag not supported" / "argument unused"). Candidates are
checked in batches; a failing batch is bisected until the culprits are single options, and batches
run in parallel. -march values must also link and RUN a small program on this machine that
checks, via __builtin_cpu_supports, that every ISA extension the -march enables is present
(an exit code or SIGILL excludes the name).

Flags that change floating-point results are marked `fp_unsafe = true` and left out unless
--allow-fp-unsafe. Options that change the ABI, need a profile, only write reports or debug info,
or harden code are skipped as not-performance knobs (listed in the summary).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tuner.flagprobe import (Checker, check_march, clang_target_lists, cpu_model, gcc_target_lists, run_src,
                             version_of)

# The first choice of every multi-valued option (-fX=..., -march, -mtune, vector width): pass
# nothing and leave it to the compiler and the -O level. Without it every configuration would
# pin each of them (-fvect-cost-model=unlimited at -O3, say), so plain `-O3` and
# `-O3 -march=native` would not be points of the space.
LEAVE = ""

# ---------------------------------------------------------------- classification

# Flags whose *enabled* form (or, for the names in FP_UNSAFE_WHEN_OFF, disabled form) lets the
# compiler change floating-point results.
FP_UNSAFE = {
    "fast-math", "unsafe-math-optimizations", "associative-math", "reciprocal-math",
    "finite-math-only", "cx-limited-range", "cx-fortran-rules", "single-precision-constant",
    "approx-func", "fp-contract", "excess-precision", "fp-model", "ffp-exception-behavior",
    "signed-zeros", "trapping-math", "math-errno", "rounding-math", "signaling-nans",
    "protect-parens", "honor-nans", "honor-infinities", "float-store", "fp-int-builtin-inexact",
}
FP_UNSAFE_LEVELS = {"-Ofast"}

# Not performance knobs (or not safe to toggle in a study): skipped with the reason.
SKIP_PATTERNS = [
    (r"^(short-enums|short-wchar|pack-struct|reg-struct-return|pcc-struct-return|"
     r"common|leading-underscore|ms-bitfields)$", "changes the ABI"),
    (r"^(profile|branch-probabilities|vpt$|auto-profile|pseudo-probe)", "needs a profile"),
    (r"^(save-optimization-record|opt-info|var-tracking|dwarf|debug|split-dwarf|"
     r"record-command-line|verbose-asm|stack-usage|callgraph-info|emit-)", "report / debug info"),
    (r"^(stack-protector|stack-check|stack-clash|harden|sanitize|cf-protection|"
     r"trivial-auto-var-init|zero-call-used-regs|xray|instrument|patchable|live-patching)",
     "hardening / instrumentation"),
    (r"^(exceptions|non-call-exceptions|asynchronous-unwind-tables|unwind-tables|"
     r"delete-dead-exceptions|keep-gc-roots-live|rtti|threadsafe-statics|"
     r"nothrow-opt|strict-enums|fold-simple-inlines|handle-exceptions)", "language / unwinding"),
    (r"^(wrapv|trapv|wrapv-pointer|allow-store-data-races|delete-null-pointer-checks|"
     r"isolate-erroneous-paths|semantic-interposition|plt|no-plt|pic|pie|PIC|PIE)",
     "changes language / linkage semantics"),
    (r"^(split-stack|apple|gnu89-inline|gnu-inline-asm|pascal-strings|visibility|pch|modules|"
     r"prebuilt|plugin|pass-plugin|hip|cuda|openmp|whole-program-vtables|split-lto-unit|"
     r"aligned-allocation|sized-deallocation|new-alignment|max-type-align|lto|"
     r"virtual-function-elimination|merge-all-constants|sycl|gpu|coroutines|"
     r"assume-sane-operator-new|jmc)", "not an optimisation of C code"),
]

# --param names that tune the compiler itself, sanitizers or diagnostics, not generated code.
PARAM_SKIP = re.compile(
    r"^(asan|hwasan|tsan|ggc|lto|analyzer|uninit|profile|max-gcse-memory|"
    r"integer-share-limit|cxx|min-nondebug|max-fields-for-field-sensitive|"
    r"max-vartrack|max-debug|sccvn-max-alias|max-ssa-name-query|modref-max-escape|"
    r"logical-op-non-short-circuit|openacc|parloops|ranger|evrp|vrp1|vrp2|threader|"
    r"min-crossjump|max-find-base-term|gimple-fe|ira-max-conflict-table|"
    r"max-tracked-strlens|max-stores-to|dse-max|graphite-max|sra-max|"
    r"builtin-expect-probability|max-pending-list|use-after|max-pow-sqrt|"
    r"tm-|jump-table-max-growth|cycle-accounting|max-dse|lim-expensive)")

TAG_RULES = [
    ("loop", r"loop|unroll|peel|unswitch|ivopts|ivcanon|predictive-commoning|prefetch|graphite|"
             r"tree-ch$|scev|versioning|interchange|distribut|iv-|-iv|niter|strides|unroll-jam|"
             r"modulo|sms-|ira-loop|invariant|tile"),
    ("unroll", r"unroll|peel|reroll"),
    ("vectorize", r"vect|slp|if-convert|simd"),
    ("inline", r"inline|inlining|ipa-cp|early-inlin"),
    ("ipa", r"ipa|devirtualize|whole-program|icf|toplevel-reorder|semantic"),
    ("schedule", r"sched|selective|modulo|schedule"),
    ("regalloc", r"ira|lra|rename-registers|^web$|caller-saves|register|regs|spill|"
                 r"live-range|split-wide"),
    ("branch", r"if-conver|tracer|thread-jumps|jump|crossjump|branch|split-paths|"
               r"hoist-adjacent|bit-tests|switch|predictable"),
    ("redundancy", r"gcse|cse|pre$|-pre|fre$|hoist|dce|dse|sink|ccp|copy-prop|vn|reassoc|phiopt|"
                   r"forwprop|code-hoisting|combine"),
    ("memory", r"alias|prefetch|store-merging|sra|cache|datarefs|pta|strlen|memcpy|memset"),
    ("layout", r"align|reorder|partition|function-sections|section-anchors|"
               r"stack-alignment|omit-frame-pointer"),
    ("math", r"math|fp-|signed-zeros|trapping|reciprocal|cx-|float|rounding|precision|nans|"
             r"approx"),
]


def tags_for(name: str) -> list[str]:
    tags = [t for t, rx in TAG_RULES if re.search(rx, name)]
    return tags or ["misc"]


def skip_reason(base: str) -> str | None:
    for rx, why in SKIP_PATTERNS:
        if re.search(rx, base):
            return why
    return None


def knob_name(prefix: str, text: str) -> str:
    return prefix + re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


# ---------------------------------------------------------------- data

@dataclass
class Candidate:
    name: str                      # knob name
    kind: str                      # flag | param | categorical
    checks: list[list[str]]        # each argv list must be accepted
    table: dict                    # the knob table to emit
    fp_unsafe: bool = False
    rejected_by: list[str] = field(default_factory=list)


@dataclass
class Report:
    compiler: str
    version: str
    flags_found: int = 0
    params_found: int = 0
    enums_found: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    fp_unsafe: list[str] = field(default_factory=list)
    accepted: list[Candidate] = field(default_factory=list)
    rejected: list[Candidate] = field(default_factory=list)
    march_ok: list[str] = field(default_factory=list)
    march_bad: dict[str, str] = field(default_factory=dict)
    mtune_ok: list[str] = field(default_factory=list)
    mtune_bad: list[str] = field(default_factory=list)
    seconds: float = 0.0


def gcc_flag_candidates(cc: str, rep: Report) -> list[Candidate]:
    out = run_src([cc, "-Q", "--help=optimizers"]).stdout
    cands: list[Candidate] = []
    seen: set[str] = set()
    for line in out.splitlines():
        m = re.match(r"^\s+(-f[^\s=]+)(=\S*)?\s*(.*)$", line)
        if not m:
            continue
        opt, eq, state = m.group(1), m.group(2), m.group(3).strip()
        base = opt[2:]
        if base.startswith("no-"):
            base = base[3:]
        if state.startswith("-f") or state.startswith("-O"):
            continue                                   # an alias of another option
        if base in seen and not eq:
            continue
        reason = skip_reason(base)
        if eq:
            enum = re.match(r"^=\[([^\]]+)\]$", eq)
            if not enum:
                continue                               # numeric-valued -fX=N: not emitted
            rep.enums_found += 1
            choices = [f"-f{base}={v}" for v in enum.group(1).split("|")]
            if reason:
                rep.skipped[f"-f{base}="] = reason
                continue
            name = knob_name("f_", base)
            cands.append(Candidate(name, "categorical", [[c] for c in choices],
                                   {"kind": "categorical", "choices": [LEAVE, *choices], "to": "cflag",
                                    "tags": tags_for(base)},
                                   fp_unsafe=base in FP_UNSAFE))
            continue
        seen.add(base)
        rep.flags_found += 1
        if reason:
            rep.skipped[f"-f{base}"] = reason
            continue
        cands.append(flag_candidate(base))
    return cands


def flag_candidate(base: str) -> Candidate:
    return Candidate(knob_name("f_", base), "flag", [[f"-f{base}"], [f"-fno-{base}"]],
                     {"kind": "flag", "flag": f"-f{base}", "tristate": True,
                      "tags": tags_for(base)},
                     fp_unsafe=base in FP_UNSAFE)


def param_range(lo: int | None, hi: int | None, default: int) -> tuple[int, int]:
    """A sensible search range inside the legal one; gcc without <lo,hi> means 0..INT_MAX."""
    legal_lo = 0 if lo is None else lo
    legal_hi = 2**31 - 1 if hi is None else hi
    if legal_hi - legal_lo <= 256:
        return legal_lo, legal_hi
    d = max(default, 1)
    low = max(legal_lo, d // 4 if d >= 4 else 0)
    high = min(legal_hi, max(d * 4, low + 8))
    return low, high


def gcc_param_candidates(cc: str, rep: Report) -> list[Candidate]:
    out = run_src([cc, "-Q", "--help=params"]).stdout
    cands = []
    for line in out.splitlines():
        m = re.match(r"^\s+--param=([\w-]+)=(\S*)\s+(\S+)\s*$", line)
        if not m:
            continue
        name, dom, dflt = m.groups()
        rep.params_found += 1
        if dom.startswith("["):
            rep.skipped[f"--param={name}"] = "enumerated param (debug/mode selector)"
            continue
        if PARAM_SKIP.search(name):
            rep.skipped[f"--param={name}"] = "tunes the compiler/diagnostics, not the code"
            continue
        rm = re.match(r"^<(-?\d+),(-?\d+)>$", dom)
        lo, hi = (int(rm.group(1)), int(rm.group(2))) if rm else (None, None)
        try:
            default = int(dflt)
        except ValueError:
            default = lo or 0
        low, high = param_range(lo, hi, default)
        if low >= high:
            rep.skipped[f"--param={name}"] = f"single legal value {low}"
            continue
        table = {"kind": "param", "param": name, "low": low, "high": high}
        if low <= default <= high:
            table["default"] = default
        table["tags"] = tags_for(name)
        cands.append(Candidate(knob_name("param_", name), "param",
                               [[f"--param={name}={low}"], [f"--param={name}={high}"]], table))
    return cands


CLANG_OPT_WORDS = re.compile(
    r"unroll|vectori|slp|inline|inlining|loop|jump-tables|optimi[sz]|math|signed-zeros|"
    r"reciprocal|trapping|strict-aliasing|strict-overflow|omit-frame-pointer|reroll|"
    r"finite|merge|split-machine|function-sections|data-sections|align|tail|"
    r"strict-float-cast|strict-return|pointer|builtin|approx|stack-realign|short", re.I)


def clang_flag_candidates(cc: str, rep: Report) -> list[Candidate]:
    out = run_src([cc, "--help"]).stdout
    cands, seen = [], set()
    for line in out.splitlines():
        m = re.match(r"^\s+-f([A-Za-z0-9-]+)(\S*)\s*(.*)$", line)
        if not m:
            continue
        base, rest, help_text = m.group(1), m.group(2), m.group(3)
        if rest:                                     # -fX=<value>, -fX<value>: not boolean
            continue
        if base.startswith("no-"):
            base = base[3:]
        if base in seen:
            continue
        if not CLANG_OPT_WORDS.search(base + " " + help_text):
            continue
        seen.add(base)
        rep.flags_found += 1
        reason = skip_reason(base)
        if reason:
            rep.skipped[f"-f{base}"] = reason
            continue
        cands.append(flag_candidate(base))
    # clang also understands these GCC spellings (mapped onto its own passes); keep the
    # clang-native names above as the primary ones and add the documented -O-related aliases.
    for base in ("strict-aliasing", "omit-frame-pointer", "unroll-loops", "vectorize",
                 "slp-vectorize", "inline-functions", "reroll-loops", "jump-tables"):
        if base not in seen:
            seen.add(base)
            rep.flags_found += 1
            cands.append(flag_candidate(base))
    return cands


def opt_level_candidate(levels: list[str]) -> Candidate:
    return Candidate("opt_level", "categorical", [[lv] for lv in levels],
                     {"kind": "categorical", "choices": levels, "to": "cflag",
                      "tags": ["olevel"]})


# ---------------------------------------------------------------- generation

def generate(compiler: str, allow_fp_unsafe: bool = False, jobs: int | None = None,
             limit: int | None = None, extra_flags: list[str] = (),
             with_target: bool = True) -> tuple[list[Candidate], Report]:
    cc = shutil.which(compiler)
    if cc is None:
        raise SystemExit(f"tune flags: compiler {compiler!r} not found on PATH")
    jobs = jobs or max(2, (os.cpu_count() or 2) * 2)
    is_clang = "clang" in Path(compiler).name or "clang" in version_of(cc).lower()
    rep = Report(compiler, version_of(cc))
    t0 = time.monotonic()

    if is_clang:
        cands = clang_flag_candidates(cc, rep)
        levels = ["-O0", "-O1", "-O2", "-O3", "-Os", "-Oz", "-Ofast"]
    else:
        cands = gcc_flag_candidates(cc, rep) + gcc_param_candidates(cc, rep)
        levels = ["-O0", "-O1", "-O2", "-O3", "-Os", "-Ofast", "-Og"]
    for f in extra_flags:                 # e.g. a deliberately bogus flag, for testing
        base = f[2:] if f.startswith("-f") else f.lstrip("-")
        rep.flags_found += 1
        cands.append(flag_candidate(base))
    if limit is not None:
        keep = {c.name for c in cands[-len(extra_flags):]} if extra_flags else set()
        cands = cands[:limit] + [c for c in cands[limit:] if c.name in keep]

    # FP-unsafe filtering happens before the (expensive) checks
    kept = []
    for c in cands:
        if c.fp_unsafe:
            c.table["fp_unsafe"] = True
            rep.fp_unsafe.append(c.name)
            if not allow_fp_unsafe:
                continue
        kept.append(c)
    if not allow_fp_unsafe:
        levels = [lv for lv in levels if lv not in FP_UNSAFE_LEVELS]
    kept.insert(0, opt_level_candidate(levels))

    with tempfile.TemporaryDirectory(prefix="tune-flags-") as tmp:
        chk = Checker(cc, Path(tmp), jobs)
        items, owner = [], []
        for i, c in enumerate(kept):
            for argv in c.checks:
                items.append(argv)
                owner.append(i)
        results = chk.check_all(items)
        for i, argv, ok in zip(owner, items, results):
            if not ok:
                kept[i].rejected_by.append(" ".join(argv))
        for c in kept:
            if c.kind == "categorical" and c.rejected_by and len(c.rejected_by) < len(c.checks):
                bad = set(c.rejected_by)          # drop only the rejected choices
                c.table["choices"] = [ch for ch in c.table["choices"] if ch not in bad]
                c.rejected_by = []
            (rep.rejected if c.rejected_by else rep.accepted).append(c)

        if with_target:
            if is_clang:
                march, mtune, widths = clang_target_lists(cc)
            else:
                march, mtune, widths = gcc_target_lists(cc)
            march = ["native"] + [m for m in march if m != "native"]
            rep.march_ok, rep.march_bad = check_march(cc, march, Path(tmp), jobs)
            tune_ok = chk.check_all([[f"-mtune={m}"] for m in mtune], batch=1)
            rep.mtune_ok = [m for m, ok in zip(mtune, tune_ok) if ok]
            rep.mtune_bad = [m for m, ok in zip(mtune, tune_ok) if not ok]
            target = [
                Candidate("march", "categorical", [],
                          {"kind": "categorical",
                           "choices": [LEAVE] + [f"-march={m}" for m in rep.march_ok],
                           "to": "cflag", "tags": ["target", "march"]}),
                Candidate("mtune", "categorical", [],
                          {"kind": "categorical",
                           "choices": [LEAVE] + [f"-mtune={m}" for m in rep.mtune_ok],
                           "to": "cflag", "tags": ["target", "mtune"]}),
            ]
            pvw = [f"-mprefer-vector-width={w}" for w in widths]
            pvw_ok = chk.check_all([[p] for p in pvw], batch=1)
            target.append(Candidate("prefer_vector_width", "categorical", [],
                                    {"kind": "categorical",
                                     "choices": [LEAVE] + [p for p, ok in zip(pvw, pvw_ok) if ok],
                                     "to": "cflag", "tags": ["target", "vectorize"]}))
            rep.accepted.extend(t for t in target if len(t.table["choices"]) > 1)
    rep.seconds = time.monotonic() - t0
    return rep.accepted, rep


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def render_toml(knobs: list[Candidate], rep: Report, argv: list[str]) -> str:
    n_flag = sum(k.kind == "flag" for k in knobs)
    n_param = sum(k.kind == "param" for k in knobs)
    lines = [
        f"# Generated by `tune flags {' '.join(argv)}` (tuner/flagspace.py); do not edit by hand.",
        f"# Compiler: {rep.version}",
        f"# {n_flag} tristate flags, {n_param} params, "
        f"{len(knobs) - n_flag - n_param} categorical knobs; each verified with -O2 -Werror.",
        f"# -march choices were checked to run on: {cpu_model()}",
        '# A choice "" passes nothing: the compiler decides (by the -O level); it is each such knob\'s default.',
        "# Use a subset: include = [{ file = \"knobs/<this>.toml\", tags = [\"loop\"] }]",
        "# Tags: " + ", ".join(sorted({t for k in knobs for t in k.table.get("tags", [])})),
    ]
    if rep.fp_unsafe and not any(k.table.get("fp_unsafe") for k in knobs):
        lines.append("# FP-semantics options left out (regenerate with --allow-fp-unsafe): "
                     + " ".join(rep.fp_unsafe))
    lines.append("")
    for k in knobs:
        lines.append(f"[knobs.{k.name}]")
        for key, val in k.table.items():
            lines.append(f"{key} = {toml_value(val)}")
        lines.append("")
    return "\n".join(lines)


def summary(knobs: list[Candidate], rep: Report) -> str:
    acc_f = [c for c in rep.accepted if c.kind == "flag"]
    acc_p = [c for c in rep.accepted if c.kind == "param"]
    rej_f = [c for c in rep.rejected if c.kind == "flag"]
    rej_p = [c for c in rep.rejected if c.kind == "param"]
    rej_o = [c for c in rep.rejected if c.kind not in ("flag", "param")]
    out = [
        f"tune flags: {rep.version}",
        f"  flags:  found {rep.flags_found}, skipped {sum(k.startswith('-f') and not k.endswith('=') for k in rep.skipped)} (not performance knobs), "
        f"fp-unsafe {sum(1 for n in rep.fp_unsafe if n.startswith('f_'))}, accepted {len(acc_f)}, rejected {len(rej_f)}",
        f"  params: found {rep.params_found}, skipped {sum(k.startswith('--param') for k in rep.skipped)}, "
        f"accepted {len(acc_p)}, rejected {len(rej_p)}",
        f"  enumerated -fX=[..] options found {rep.enums_found}",
        f"  -march: {len(rep.march_ok)} usable on this CPU, {len(rep.march_bad)} excluded; "
        f"-mtune: {len(rep.mtune_ok)} accepted, {len(rep.mtune_bad)} rejected",
    ]
    for c in rej_f + rej_p + rej_o:
        out.append(f"  rejected {c.name}: {', '.join(c.rejected_by)}")
    if rep.mtune_bad:
        out.append("  rejected -mtune: " + " ".join(rep.mtune_bad))
    by_reason: dict[str, list[str]] = {}
    for name, why in sorted(rep.march_bad.items()):
        by_reason.setdefault(why.replace(f"'{name}'", "'<name>'"), []).append(name)
    for why, names in sorted(by_reason.items()):
        out.append(f"  excluded -march ({why}): {' '.join(names)}")
    out.append(f"  wrote {len(knobs)} knobs in {rep.seconds:.1f} s")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="tune flags",
                                 description="Generate a knob TOML from the installed compiler.")
    ap.add_argument("compiler", help="gcc, clang, or a path/name such as gcc-12")
    ap.add_argument("--out", type=Path, help="knob TOML to write (default: stdout)")
    ap.add_argument("--allow-fp-unsafe", action="store_true",
                    help="keep options that change floating-point results (marked fp_unsafe)")
    ap.add_argument("--jobs", type=int, default=None, help="parallel compiles")
    ap.add_argument("--limit", type=int, default=None,
                    help="check only the first N candidates (quick tests)")
    ap.add_argument("--extra-flag", action="append", default=[],
                    help="also try this -f flag (e.g. to see a bogus one rejected)")
    ap.add_argument("--no-target", action="store_true", help="skip -march/-mtune/vector width")
    ap.add_argument("--verbose-skips", action="store_true", help="list skipped options")
    args = ap.parse_args(argv)

    knobs, rep = generate(args.compiler, args.allow_fp_unsafe, args.jobs, args.limit,
                          args.extra_flag, with_target=not args.no_target)
    text = render_toml(knobs, rep, argv)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    print(summary(knobs, rep), file=sys.stderr)
    if args.verbose_skips:
        for opt, why in sorted(rep.skipped.items()):
            print(f"  skipped {opt}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
