"""The service part of the demo: ``autograder serve`` on the embedded default (SQLite, local
warm workers, no other server), the sample submissions sent through the JSON API as students,
their feedback printed, and the address of the pages.

    python -m autograder.demo.service            # submit, print, stop   (make demo)
    python -m autograder.demo.service --keep     # keep serving          (make serve)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.demo import ASSIGNMENT, build_demo_course, demo_uploads

#: One demo student per sample: which upload each sends.
STUDENTS = {"alice": "correct.py", "bob": "buggy.py", "carol": "zipped_folder.zip",
            "dave": "notebook.ipynb", "mallory": "malicious.py"}
DEMO_PASSWORD = "demo-password-alice"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_course(root: Path) -> tuple[Path, dict[str, str], list[Path]]:
    """A demo course with its release, a roster of the demo students, an API token each, and
    alice's password set (so the pages can be tried). Returns the course, tokens and uploads."""
    from autograder.authoring.release import build_release
    from autograder.course import Course
    from autograder.service.app import open_database
    from autograder.service.auth import accept_invitation, create_invitation, issue_api_token
    from autograder.service.settings import Settings
    from gradebook.csvfiles import RosterRow

    course_dir = build_demo_course(root / "course")
    build_release(Course(course_dir).assignment(ASSIGNMENT))
    uploads = demo_uploads(course_dir, root)
    db = open_database(Settings(course_root=course_dir))
    try:
        db.gb.import_roster([RosterRow(i + 2, sid, sid.capitalize(), f"{sid}@example.edu")
                             for i, sid in enumerate(STUDENTS)])
        tokens = {sid: issue_api_token(db, sid, "demo") for sid in STUDENTS}
        accept_invitation(db, create_invitation(db, "alice"), DEMO_PASSWORD)
    finally:
        db.close()
    return course_dir, tokens, uploads


def run(keep: bool, port: int = 8000, workers: int | None = None) -> int:
    """Start the service, submit every sample as its student, print the feedback; then stop
    (or, with ``keep``, serve until Ctrl-C)."""
    import httpx
    from rich.console import Console

    from autograder.service.cli import print_feedback
    from autograder.service.models import TERMINAL_STATES

    console = Console()
    with tempfile.TemporaryDirectory(prefix="autograder-service-demo-") as tmp:
        course_dir, tokens, uploads = prepare_course(Path(tmp))
        by_name = {p.name: p for p in uploads}
        port = _free_port(port)
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "autograder.cli", "serve", "--course", str(course_dir),
               "--port", str(port)] + (["--workers", str(workers)] if workers else [])
        console.print(f"[bold]5. the service[/] autograder serve on {url} (embedded default: "
                      f"SQLite in the course folder, local warm workers)")
        proc = subprocess.Popen(cmd, cwd=tmp, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    console.print("[red]the service did not start[/]")
                    return 1
                time.sleep(0.3)
            ids = {}
            with httpx.Client(base_url=url, timeout=60) as client:
                for sid, name in STUDENTS.items():
                    path = by_name.get(name)
                    if path is None:
                        continue
                    r = client.post(f"/api/v1/assignments/{ASSIGNMENT}/submissions",
                                    headers={"Authorization": f"Bearer {tokens[sid]}"},
                                    files=[("files", (path.name, path.read_bytes()))])
                    body = r.json()
                    console.print(f"   {sid} submits {name}: HTTP {r.status_code} "
                                  f"{body.get('state', body.get('detail', ''))}",
                                  markup=False, highlight=False)
                    if r.status_code == 202:
                        ids[sid] = body["id"]
                for sid, sub in ids.items():
                    headers = {"Authorization": f"Bearer {tokens[sid]}"}
                    while True:
                        body = client.get(f"/api/v1/submissions/{sub}", headers=headers).json()
                        if body["state"] in TERMINAL_STATES:
                            break
                        time.sleep(0.5)
                    console.print(f"\n[bold]{sid}[/] ({STUDENTS[sid]}):")
                    print_feedback(body)
            console.print(f"\n[bold]6. the pages[/] {url}/ : log in as [bold]alice[/] with "
                          f"password [bold]{DEMO_PASSWORD}[/] to see her assignments, upload "
                          f"and watch an attempt being graded")
            if keep:
                console.print("serving until Ctrl-C")
                try:
                    proc.wait()
                except KeyboardInterrupt:
                    pass
            return 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="The grading service's demo.")
    parser.add_argument("--keep", action="store_true", help="keep serving until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    sys.exit(run(args.keep, args.port, args.workers))


if __name__ == "__main__":
    main()
