"""A pytest plugin (loaded by conftest.py): the fast subset, and skips that CI must not accept.

* `fast`: pure-Python modules (no compiler, no servers) listed in FAST_MODULES, or marked with
  `pytestmark = pytest.mark.fast`, form the fast subset: `make test-fast` runs
  `-m "fast and not slow"` in under 30 s.
* Under CI=true, a test skipped because gcc, qemu, PostgreSQL or sshd is missing fails the run:
  the CI machine installs them (Makefile `system`), so such a skip means a broken install, not a
  missing optional feature. The skipped tests are listed in their own section.
"""

from __future__ import annotations

import os
import re

import pytest

FAST_MODULES = {"test_result", "test_report", "test_pareto", "test_expr", "test_common_knobs", "test_export"}
REQUIRED_IN_CI = re.compile(r"\b(gcc|qemu|PostgreSQL|postgres|initdb|pg_ctl|psycopg|sshd|openssh)\b", re.I)
_required_skips: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in FAST_MODULES and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.fast)


def pytest_runtest_logreport(report) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if REQUIRED_IN_CI.search(reason):
            _required_skips.append(f"{report.nodeid}: {reason}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _required_skips and _in_ci():
        terminalreporter.section("skipped, but CI needs these (gcc, qemu, PostgreSQL, sshd)", red=True)
        for line in _required_skips:
            terminalreporter.line(line)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _required_skips and _in_ci() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
