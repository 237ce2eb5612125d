"""What sits before the fork server's start (issue 17): a torch assignment's `check` waits for
its fork server to import torch, so nothing the fork server does not need may run first."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_nothing_heavy_is_imported_before_the_fork_server_starts():
    # What `check` imports up to start_sandbox(): the CLI, the session module, the backend.
    code = ("import sys, json, autograder.cli, autograder.harness.session, "
            "autograder.sandbox.process; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'pytest', '_pytest', 'torch', 'sklearn', 'rich', 'sqlalchemy'})))")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert json.loads(out) == []


def test_the_fork_server_starts_before_the_runtime_view_is_made(monkeypatch):
    from autograder.sandbox.process import ProcessSandbox

    order: list[str] = []
    monkeypatch.setattr(ProcessSandbox, "_spawn_zygote", lambda self: order.append("spawn"))
    monkeypatch.setattr(ProcessSandbox, "_runtime_view",
                        lambda self: order.append("view") or {"binds": ()})
    sandbox = ProcessSandbox(preload=("numpy",))
    try:
        assert order == []  # constructing it starts nothing and makes nothing
        sandbox.warm_up()
        assert order == ["spawn", "view"]
        assert sandbox._view == {"binds": ()} and order == ["spawn", "view"]  # made once
    finally:
        sandbox._tmp.cleanup()
