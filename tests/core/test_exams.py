"""Exams as course content, without a sandbox: the pure functions of autograder/exams.py (end
time, start refusals, variant choice), the ``[exam]`` and ``[variants.*]`` config with its error
messages, variants as ordinary assignments, and a release that never carries the password."""

from __future__ import annotations

import collections
import datetime as dt
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from autograder.authoring.release import build_release, plan_release
from autograder.cli import main
from autograder.config import ConfigError, ExamConfig, load_assignment
from autograder.course import Course
from autograder.exams import (Allowance, ExamWindow, choose_variant, ends_at, exam_window,
                              start_refusal)
from tests.conftest import write

UTC = dt.timezone.utc
ZONE = ZoneInfo("America/New_York")
OPENS = dt.datetime(2026, 12, 10, 9, 0, tzinfo=ZONE)
CLOSES = dt.datetime(2026, 12, 10, 12, 0, tzinfo=ZONE)
WINDOW = ExamWindow(OPENS, CLOSES, dt.timedelta(minutes=60))


# -- ends_at -----------------------------------------------------------------------------------

def test_a_factor_of_1_5_gives_90_of_60_minutes():
    start = OPENS + dt.timedelta(minutes=5)
    assert ends_at(start, WINDOW) - start == dt.timedelta(minutes=60)
    assert ends_at(start, WINDOW, Allowance(time_factor=1.5)) - start == dt.timedelta(minutes=90)
    assert (ends_at(start, WINDOW, Allowance(time_factor=1.5, extra_minutes=10)) - start
            == dt.timedelta(minutes=100))


def test_the_window_clamps_the_end_time():
    late_start = CLOSES - dt.timedelta(minutes=20)
    assert ends_at(late_start, WINDOW) == CLOSES
    assert ends_at(late_start, WINDOW, Allowance(time_factor=2)) == CLOSES
    # A window extension moves that student's closes, and only as far as it says.
    extended = Allowance(time_factor=2, window_extension_minutes=30)
    assert ends_at(late_start, WINDOW, extended) == CLOSES + dt.timedelta(minutes=30)
    assert ends_at(OPENS, WINDOW, extended) == OPENS + dt.timedelta(minutes=120)


def test_ends_at_works_across_zones_and_refuses_naive_times():
    start_utc = (OPENS + dt.timedelta(minutes=1)).astimezone(UTC)
    assert ends_at(start_utc, WINDOW) == OPENS + dt.timedelta(minutes=61)
    with pytest.raises(ValueError, match="no time zone"):
        ends_at(dt.datetime(2026, 12, 10, 9, 30), WINDOW)


@pytest.mark.parametrize("allowance", [dict(time_factor=0.5), dict(extra_minutes=-1),
                                       dict(window_extension_minutes=-5)])
def test_an_allowance_never_shortens_the_exam(allowance):
    with pytest.raises(ValueError):
        Allowance(**allowance)


def test_exam_window_reads_wall_clock_times_in_the_course_zone():
    exam = ExamConfig(opens=dt.datetime(2026, 12, 10, 9), closes=dt.datetime(2026, 12, 10, 12),
                      duration_minutes=60)
    assert exam_window(exam, ZONE) == WINDOW


# -- start_refusal -----------------------------------------------------------------------------

def test_start_is_refused_outside_the_window():
    second = dt.timedelta(seconds=1)
    assert "opens at 2026-12-10 09:00 EST" in start_refusal(WINDOW, OPENS - second)
    assert start_refusal(WINDOW, OPENS) is None
    assert start_refusal(WINDOW, CLOSES - second) is None
    assert "closed" in start_refusal(WINDOW, CLOSES)
    assert start_refusal(WINDOW, CLOSES, allowance=Allowance(window_extension_minutes=10)) is None


def test_start_needs_the_password_when_there_is_one():
    now = OPENS + dt.timedelta(minutes=1)
    assert "wrong exam password" in start_refusal(WINDOW, now, password="tulip",
                                                  given_password="tulips")
    assert "wrong exam password" in start_refusal(WINDOW, now, password="tulip")
    assert start_refusal(WINDOW, now, password="tulip", given_password="tulip") is None
    assert start_refusal(WINDOW, now, given_password="anything") is None


