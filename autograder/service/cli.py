"""Service commands: ``autograder serve``, ``token``, ``invite`` (staff) and ``submit`` (students).
Registered on the main command group by ``autograder/cli.py``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

DEFAULT_SERVER = "http://127.0.0.1:8000"
SERVER_ENV = "AUTOGRADER_SERVER"
TOKEN_ENV = "AUTOGRADER_TOKEN"

course_option = click.option(
    "--course", "course_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The course repository (default: the one containing the current directory).")
db_option = click.option("--db", default=None,
                         help="Database URL (default: $AUTOGRADER_DB, else the course's "
                              "gradebook.sqlite).")


def _settings(course_dir: Path | None, db: str | None, **kw):  # type: ignore[no-untyped-def]
    from autograder.course import Course
    from autograder.service.settings import Settings

    return Settings(course_root=Course.find(course_dir).root, db_url=db, **kw)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface: put TLS in front).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Local grading worker processes (default: one per two CPUs; 0: none, when "
                   "`autograder worker` machines grade).")
@course_option
@db_option
@click.option("--backend", type=click.Choice(["process", "docker"]), default="process",
              show_default=True, help="The sandbox the local workers grade in.")
@click.option("--lease-seconds", type=click.FloatRange(min=1.0), default=30.0, show_default=True,
              help="A job's lease: a worker that stops renewing it for this long (it died) "
                   "loses the job to another.")
@click.option("--secure-cookies/--no-secure-cookies", default=False, show_default=True,
              help="Send cookies over HTTPS only (on behind a TLS proxy).")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="ADDRESS|CIDR",
              callback=lambda ctx, param, values: _networks(values),
              help="A reverse proxy whose X-Forwarded-For is believed when an exam's "
                   "allowed_networks is checked (repeat for several). Without it, the "
                   "connection's own address is the student's.")
def serve(host: str, port: int, workers: int | None, course_dir: Path | None, db: str | None,
          backend: str, lease_seconds: float, secure_cookies: bool,
          trusted_proxies: tuple[str, ...]) -> None:
    """Run the grading service: the JSON API and pages, and N local grading workers over the
    course database (SQLite by default; no other server needed)."""
    import uvicorn

    from autograder.service.app import create_app
    from autograder.service.settings import default_workers
    from autograder.service.workers import LocalWorkers

    settings = _settings(course_dir, db, workers=default_workers() if workers is None else workers,
                         backend=backend, lease_s=lease_seconds, secure_cookies=secure_cookies,
                         public_url=f"http://{host}:{port}", trusted_proxies=trusted_proxies)
    app = create_app(settings)
    pool = LocalWorkers(settings)
    pool.start()
    click.echo(f"serving {settings.course_root.name} on http://{host}:{port} "
               f"({pool.count} local worker{'s' if pool.count != 1 else ''}; database "
               f"{_shown_url(settings.database_url())}); Ctrl-C stops", err=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        pool.stop()


def _networks(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each value an IP address or a CIDR network, or a message saying which is not."""
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an IP address or a CIDR network "
                                     f"(e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(values)


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command()
@click.argument("student")
@course_option
@db_option
@click.option("--label", default="", help="A note kept with the token (e.g. 'laptop').")
def token(student: str, course_dir: Path | None, db: str | None, label: str) -> None:
    """Print a new API token for STUDENT (for `autograder submit --token` or
    $AUTOGRADER_TOKEN). Only its hash is kept: it cannot be shown again."""
    from autograder.service.app import open_database
    from autograder.service.auth import issue_api_token

    database = open_database(_settings(course_dir, db))
    try:
        click.echo(issue_api_token(database, student, label))
    finally:
        database.close()


@click.command()
@click.argument("student")
@course_option
@db_option
@click.option("--url", "public_url", default=DEFAULT_SERVER, show_default=True,
              help="The address students reach the service at.")
@click.option("--days", type=click.FloatRange(min=0.01), default=14.0, show_default=True,
              help="How long the link stays valid.")
def invite(student: str, course_dir: Path | None, db: str | None, public_url: str,
           days: float) -> None:
    """Print an invitation link that lets STUDENT set a password (used once)."""
    from autograder.service.app import open_database
    from autograder.service.auth import create_invitation

    database = open_database(_settings(course_dir, db))
    try:
        click.echo(f"{public_url.rstrip('/')}/invite/{create_invitation(database, student, days)}")
    finally:
        database.close()


def _default_paths(assignment: str) -> list[Path]:
    """In a release folder: the assignment's modules (``softmax.py``...), which must exist."""
    from autograder.config import ConfigError, load_assignment

    toml = Path("assignment.toml")
    if not toml.is_file():
        raise click.UsageError(f"name the files to submit (autograder submit {assignment} "
                               f"FILE...), or run this inside the assignment's release folder")
    try:
        cfg = load_assignment(toml, folder_must_match=False)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    if cfg.name != assignment:
        raise click.UsageError(f"this folder is the release of {cfg.name!r}, not "
                               f"{assignment!r}; run it in {assignment}'s folder or name the "
                               f"files")
    paths = [Path(f"{m}.py") for m in cfg.modules]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise click.ClickException(f"{', '.join(missing)} not found here; submit from the "
                                   f"folder holding your work, or name the files")
    return paths


@click.command()
@click.argument("assignment")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--server", default=None, help=f"The service (default: ${SERVER_ENV}, else "
                                             f"{DEFAULT_SERVER}).")
@click.option("--token", "api_token", default=None,
              help=f"Your API token (default: ${TOKEN_ENV}).")
