"""The staff commands: `autograder token` and `autograder invite` (submit is exercised against a
real service in test_faults.py)."""

from __future__ import annotations

import httpx
from click.testing import CliRunner
from fastapi.testclient import TestClient

from autograder.cli import main
from autograder.service.app import create_app
from tests.service.conftest import open_service_db, settings_for


def test_token_and_invite(course, sqlite_url):
    open_service_db(course, sqlite_url).close()  # roster imported
    args = ["--course", str(course), "--db", sqlite_url]
    out = CliRunner().invoke(main, ["token", "alice", *args])
    assert out.exit_code == 0, out.output
    token = out.output.strip()
    link = CliRunner().invoke(main, ["invite", "bob", *args, "--url", "http://grader.example"])
    assert link.exit_code == 0 and link.output.startswith("http://grader.example/invite/")
    unknown = CliRunner().invoke(main, ["token", "mallory", *args])
    assert unknown.exit_code == 1 and "not in the roster" in unknown.output
    assert "Traceback" not in unknown.output
    client = TestClient(create_app(settings_for(course, sqlite_url)))
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == "alice"
    page = client.get(httpx.URL(link.output.strip()).path)
    assert page.status_code == 200 and "bob" in page.text


def test_submit_without_a_token_or_files_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOGRADER_TOKEN", raising=False)
    out = CliRunner().invoke(main, ["submit", "toy"])
    assert out.exit_code == 2 and "--token" in out.output
    out = CliRunner().invoke(main, ["submit", "toy", "--token", "t"])
    assert out.exit_code == 2 and "release folder" in out.output
    (tmp_path / "toy.py").write_text("x = 1\n")
    out = CliRunner().invoke(main, ["submit", "toy", "toy.py", "--token", "t", "--server",
                                    "http://127.0.0.1:9", "--no-wait"])
    assert out.exit_code == 1 and "cannot reach the service" in out.output


def test_serve_takes_trusted_proxies_and_refuses_what_is_not_an_address(course, monkeypatch):
    import autograder.service.app as app_module

    seen = {}

    class Stop(Exception):
        pass

    def capture(settings, *args, **kwargs):
        seen["settings"] = settings
        raise Stop

    monkeypatch.setattr(app_module, "create_app", capture)
    r = CliRunner().invoke(main, ["serve", "--course", str(course), "--workers", "0",
                                  "--trusted-proxy", "10.0.0.5", "--trusted-proxy",
                                  "192.168.0.0/16"])
    assert isinstance(r.exception, Stop), r.output
    assert seen["settings"].trusted_proxies == ("10.0.0.5", "192.168.0.0/16")
    r = CliRunner().invoke(main, ["serve", "--course", str(course), "--trusted-proxy",
                                  "proxy.example.org"])
    assert r.exit_code == 2 and "not an IP address or a CIDR network" in r.output
    assert "settings" in seen and "Traceback" not in r.output