def test_start_only_from_the_allowed_networks():
    now = OPENS + dt.timedelta(minutes=1)
    nets = ("10.20.0.0/16", "2001:db8::/32")
    assert start_refusal(WINDOW, now, client_address="10.20.3.4", allowed_networks=nets) is None
    assert start_refusal(WINDOW, now, client_address="2001:db8::7", allowed_networks=nets) is None
    assert "exam room's network (your address is 10.21.0.1)" in start_refusal(
        WINDOW, now, client_address="10.21.0.1", allowed_networks=nets)
    assert "could not be read" in start_refusal(WINDOW, now, client_address="not-an-ip",
                                                allowed_networks=nets)
    assert "could not be read" in start_refusal(WINDOW, now, client_address=None,
                                                allowed_networks=nets)
    assert start_refusal(WINDOW, now, client_address="8.8.8.8") is None  # no list: anywhere


# -- choose_variant ----------------------------------------------------------------------------

VARIANTS = ["leaky_relu", "dropout"]


def test_variant_choice_is_deterministic_and_ignores_the_written_order():
    first = choose_variant("course-secret", "s001", "miniexam1", VARIANTS)
    assert first in VARIANTS
    assert all(choose_variant("course-secret", "s001", "miniexam1", VARIANTS) == first
               for _ in range(5))
    assert choose_variant(b"course-secret", "s001", "miniexam1", VARIANTS[::-1]) == first


def test_variants_spread_over_students():
    counts = collections.Counter(choose_variant("course-secret", f"s{i:04d}", "miniexam1",
                                                ["a", "b", "c"]) for i in range(3000))
    assert set(counts) == {"a", "b", "c"}
    assert all(900 <= n <= 1100 for n in counts.values()), counts


def test_variant_choice_depends_on_the_secret_and_the_exam():
    students = [f"s{i:03d}" for i in range(200)]
    ours = [choose_variant("secret-one", s, "miniexam1", VARIANTS) for s in students]
    theirs = [choose_variant("secret-two", s, "miniexam1", VARIANTS) for s in students]
    other_exam = [choose_variant("secret-one", s, "miniexam2", VARIANTS) for s in students]
    # Independent choices agree about half the time; identical ones always would.
    assert 60 < sum(a == b for a, b in zip(ours, theirs)) < 140
    assert 60 < sum(a == b for a, b in zip(ours, other_exam)) < 140


def test_variant_choice_refuses_no_variants_and_an_empty_secret():
    with pytest.raises(ValueError, match="no variants"):
        choose_variant("secret", "s1", "miniexam1", [])
    with pytest.raises(ValueError, match="secret is empty"):
        choose_variant("", "s1", "miniexam1", VARIANTS)


# -- the [exam] table --------------------------------------------------------------------------

EXAM_TOML = """\
name = "quiz9"
kind = "quiz"
points = 2
modules = ["layer"]

[exam]
opens = 2026-12-10T09:00:00
closes = 2026-12-10T12:00:00
duration_minutes = 60
password = "tulip-password-42"
allowed_networks = ["10.20.0.0/16"]
results = "immediately"
public_tests_visible = true

[variants.a]
title = "Quiz 9 (A)"

[variants.b]
modules = ["layer_b"]
"""


def _load(tmp_path: Path, text: str):
    return load_assignment(write(tmp_path / "quiz9" / "assignment.toml", text))


def test_the_exam_table_as_the_issue_writes_it(tmp_path):
    cfg = _load(tmp_path, EXAM_TOML)
    assert cfg.exam is not None
    assert (cfg.exam.duration_minutes, cfg.exam.password, cfg.exam.allowed_networks,
            cfg.exam.results, cfg.exam.public_tests_visible) == (
        60, "tulip-password-42", ("10.20.0.0/16",), "immediately", True)
    assert cfg.due == cfg.exam.closes  # an exam's due time is its closes
    assert list(cfg.variants) == ["a", "b"]
    assert cfg.for_variant("a").title == "Quiz 9 (A)"
    assert cfg.for_variant("b").modules == ("layer_b",)
    assert cfg.for_variant("b").title == "quiz9 (variant b)"
    assert cfg.for_variant("a").variants == {}


