"""`tune dashboard` serves optuna-dashboard on loopback with ordinal knobs as their values."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request

import pytest

from conftest import needs_gcc
from knob_tables import int_knob, ordinal_knob

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard not installed (extra 'dashboard')")

KNOBS = int_knob("a", high=5) + ordinal_knob("block", [1, 2, 4, 8])


def configs_index(value: int) -> int:
    return [1, 2, 4, 8].index(value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@needs_gcc
def test_dashboard_shows_ordinal_knobs_as_their_values(lab):
    study = lab.study("dash", KNOBS)
    lab.ok("explore", study, "--trials", "5", "--seed", "0", "--no-progress", "--no-export")
    port = free_port()
    proc = lab.popen("dashboard", study, "--port", port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "dashboard did not answer within 60 s"
                time.sleep(0.3)
        (s,) = [s for s in studies if s["study_name"] == "dash"]
        detail = get(f"http://127.0.0.1:{port}/api/studies/{s['study_id']}")
        configs = {r.number: r.params for r in lab.records(study)}
        seen = 0
        for t in detail["trials"]:
            params = {p["name"]: p["param_external_value"] for p in t["params"]}
            if "block" in params:
                assert params["block"] == str(configs[t["number"]]["block"])   # 1, 2, 4 or 8, not 0..3
                seen += 1
        assert seen >= 3
        assert any(c["block"] != configs_index(c["block"]) for c in configs.values())  # index != value seen
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except Exception:
            proc.kill()
            proc.wait(timeout=10)
