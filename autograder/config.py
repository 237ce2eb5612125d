"""The one config loader: ``course.toml`` and ``assignments/<name>/assignment.toml``.

Configs are validated with pydantic; a mistake is reported as :class:`ConfigError` naming the
file, the key and what to write instead, and nothing is partially applied.
"""

from __future__ import annotations

from autograder.errors import UserError

import datetime as dt
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(UserError):
    """A course or assignment config file is missing or malformed. The message says the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _due_with_a_time(value: object) -> object:
    """Refuse a due date without a time of day: ``due = 2026-10-02`` would silently mean
    midnight at the start of that day, a day earlier than most people read it."""
    text = value.isoformat() if isinstance(value, dt.date) and not isinstance(value, dt.datetime) \
        else value if isinstance(value, str) and len(value.strip()) == 10 else None
    if text is not None:
        raise ValueError(f"{text} is a date without a time of day; add a time, e.g. "
                         f"due = {text}T23:59:00 (wall-clock time in the course time zone)")
    return value


class Resources(_Strict):
    """What one submission may use while it is graded."""

    gpu: Literal["none", "optional", "required"] = "none"
    memory_mb: int = Field(2048, ge=64, le=262144)
    # Wall-clock budget for the whole submission (all tests together).
    time_limit_s: float = Field(300.0, gt=0, le=86400)
    # Default wall-clock limit of one test; a test's ``time_limit`` marker overrides it.
    test_time_limit_s: float = Field(30.0, gt=0, le=3600)
    max_processes: int = Field(64, ge=1, le=4096)
    disk_mb: int = Field(64, ge=1, le=65536)
    max_output_kb: int = Field(64, ge=1, le=65536)
    # Largest single protocol message (one call's arguments or one return value).
    max_message_mb: int = Field(256, ge=1, le=8192)


class ServicePolicy(_Strict):
    """``[service]``: how the grading service (``autograder serve``) treats this assignment."""

    # Submissions a student may make in any rolling hour (None: no limit). Past it the service
    # answers 429 with Retry-After; a submission the platform failed to grade is not counted.
    max_submissions_per_hour: int | None = Field(None, ge=1, le=10000)
    # When grades are published (wall-clock time in the course time zone): tests marked
    # ``visibility("after_published")`` are shown to students from then on. None: not yet.
    grades_published: dt.datetime | None = None


class AssignmentConfig(_Strict):
    """``assignments/<name>/assignment.toml``."""

    name: str
    title: str = ""
    kind: Literal["homework", "exam", "project", "quiz"] = "homework"
    category: str = ""
    due: dt.datetime | None = None
    # Declared total; when set, ``verify`` checks that the tests' points add up to it.
    points: float | None = None
    # Student modules: ``modules = ["softmax"]`` means the student submits ``softmax.py``.
    modules: tuple[str, ...] = Field(min_length=1)
    # Extra public files (relative to assignments/<name>/) the student runner may import,
    # copied into the release and into every submission's sandbox.
    support_files: tuple[str, ...] = ()
    handout: str | None = None
    resources: Resources = Resources()
    service: ServicePolicy = ServicePolicy()

    _due_time = field_validator("due", mode="before")(_due_with_a_time)

    @field_validator("modules")
    @classmethod
    def _module_names(cls, modules: tuple[str, ...]) -> tuple[str, ...]:
        for m in modules:
            if not m.isidentifier():
                raise ValueError(f"module name {m!r} is not a Python identifier "
                                 f"(write the module name without '.py', e.g. \"softmax\")")
        return modules

    @property
    def main_module(self) -> str:
        return self.modules[0]


class Slack(_Strict):
    """``[slack]``: the late policy. See gradebook/policy.py for how each number is used."""

    days: int = Field(8, ge=0)
    # Fraction of the earned score a late submission loses once the slack budget cannot cover it.
    penalty_per_late_submission: float = Field(0.10, ge=0, le=1)
    grace_minutes: float = Field(0, ge=0)
    # A submission more than this many late days after the (extended) due time is not accepted.
    max_late_days: int = Field(7, ge=0)
    allocation: Literal["chronological", "best"] = "chronological"
    # "elapsed" (the stated policy: each started 24 hours after the due time is one late day);
    # "wall": late day k ends at the due time's wall-clock time k days later in the course time
    # zone (23 or 25 hours across a daylight-saving change).
    late_day_clock: Literal["wall", "elapsed"] = "elapsed"
    # Kinds that never take slack days and close hard at the due time (plus the grace period).
    no_slack_kinds: tuple[str, ...] = ("exam", "quiz")


class GradingDefaults(_Strict):
    backend: Literal["process", "docker"] = "process"
    score_policy: Literal["last", "best", "chosen"] = "last"
    jobs: int = Field(0, ge=0, description="parallel grading workers; 0 means automatic "
                                           "(one per two CPUs, for large batches)")


class Category(_Strict):
    """``[categories.<name>]``: one part of the final grade."""

    weight: float = Field(ge=0)
    # Assessment kinds that land here when their config names no category.
    kinds: tuple[str, ...] = ()
    # "mean": every assessment of the category counts the same; "points": by their max points.
    aggregate: Literal["mean", "points"] = "mean"
    title: str = ""


def _default_categories() -> dict[str, Category]:
    return {
        "homeworks": Category(weight=35, kinds=("homework",)),
        "midterm": Category(weight=20),
        "final": Category(weight=30),
        "mini-exams": Category(weight=10, kinds=("quiz",)),
        "project": Category(weight=5, kinds=("project",)),
    }


def _default_letters() -> dict[str, float]:
    return {"A": 93, "A-": 90, "B+": 87, "B": 83, "B-": 80, "C+": 77, "C": 73, "C-": 70,
            "D": 60, "F": 0}


class Assessment(_Strict):
    """``[assessments.<name>]``: something graded outside the autograder (a paper exam, the
    project) that has no ``assignments/<name>/assignment.toml``; scores come from
    ``autograder gradebook scores import``."""

    title: str = ""
    kind: Literal["homework", "exam", "project", "quiz"] = "exam"
    category: str = ""
    due: dt.datetime | None = None
    points: float | None = Field(None, gt=0)

    _due_time = field_validator("due", mode="before")(_due_with_a_time)


class CourseConfig(BaseModel):
    """``course.toml``. Sections other than the ones below are kept as read (``extra``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = "course"
    timezone: str = "UTC"
    slack: Slack = Slack()
    grading: GradingDefaults = GradingDefaults()
    # The marking scheme; weights need not add up to 100 (they are used as proportions). A
    # course.toml that writes [categories.*] replaces the defaults: it lists every category.
    categories: dict[str, Category] = Field(default_factory=_default_categories)
    # Letter -> lowest percentage that earns it; the lowest entry must be 0.
    letters: dict[str, float] = Field(default_factory=_default_letters)
    assessments: dict[str, Assessment] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}; use an IANA name such as "
                             f"\"America/New_York\" or \"UTC\"") from None
        return tz

    @field_validator("categories")
    @classmethod
    def _some_weight(cls, categories: dict[str, Category]) -> dict[str, Category]:
        if categories and sum(c.weight for c in categories.values()) <= 0:
            raise ValueError("every category has weight 0; give at least one a positive weight")
        claimed: dict[str, str] = {}
        for name, cat in categories.items():
            for kind in cat.kinds:
                if kind in claimed:
                    raise ValueError(f"kind {kind!r} is listed in both [categories.{claimed[kind]}] "
                                     f"and [categories.{name}]; keep it in one")
                claimed[kind] = name
        return categories

    @field_validator("letters")
    @classmethod
    def _letter_scale(cls, letters: dict[str, float]) -> dict[str, float]:
        if not letters:
            raise ValueError("the letter scale is empty; write e.g. A = 90, B = 80, F = 0")
        for letter, cutoff in letters.items():
            if not 0 <= cutoff <= 100:
                raise ValueError(f"letter {letter!r} has cutoff {cutoff}; cutoffs are "
                                 f"percentages between 0 and 100")
        if min(letters.values()) != 0:
            raise ValueError("no letter starts at 0, so a low grade would get no letter; "
                             "add the lowest letter with cutoff 0 (e.g. F = 0)")
        return dict(sorted(letters.items(), key=lambda kv: -kv[1]))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax at that line") from None


