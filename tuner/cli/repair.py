"""`tune repair STUDY`: keep every valid journal record and move the bad lines aside.

A journal line that is not a record (garbage, bytes that are not UTF-8, a record torn by a
kill and glued to the next one) stops every command that reads the journal, with the file
and the line named. This command rewrites the journal without those lines (a glued record at
the end of a bad line is kept) and appends them, as they were, to `journal.log.bad` beside
it. Stop the campaign's workers first: a worker that is running keeps its own read position.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tuner.errors import BadInput
from tuner.storage import repair_journal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="the study (a name, or its .toml file) whose journal to repair")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="results root; the journal is DIR/STUDY/journal.log (default: ./results)")
    p.add_argument("--storage", metavar="journal:PATH", help="repair the journal file at PATH instead")
    p.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")


def journal_path(args: argparse.Namespace) -> Path:
    if args.storage:
        if not args.storage.startswith("journal:"):
            raise BadInput("repair works on journal files (journal:PATH); a database checks its own records",
                           None, "--storage")
        return Path(args.storage[len("journal:"):])
    name = Path(args.study).stem if args.study.endswith(".toml") else args.study
    return Path(args.results) / name / "journal.log"


def run(args: argparse.Namespace) -> int:
    path = journal_path(args)
    if not path.is_file():
        raise BadInput("no journal here (is the study name or --results right?)", path)
    r = repair_journal(path, dry_run=args.dry_run)
    if not r.bad:
        print(f"{path}: {r.kept} records, all valid; nothing to repair")
        return 0
    verb = "would move" if args.dry_run else "moved"
    print(f"{path}: kept {r.kept} records; {verb} {len(r.bad)} bad line(s) to {r.moved_to}"
          + (f" (and kept the whole record found at the end of {r.salvaged} of them)" if r.salvaged else ""))
    for number, why in r.bad:
        print(f"  line {number}: {why}")
    if not args.dry_run:
        print("run the campaign's command again to continue it")
    return 0