def test_exam_defaults(tmp_path):
    cfg = _load(tmp_path, EXAM_TOML.replace('password = "tulip-password-42"\n', "")
                .replace('allowed_networks = ["10.20.0.0/16"]\n', "")
                .replace('results = "immediately"\n', "")
                .replace("public_tests_visible = true\n", ""))
    assert (cfg.exam.password, cfg.exam.allowed_networks, cfg.exam.results,
            cfg.exam.public_tests_visible) == ("", (), "after_release", False)


@pytest.mark.parametrize("change, says", [
    (('kind = "quiz"', 'kind = "homework"'), '[exam] is only for kind = "exam" or "quiz"'),
    (('"10.20.0.0/16"', '"10.20.0.5/16"'), "did you mean '10.20.0.0/16'?"),
    (('"10.20.0.0/16"', '"room-12"'), "exam.allowed_networks: Value error, 'room-12' is not a "
                                      "network in CIDR notation"),
    (("duration_minutes = 60", "duration_minutes = 240"), "longer than the window"),
    (("duration_minutes = 60", "duration_minutes = 0"), "exam.duration_minutes"),
    (("closes = 2026-12-10T12:00:00", "closes = 2026-12-10T08:00:00"), "is not after opens"),
    (("closes = 2026-12-10T12:00:00", "closes = 2026-12-10"), "exam.closes: Value error, "
                                                               "2026-12-10 is a date without a "
                                                               "time of day"),
    (("closes = 2026-12-10T12:00:00", "closes = 2026-12-10T12:00:00Z"), "both with a UTC offset"),
    (('results = "immediately"', 'results = "never"'), "exam.results"),
    (("public_tests_visible = true", "public_tests_visible = true\npasword = 'x'"),
     "exam.pasword: unknown key"),
    (('kind = "quiz"', 'kind = "quiz"\ndue = 2026-12-11T00:00:00'), "remove `due`"),
    (("[variants.a]", "[variants.A]"), "[variants.A]: a variant's name is its folder name"),
    (('modules = ["layer_b"]', 'modules = ["layer_b.py"]'), "[variants.b] modules: module "
                                                            "name 'layer_b.py'"),
    (('title = "Quiz 9 (A)"', 'points = 3'), "variants.a.points: unknown key"),
])
def test_config_mistakes_name_the_key_and_the_fix(tmp_path, change, says):
    old, new = change
    assert old in EXAM_TOML
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, EXAM_TOML.replace(old, new, 1))
    assert says in str(err.value), str(err.value)
    assert "assignment.toml" in str(err.value)


def test_variants_belong_to_timed_kinds(tmp_path):
    text = 'name = "quiz9"\nmodules = ["layer"]\n[variants.a]\n'
    with pytest.raises(ConfigError, match=r"\[variants\.\*\] are only for kind"):
        _load(tmp_path, text)


# -- variants as ordinary assignments, and their release ----------------------------------------

REFERENCE = '''\
"""Variant {v}."""


def double(x):
    """Twice x."""
    # BEGIN SOLUTION
    return x * 2.0 + {offset}  # the {v} variant's solution line
    # END SOLUTION
'''

PUBLIC_TEST = '''\
import pytest


@pytest.mark.points(2)
def test_double(student):
    assert student.double(1.0) == 2.0
'''


@pytest.fixture
def exam_course(tmp_path) -> Course:
    root = tmp_path / "course"
    write(root / "course.toml", 'name = "c"\ntimezone = "America/New_York"\n')
    write(root / "assignments/quiz9/assignment.toml", EXAM_TOML.replace('"layer_b"', '"layer"'))
    for v in ("a", "b"):
        write(root / f"assignments/quiz9/variants/{v}/tests/test_public.py", PUBLIC_TEST)
        write(root / f"solutions/quiz9/variants/{v}/layer.py", REFERENCE.format(v=v, offset=0))
    return Course(root)


