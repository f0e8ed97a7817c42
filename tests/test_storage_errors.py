"""A damaged journal is one line naming the file, the line and what to do; `tune repair` keeps
every valid record, moves the bad lines aside (journal.log.bad) and says what it did; the
campaign then continues with the same command."""

from __future__ import annotations

import io
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout

import pytest

from conftest import Lab, needs_gcc, one_line_error
from tuner.cli.main import main

KNOBS = """
[knobs.x]
kind = "int"
low = 0
high = 5
define = "X"
"""
EXPLORE = ("--sampler", "grid", "--no-progress", "--no-export")


def cli(*args) -> subprocess.CompletedProcess:
    """`tune ARGS` in this process (the console script's main): fast; a traceback would be the
    test's own exception."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One three-trial campaign for the module; each test gets its journal back as it was."""
    root = tmp_path_factory.mktemp("damaged")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("TUNE_")]:
            mp.delenv(key)
        mp.setenv("TUNE_LIBRARY", str(root))
        mp.chdir(root)
        lab = Lab(root)
        study = lab.study("dmg", KNOBS)
        lab.ok("explore", study, "--trials", "3", *EXPLORE)
        yield lab, study, lab.journal(study).read_bytes()


@pytest.fixture
def campaign(finished):
    lab, study, before = finished
    journal = lab.journal(study)
    journal.write_bytes(before)
    (journal.parent / "journal.log.bad").unlink(missing_ok=True)
    return lab, study, journal, before


def insert(journal, at: int, line: bytes) -> None:
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:at] + [line] + lines[at:]))


DAMAGE = {
    "garbage": (b"this is not a record\n", "not JSON"),
    "not utf-8": (b'\xff\xfe{"op_code": 1}\n', "not UTF-8"),
    "json, not a record": (b'{"hello": "world"}\n', "not a journal record"),
    "does not apply": (b'{"op_code": 5, "worker_id": "w"}\n', "does not apply"),
}


@needs_gcc
@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_bad_line_is_one_line_naming_file_and_line_then_repair_keeps_every_record(campaign, damage):
    lab, study, journal, before = campaign
    line, why = DAMAGE[damage]
    insert(journal, 7, line)
    for command in (("status", study), ("explore", study, "--trials", "5", *EXPLORE), ("pareto", study)):
        msg = one_line_error(cli(*command), code=1)
        assert str(journal.relative_to(lab.root)) in msg and "line 8" in msg and why in msg, msg
        assert "tune repair dmg" in msg, msg
    if damage == "garbage":      # the same through the real executable
        assert "line 8" in one_line_error(lab.tune("status", study), code=1)
    proc = cli("repair", study)
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stdout and "line 8" in proc.stdout and "journal.log.bad" in proc.stdout, proc.stdout
    assert journal.read_bytes() == before, "repair changed or lost a valid record"
    assert (journal.parent / "journal.log.bad").read_bytes() == line
    if damage == "garbage":      # and the campaign goes on (the others end the same way)
        lab.ok("explore", study, "--trials", "5", *EXPLORE)
        assert lab.json("status", study)["finished"] == 5


@needs_gcc
def test_repair_keeps_a_record_glued_to_a_torn_one(campaign):
    """A writer killed mid-record, then another that appended without cutting the fragment
    (before tune cut torn tails): the record at the end of the glued line is kept."""
    lab, study, journal, before = campaign
    lines = before.splitlines(keepends=True)
    lines[5] = lines[4][:30] + lines[5]
    journal.write_bytes(b"".join(lines))
    msg = one_line_error(cli("status", study), code=1)
    assert "line 6" in msg and "not JSON" in msg, msg
    proc = cli("repair", study)
    assert "whole record" in proc.stdout, proc.stdout
    assert journal.read_bytes() == before
    assert (journal.parent / "journal.log.bad").read_bytes() == lines[4][:30] + b"\n"


@needs_gcc
def test_repair_dry_run_changes_nothing_and_a_sound_journal_needs_nothing(campaign):
    lab, study, journal, before = campaign
    proc = cli("repair", study)
    assert "all valid" in proc.stdout and "nothing to repair" in proc.stdout
    assert journal.read_bytes() == before and not (journal.parent / "journal.log.bad").exists()
    insert(journal, 3, b"garbage\n")
    damaged = journal.read_bytes()
    proc = cli("repair", study, "--dry-run")
    assert "would move 1 bad line" in proc.stdout and "line 4" in proc.stdout
    assert journal.read_bytes() == damaged and not (journal.parent / "journal.log.bad").exists()


@needs_gcc
def test_a_torn_last_line_is_not_an_error(campaign):
    """A kill mid-write leaves a last line without its newline: readers skip it, the next
    append cuts it, and nothing is reported."""
    lab, study, journal, before = campaign
    journal.write_bytes(before + b'{"op_code": 5, "worker_id": "w", "tri')
    assert '"finished": 3' in cli("status", study, "--format", "json").stdout
    proc = cli("explore", study, "--trials", "4", *EXPLORE)
    assert proc.returncode == 0, proc.stderr
    assert '"finished": 4' in cli("status", study, "--format", "json").stdout
    assert journal.read_bytes().startswith(before)


def test_repair_bad_input(lab):
    assert "no journal" in one_line_error(cli("repair", "nothing-here"))
    assert "--storage" in one_line_error(cli("repair", "x", "--storage", "sqlite:///x.db"))