def _explain(path: Path, err: ValidationError) -> ConfigError:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/authoring.md for the keys)"
        lines.append(f"  {where}: {msg}")
    return ConfigError(f"{path}: invalid configuration\n" + "\n".join(lines))


def load_assignment(path: Path, *, folder_must_match: bool = True) -> AssignmentConfig:
    """Load and validate an ``assignment.toml`` (or the directory holding one).

    In a course repository the folder must be named after the assignment; a student's copy of
    a release may live in any folder (``folder_must_match=False``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "assignment.toml"
    data = _read_toml(path)
    try:
        cfg = AssignmentConfig.model_validate(data)
    except ValidationError as e:
        raise _explain(path, e) from None
    if folder_must_match and cfg.name != path.parent.name:
        raise ConfigError(f"{path}: name = {cfg.name!r} but the folder is "
                          f"{path.parent.name!r}; they must match")
    return cfg


def load_course(path: Path) -> CourseConfig:
    """Load and validate ``course.toml`` (or the course directory holding one); a course
    directory without one gets the defaults (8 slack days, 10% per late submission)."""
    path = Path(path)
    if path.is_dir():
        path = path / "course.toml"
    if not path.exists():
        return CourseConfig()
    data = _read_toml(path)
    try:
        return CourseConfig.model_validate(data)
    except ValidationError as e:
        raise _explain(path, e) from None
