"""Where things are in a course repository (see docs/authoring.md for the layout)."""

from __future__ import annotations

from autograder.errors import UserError

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from autograder.config import AssignmentConfig, ConfigError, CourseConfig, load_assignment, load_course


class CourseNotFound(UserError):
    """No course directory (one holding course.toml or assignments/) at or above a path."""


@dataclass(frozen=True)
class Assignment:
    """One assignment's paths in a course repository, and its validated config.

    An exam with ``[variants.<v>]`` tables is graded per variant: ``exam.variants()`` gives one
    ``Assignment`` per variant (``variant`` set), whose folders are ``variants/<v>/`` inside the
    exam's, so the variant looks like an ordinary assignment to ``spec_for``, ``release`` and
    ``verify``. Its ``name`` stays the exam's: results and the gradebook record the exam."""

    course_root: Path
    name: str
    variant: str | None = None

    def _place(self, top: str) -> Path:
        base = self.course_root / top / self.name
        return base / "variants" / self.variant if self.variant is not None else base

    @property
    def label(self) -> str:
        """How messages name it: ``softmax``, or ``miniexam1/leaky_relu`` for a variant."""
        return self.name if self.variant is None else f"{self.name}/{self.variant}"

    @property
    def config_path(self) -> Path:
        """The exam's assignment.toml for a variant too: one file holds every variant."""
        return self.course_root / "assignments" / self.name / "assignment.toml"

    @property
    def public_dir(self) -> Path:
        return self._place("assignments")

    @property
    def solution_dir(self) -> Path:
        return self._place("solutions")

    @property
    def release_dir(self) -> Path:
        return self._place("release")

    @cached_property
    def config(self) -> AssignmentConfig:
        cfg = load_assignment(self.config_path)
        return cfg if self.variant is None else cfg.for_variant(self.variant)

    def variant_names(self) -> list[str]:
        """The exam's variants, as written in assignment.toml (``[]``: not an exam with
        variants, or already one variant)."""
        return [] if self.variant is not None else list(self.config.variants)

    def variants(self) -> list[Assignment]:
        """One ``Assignment`` per variant (``[]`` when there are none)."""
        return [self.variant_of(v) for v in self.variant_names()]

    def variant_of(self, variant: str) -> Assignment:
        """The variant named ``variant`` (e.g. the one stored with a student's exam attempt)."""
        if self.variant is not None or variant not in self.config.variants:
            known = ", ".join(self.variant_names()) or "none"
            raise ConfigError(f"{self.label} has no variant {variant!r} (known: {known})")
        return Assignment(self.course_root, self.name, variant)

    @property
    def public_tests_dir(self) -> Path:
        return self.public_dir / "tests"

    @property
    def hidden_tests_dir(self) -> Path:
        return self.solution_dir / "tests"

    @property
    def mutants_dir(self) -> Path:
        return self.solution_dir / "mutants"

    def public_test_files(self) -> list[Path]:
        return sorted(self.public_tests_dir.glob("test_*.py"))

    def hidden_test_files(self) -> list[Path]:
        return sorted(self.hidden_tests_dir.glob("test_*.py"))

    def reference_files(self) -> dict[str, Path]:
        """Module name -> reference source (with solution regions)."""
        return {m: self.solution_dir / f"{m}.py" for m in self.config.modules}

    def support_files(self) -> list[Path]:
        return [self.public_dir / f for f in self.config.support_files]

    def mutant_files(self) -> list[Path]:
        return sorted(p for p in self.mutants_dir.glob("*.py") if not p.name.startswith("_"))


@dataclass(frozen=True)
class Course:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Course:
        """The course at or above ``start`` (default: the current directory)."""
        here = Path(start or Path.cwd()).resolve()
        for candidate in (here, *here.parents):
            if (candidate / "course.toml").is_file() or (candidate / "assignments").is_dir():
                return cls(candidate)
        raise CourseNotFound(
            f"no course directory at or above {here}: run this inside a course repository "
            f"(one with course.toml and assignments/), or pass --course DIR")

    @cached_property
    def config(self) -> CourseConfig:
        return load_course(self.root)

    def assignment(self, name: str) -> Assignment:
        a = Assignment(self.root, name)
        if not (a.public_dir / "assignment.toml").is_file():
            known = ", ".join(self.assignment_names()) or "none"
            raise ConfigError(f"no assignment {name!r} in {self.root / 'assignments'} "
                              f"(known: {known})")
        return a

    def assignment_names(self) -> list[str]:
        base = self.root / "assignments"
        if not base.is_dir():
            return []
        return sorted(p.parent.name for p in base.glob("*/assignment.toml"))