def test_each_variant_is_an_assignment_in_its_own_folders(exam_course):
    exam = exam_course.assignment("quiz9")
    assert exam.variant_names() == ["a", "b"]
    a, b = exam.variants()
    assert (a.name, a.variant, a.label) == ("quiz9", "a", "quiz9/a")
    root = exam_course.root
    assert a.public_tests_dir == root / "assignments/quiz9/variants/a/tests"
    assert a.reference_files() == {"layer": root / "solutions/quiz9/variants/a/layer.py"}
    assert a.hidden_tests_dir == root / "solutions/quiz9/variants/a/tests"
    assert a.mutants_dir == root / "solutions/quiz9/variants/a/mutants"
    assert a.release_dir == root / "release/quiz9/variants/a"
    assert a.config.title == "Quiz 9 (A)" and a.config.exam == exam.config.exam
    assert a.variant_names() == [] and exam.variant_of("b") == b
    with pytest.raises(ConfigError, match=r"no variant 'c' \(known: a, b\)"):
        exam.variant_of("c")


def test_the_spec_of_a_variant_grades_the_exam(exam_course):
    from autograder.harness.grader import spec_for

    spec = spec_for(exam_course.assignment("quiz9").variant_of("b"))
    assert spec.assignment == "quiz9"  # results and the gradebook record the exam
    assert [p.parent.parent.name for p in spec.test_files] == ["b"]


def test_release_builds_every_variant_without_the_password(exam_course):
    exam = exam_course.assignment("quiz9")
    written = build_release(exam)
    names = sorted(p.relative_to(exam.release_dir).as_posix() for p in written)
    assert names == [f"variants/{v}/{f}" for v in ("a", "b")
                     for f in ("README.md", "assignment.toml", "layer.py", "tests/test_public.py")]
    for v in ("a", "b"):
        released = exam.release_dir / "variants" / v
        text = (released / "assignment.toml").read_text()
        assert "tulip-password-42" not in text and "[variants" not in text
        # The student's `autograder check` reads it: it must load, with the exam's terms.
        cfg = load_assignment(released / "assignment.toml", folder_must_match=False)
        assert cfg.exam is not None and cfg.exam.password == ""
        assert cfg.exam.model_dump(exclude={"password"}) == \
            exam.config.exam.model_dump(exclude={"password"})
        assert cfg.due == exam.config.due and cfg.modules == ("layer",)
        assert "Timed: 60 minutes" in (released / "README.md").read_text()
        assert "return x * 2.0" not in (released / "layer.py").read_text()
    # Rebuilding gives the same bytes; a variant dropped from the config loses its folder.
    before = {p: p.read_bytes() for p in written}
    assert {p: p.read_bytes() for p in build_release(exam)} == before
    toml = exam.config_path
    toml.write_text(toml.read_text().replace('[variants.b]\nmodules = ["layer"]\n', ""))
    exam = exam_course.assignment("quiz9")
    build_release(exam)
    assert not (exam.release_dir / "variants" / "b").exists()


def test_a_homeworks_released_config_is_still_copied_verbatim(make_course):
    root = make_course({"solutions/toy/toy.py": "def f():\n    return 1\n"})
    a = Course(root).assignment("toy")
    [config] = [f for f in plan_release(a) if f.path == "assignment.toml"]
    assert config.content == a.config_path.read_bytes()


def test_release_cli_names_every_variants_files(exam_course):
    res = CliRunner().invoke(main, ["release", "quiz9", "--course", str(exam_course.root)])
    assert res.exit_code == 0, res.output
    assert "variants/a/layer.py" in res.output and "variants/b/layer.py" in res.output


def test_released_toml_round_trips_special_strings(exam_course):
    """Titles with quotes, backslashes and non-ASCII characters survive the generated TOML."""
    exam = exam_course.assignment("quiz9")
    toml = exam.config_path
    toml.write_text(toml.read_text().replace('title = "Quiz 9 (A)"',
                                             'title = "Quiz \\"9\\" \\\\ é (A)"'))
    exam = exam_course.assignment("quiz9")
    build_release(exam)
    released = tomllib.loads((exam.release_dir / "variants/a/assignment.toml").read_text())
    assert released["title"] == 'Quiz "9" \\ é (A)'
