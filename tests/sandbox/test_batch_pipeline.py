"""A batch on the process backend keeps the runner's start and end off the grader's critical
path (the next runner is started ahead; a finished submission's result is completed once its
runner has reported how it ended, while the next submission's tests run). What must still
hold: no runner starts under a uid whose previous runner has not ended, every result has its
own runner's usage, and results come out in the batch's order, each exactly once."""

from __future__ import annotations

import threading
import time

from autograder.course import Course
from autograder.demo import build_demo_course
from autograder.harness.grader import grade_uploads
from autograder.sandbox import process

BURN = '''
import time as _time

def _burn(seconds):
    end = _time.process_time() + seconds
    while _time.process_time() < end:
        pass

_burn({seconds})
'''


def test_a_runner_never_starts_under_a_uid_whose_last_runner_is_still_ending(tmp_path,
                                                                             monkeypatch):
    root = build_demo_course(tmp_path / "course")
    correct = (root / "solutions/softmax/samples/correct.py").read_text()
    uploads = []
    burns = {}
    for i in range(6):
        seconds = 0.4 if i % 3 == 1 else 0.0  # some submissions burn CPU at import
        upload = tmp_path / "uploads" / f"s{i}.py"
        upload.parent.mkdir(exist_ok=True)
        upload.write_text(correct + (BURN.format(seconds=seconds) if seconds else ""))
        uploads.append(upload)
        burns[f"s{i}"] = seconds

    lock = threading.Lock()
    events: list[tuple[float, str, int, object]] = []  # (time, what, uid, runner)
    real_start = process.ProcessSandbox._start
    real_exit_info = process.ProcessRunner.exit_info

    def start(self, files, limits, slot, lease):
        runner = real_start(self, files, limits, slot, lease)
        runner._test_uid = self.uids.uid(slot)
        with lock:
            events.append((time.monotonic(), "start", runner._test_uid, runner))
        return runner

    def exit_info(self, timeout=2.0):
        info = real_exit_info(self, timeout)
        if info is not None and not getattr(self, "_test_ended", False):
            self._test_ended = True
            with lock:
                events.append((time.monotonic(), "ended", self._test_uid, self))
        return info

    monkeypatch.setattr(process.ProcessSandbox, "_start", start)
    monkeypatch.setattr(process.ProcessRunner, "exit_info", exit_info)
    finished: list[str] = []
    results = grade_uploads(Course(root).assignment("softmax"), uploads, backend="process",
                            on_result=lambda r: finished.append(r.submission))

    # Order and completeness: every submission once, in the batch's order.
    assert finished == [f"s{i}" for i in range(6)], finished
    assert [r.submission for r in results] == finished
    # Every runner that started has ended, and before it ended no other runner started under
    # its uid.
    alive: dict[int, object] = {}
    for _, what, uid, runner in sorted(events, key=lambda e: e[0]):
        if what == "start":
            assert uid not in alive, f"a runner started under uid {uid} while another ran"
            alive[uid] = runner
        elif alive.get(uid) is runner:
            del alive[uid]
    assert not alive, "a runner never reported its end"
    assert sum(1 for e in events if e[1] == "start") == 6
    # Each result carries its own runner's CPU time: the burners' 0.4 s, not a neighbour's.
    for r in results:
        assert r.score == r.max_score, (r.submission, [t.output[:200] for t in r.tests
                                                       if t.score < t.max_score])
        if burns[r.submission]:
            assert 0.35 <= r.resources.cpu_s <= 1.2, (r.submission, r.resources)
        else:
            assert r.resources.cpu_s < 0.3, (r.submission, r.resources)
