"""The one config loader: ``course.toml`` and ``assignments/<name>/assignment.toml``.

Configs are validated with pydantic; a mistake is reported as :class:`ConfigError` naming the
file, the key and what to write instead, and nothing is partially applied.
"""

from __future__ import annotations

from autograder.errors import UserError

import datetime as dt
import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)


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


class ExamConfig(_Strict):
    """``[exam]``: the terms of a timed exam or quiz (see autograder/exams.py for how they are
    applied). Times without an offset are wall-clock times in the course time zone."""

    # The window in which an attempt may start and must end.
    opens: dt.datetime
    closes: dt.datetime
    # Per student, from the moment they start (times their accommodation's time_factor).
    duration_minutes: float = Field(gt=0, le=7 * 24 * 60)
    # Empty: no password. Never released: the student release gets a generated assignment.toml.
    password: str = ""
    # CIDR networks an attempt may be started from; empty: anywhere.
    allowed_networks: tuple[str, ...] = ()
    # "after_release": scores and feedback once staff release them; "immediately": as homework.
    results: Literal["after_release", "immediately"] = "after_release"
    # Whether the public tests' feedback is shown during the exam (hidden tests never are).
    public_tests_visible: bool = False

    _times = field_validator("opens", "closes", mode="before")(_due_with_a_time)

    @field_validator("allowed_networks")
    @classmethod
    def _cidrs(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for net in networks:
            try:
                ipaddress.ip_network(net, strict=True)
            except ValueError as e:
                hint = ""
                try:
                    hint = f" (did you mean {str(ipaddress.ip_network(net, strict=False))!r}?)"
                except ValueError:
                    pass
                raise ValueError(f"{net!r} is not a network in CIDR notation ({e}){hint}; "
                                 f"write e.g. \"10.20.0.0/16\"") from None
        return networks

    @model_validator(mode="after")
    def _window(self) -> ExamConfig:
        if (self.opens.tzinfo is None) != (self.closes.tzinfo is None):
            raise ValueError("opens and closes: write both with a UTC offset or both without "
                             "(wall-clock time in the course time zone)")
        if self.closes <= self.opens:
            raise ValueError(f"closes = {self.closes.isoformat()} is not after opens = "
                             f"{self.opens.isoformat()}; the window must have a length")
        window = (self.closes - self.opens).total_seconds() / 60
        if self.duration_minutes > window:
            raise ValueError(f"duration_minutes = {self.duration_minutes:g} is longer than the "
                             f"window from opens to closes ({window:g} minutes), so no student "
                             f"could use it all; shorten it or move closes later")
        return self


# A variant's name is a folder name: assignments/<exam>/variants/<name>/.
_VARIANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


class VariantConfig(_Strict):
    """``[variants.<name>]``: one variant of an exam, with its own reference, tests and mutants
    under ``variants/<name>/`` (see docs/authoring.md). Keys left out are the exam's."""

    title: str = ""
    modules: tuple[str, ...] | None = Field(None, min_length=1)
    handout: str | None = None
    support_files: tuple[str, ...] | None = None


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
    # Timed exams and quizzes only (kind = "exam" | "quiz").
    exam: ExamConfig | None = None
    variants: dict[str, VariantConfig] = Field(default_factory=dict)

    _due_time = field_validator("due", mode="before")(_due_with_a_time)

    @field_validator("modules")
    @classmethod
    def _module_names(cls, modules: tuple[str, ...]) -> tuple[str, ...]:
        for m in modules:
            if not m.isidentifier():
                raise ValueError(f"module name {m!r} is not a Python identifier "
                                 f"(write the module name without '.py', e.g. \"softmax\")")
        return modules

    @model_validator(mode="after")
    def _exam_terms(self) -> AssignmentConfig:
        """[exam] and [variants.*] belong to timed kinds; an exam's due time is its closes."""
        timed = self.kind in ("exam", "quiz")
        if self.exam is not None and not timed:
            raise ValueError(f"[exam] is only for kind = \"exam\" or \"quiz\" (this is "
                             f"kind = {self.kind!r}); change kind or remove the [exam] table")
        if self.variants and not timed:
            raise ValueError(f"[variants.*] are only for kind = \"exam\" or \"quiz\" (this is "
                             f"kind = {self.kind!r}); change kind or remove the variants")
        for name, variant in self.variants.items():
            if not _VARIANT_NAME.fullmatch(name):
                raise ValueError(f"[variants.{name}]: a variant's name is its folder name: use "
                                 f"lowercase letters, digits, '_' and '-' (e.g. [variants.a])")
            if variant.modules is not None:
                try:
                    self._module_names(variant.modules)
                except ValueError as e:
                    raise ValueError(f"[variants.{name}] modules: {e}") from None
        if self.exam is None:
            return self
        if self.due is None:
            # The exam's closes is its due time: the gradebook closes exams hard at the due time.
            return self.model_copy(update={"due": self.exam.closes})
        if self.due != self.exam.closes:
            raise ValueError(f"due = {self.due.isoformat()} differs from [exam] closes = "
                             f"{self.exam.closes.isoformat()}; an exam's due time is its closes: "
                             f"remove `due`")
        return self

    def for_variant(self, name: str) -> AssignmentConfig:
        """The config of one variant: the exam's, with the variant's own keys in place."""
        try:
            variant = self.variants[name]
        except KeyError:
            known = ", ".join(self.variants) or "none"
            raise ConfigError(f"{self.name} has no variant {name!r} (known: {known}); add "
                              f"[variants.{name}] to its assignment.toml") from None
        update = {k: v for k, v in variant.model_dump().items() if v is not None and v != ""}
        update["variants"] = {}
        if not variant.title:
            update["title"] = f"{self.title or self.name} (variant {name})"
        return self.model_copy(update=update)

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