@click.option("--no-wait", is_flag=True, help="Return once the submission is received.")
@click.option("--timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="How long to wait for the feedback, in seconds.")
def submit(assignment: str, paths: tuple[Path, ...], server: str | None, api_token: str | None,
           no_wait: bool, timeout: float) -> None:
    """Submit your work for ASSIGNMENT and print the feedback when grading ends. From the
    release folder the files default to the assignment's modules; or name the files (.py,
    a .zip or a .ipynb)."""
    import httpx

    server = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
    api_token = api_token or os.environ.get(TOKEN_ENV)
    if not api_token:
        raise click.UsageError(f"no API token: pass --token or set ${TOKEN_ENV} (staff give "
                               f"you one)")
    files = list(paths) or _default_paths(assignment)
    headers = {"Authorization": f"Bearer {api_token}"}
    try:
        with httpx.Client(base_url=server, headers=headers, timeout=60) as client:
            reply = client.post(f"/api/v1/assignments/{assignment}/submissions",
                                files=[("files", (p.name, p.read_bytes())) for p in files])
            body = _json_or_fail(reply)
            click.echo(f"received {', '.join(p.name for p in files)} as submission "
                       f"{body['id']} (attempt {body.get('attempt', '?')}) at "
                       f"{body['received_at']}")
            if no_wait:
                return
            _wait_and_show(client, body["id"], timeout)
    except httpx.TransportError as e:
        raise click.ClickException(f"cannot reach the service at {server} ({e}); check "
                                   f"--server or ${SERVER_ENV}") from None


def _json_or_fail(reply):  # type: ignore[no-untyped-def]
    try:
        body = reply.json()
    except ValueError:
        body = {"detail": reply.text[:300]}
    if reply.status_code >= 400:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        extra = ""
        if reply.status_code == 429 and reply.headers.get("retry-after"):
            extra = f" (retry after {reply.headers['retry-after']} s)"
        raise click.ClickException(f"{detail}{extra}")
    return body


def _wait_and_show(client, submission_id: int, timeout: float) -> None:  # type: ignore[no-untyped-def]
    from autograder.service.models import TERMINAL_STATES

    deadline = time.monotonic() + timeout
    last = ""
    while True:
        body = _json_or_fail(client.get(f"/api/v1/submissions/{submission_id}"))
        state = body["state"]
        shown = state + (f" (position {body['queue_position']})"
                         if body.get("queue_position") else "")
        if shown != last:
            click.echo(f"  {shown}", err=True)
            last = shown
        if state in TERMINAL_STATES:
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"still {state} after {timeout:g} s; see it later with "
                                       f"GET /api/v1/submissions/{submission_id}")
        time.sleep(0.5)
    print_feedback(body)
    if state != "graded":
        sys.exit(1)


def print_feedback(body: dict) -> None:
    """The feedback of a submission (the API's JSON) as a table; student text is escaped."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from autograder.text import neutralise

    console = Console()
    if body["state"] != "graded":
        console.print(f"[bold]{body['state'].replace('_', ' ')}[/]: "
                      f"{escape(neutralise(body.get('message', '')))}")
        return
    table = Table(title=f"{escape(body['assignment'])}, attempt {body['attempt']}: "
                        f"{body['score']:g} / {body['max_score']:g}", show_lines=True)
    table.add_column("test")
    table.add_column("points", justify="right")
    table.add_column("result")
    table.add_column("feedback", overflow="fold")
    for t in body.get("tests", []):
        table.add_row(escape(neutralise(t["name"])), f"{t['score']:g}/{t['max_score']:g}",
                      escape(t.get("outcome", t["status"]).replace("_", " ")),
                      escape(neutralise(t.get("output", ""))))
    hidden = body.get("hidden_tests") or {}
    if hidden.get("count"):
        table.add_row(f"{hidden['count']} hidden test{'s' if hidden['count'] != 1 else ''}",
                      f"{hidden['score']:g}/{hidden['max_score']:g}", "", "")
    console.print(table)
    if body.get("output"):
        console.print(escape(neutralise(body["output"])))
    late = body.get("late_days", 0)
    counts = "counts" if body.get("counts") else "does not count (another attempt does)"
    console.print(f"{late} late day{'s' if late != 1 else ''}; this attempt {counts}")


@click.group("staff")
def staff_group() -> None:
    """Course staff: invite graders, TAs and instructors to the staff pages."""


@staff_group.command("invite")
@click.argument("email")
@click.option("--role", type=click.Choice(["grader", "ta", "instructor"]), required=True,
              help="grader: grades only; ta: also regrades, extensions, operations; "
                   "instructor: everything.")
@click.option("--name", default="", help="Their name, for the staff list.")
@course_option
@db_option
@click.option("--url", "public_url", default=DEFAULT_SERVER, show_default=True,
              help="The address staff reach the service at.")
@click.option("--days", type=click.FloatRange(min=0.01), default=14.0, show_default=True,
              help="How long the link stays valid.")
def staff_invite(email: str, role: str, name: str, course_dir: Path | None, db: str | None,
                 public_url: str, days: float) -> None:
    """Make EMAIL a staff member with --role and print their invitation link (used once:
    they set a password there, then log in with EMAIL)."""
    from autograder.service.app import open_database
    from autograder.service.permissions import invite_staff

    database = open_database(_settings(course_dir, db))
    try:
        token = invite_staff(database, email, role, name=name, by=os.environ.get("USER", ""),
                             days=days)
        click.echo(f"{public_url.rstrip('/')}/invite/{token}")
    finally:
        database.close()
