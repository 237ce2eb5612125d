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
    """One assignment's paths in a course repository, and its validated config."""

    course_root: Path
    name: str

    @property
    def public_dir(self) -> Path:
        return self.course_root / "assignments" / self.name

    @property
    def solution_dir(self) -> Path:
        return self.course_root / "solutions" / self.name

    @property
    def release_dir(self) -> Path:
        return self.course_root / "release" / self.name

    @cached_property
    def config(self) -> AssignmentConfig:
        return load_assignment(self.public_dir / "assignment.toml")

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
