"""Faults of the machine are not faults of the configuration: a full disk or a read-only file
system under the build cache, the linker's output or the journal stops the campaign with exit
1 and one line naming the path; no configuration is blamed (no compile_error), nothing stored
is torn, and the same command finishes the campaign once the disk has room again.

Real file systems: each test mounts a small tmpfs (needs root; skipped with the reason
otherwise) and fills it with a file.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import needs_gcc, one_line_error
from knob_tables import X4

KNOBS = X4
PAGE = 4096
EXPLORE = ("--sampler", "grid", "--no-progress", "--no-export")


@pytest.fixture
def tmpfs():
    """mount(dir, pages) -> dir: a tmpfs of that many pages at dir; unmounted after the test."""
    mounted: list[Path] = []

    def mount(path: Path, pages: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages * PAGE}", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode}): needs root")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path, leave_pages: int = 0) -> Path:
    """A file that takes all the free space of `fs` but `leave_pages` pages."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize - leave_pages * PAGE
    filler = fs / "filler"
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * max(free, 0))
            f.flush()
        except OSError:
            pass
    return filler


def remount_ro(fs: Path, ro: bool = True) -> None:
    subprocess.run(["mount", "-o", f"remount,{'ro' if ro else 'rw'}", str(fs)], check=True)


def builds_on_tmpfs(lab, tmpfs, name: str, pages: int) -> tuple[Path, Path]:
    """A study whose build cache (results/NAME/builds) is a tmpfs of `pages` pages, the rest of
    its results on the ordinary disk: (study file, build cache)."""
    study = lab.study(name, KNOBS)
    builds = tmpfs(lab.root / f"{name}-builds", pages)
    (lab.root / "results" / name).mkdir(parents=True)
    os.symlink(builds, lab.root / "results" / name / "builds")
    return study, builds


def no_configuration_blamed(lab, study: Path) -> None:
    recs = lab.records(study)
    assert not [r for r in recs if r.status == "failed"], [(r.number, r.reason, r.detail[:200]) for r in recs]


@needs_gcc
def test_a_full_disk_at_link_time_stops_the_campaign_and_blames_no_configuration(lab, tmpfs):
    """The build cache on a file system with room for the object file but not the linked
    program: `ld: final link failed: No space left on device`."""
    study, builds = builds_on_tmpfs(lab, tmpfs, "fullbuild", 256)
    filler = fill(builds, leave_pages=4)     # the object file (3 pages) fits, the program (5) does not
    line = one_line_error(lab.tune("explore", study, "--trials", "4", *EXPLORE), code=1)
    assert line.startswith("tune: failed: ") and "no space left on device" in line, line
    assert str(builds) in line, f"the message does not name the full file system's path: {line}"
    assert "final link failed" in line, f"expected the linker to hit the full disk: {line}"
    no_configuration_blamed(lab, study)
    assert not list(builds.glob(".build-*")), "the failed build left its temporary directory"
    filler.unlink()
    lab.ok("explore", study, "--trials", "4", *EXPLORE)
    recs = lab.records(study)
    cut = [r for r in recs if r.status == "interrupted"]
    assert len(cut) == 1 and cut[0].params in [r.params for r in recs if r.status == "complete"], \
        [(r.number, str(r.status), dict(r.params)) for r in recs]     # the interrupted trial was retried
    assert lab.json("status", study)["finished"] == 4
    no_configuration_blamed(lab, study)


@needs_gcc
def test_a_read_only_build_cache_is_a_machine_fault(lab, tmpfs):
    study, builds = builds_on_tmpfs(lab, tmpfs, "robuild", 64)
    remount_ro(builds)
    line = one_line_error(lab.tune("explore", study, "--trials", "2", *EXPLORE), code=1)
    assert "read-only file system" in line and str(builds) in line, line
    no_configuration_blamed(lab, study)
    remount_ro(builds, ro=False)
    lab.ok("explore", study, "--trials", "2", *EXPLORE)
    no_configuration_blamed(lab, study)


def fill_the_journal(lab, tmpfs) -> tuple[Path, Path]:
    """A campaign whose journal's file system is then filled; `explore` must stop with one line
    naming the journal and leave it whole. Returns (study, filler)."""
    study = lab.study("fulljournal", KNOBS)
    results = tmpfs(lab.root / "results", 64)
    (lab.root / "builds").mkdir()
    (results / "fulljournal").mkdir()
    os.symlink(lab.root / "builds", results / "fulljournal" / "builds")    # builds elsewhere: the journal fills
    lab.ok("explore", study, "--trials", "1", *EXPLORE)
    filler = fill(results)
    line = one_line_error(lab.tune("explore", study, "--trials", "4", *EXPLORE), code=1)
    assert "no space left on device" in line and str(lab.journal(study).name) in line, line
    assert lab.journal(study).read_bytes().endswith(b"\n"), "a short write was left in the journal"
    assert lab.json("status", study)["finished"] >= 1        # still loadable; read-only commands work
    return study, filler


@needs_gcc
def test_a_full_disk_under_the_journal_stops_the_campaign_and_tears_nothing(lab, tmpfs):
    fill_the_journal(lab, tmpfs)


@needs_gcc
def test_after_a_full_journal_the_same_command_finishes_the_campaign(lab, tmpfs):
    study, filler = fill_the_journal(lab, tmpfs)
    filler.unlink()
    lab.ok("explore", study, "--trials", "4", *EXPLORE)
    assert lab.json("status", study)["finished"] == 4
    no_configuration_blamed(lab, study)


@needs_gcc
def test_a_read_only_results_directory_is_one_line_and_still_readable(lab, tmpfs):
    study = lab.study("roresults", KNOBS)
    results = tmpfs(lab.root / "results", 256)
    lab.ok("explore", study, "--trials", "2", *EXPLORE)
    before = lab.journal(study).read_bytes()
    remount_ro(results)
    assert lab.json("status", study)["finished"] == 2
    for command in (("explore", study, "--trials", "3", *EXPLORE), ("repair", study)):
        line = one_line_error(lab.tune(*command), code=1)
        assert "read-only file system" in line and str(Path("results") / "roresults") in line, line
    remount_ro(results, ro=False)
    assert lab.journal(study).read_bytes() == before
