"""One grading session: the sandbox backend by name, and one pytest run of a spec's tests over
prepared submissions with the grading plugin. Used by the batch grader, its workers, ``verify``,
``check`` and the service's warm graders.

Importing this module is cheap (no pytest, no plugin): a command starts its sandbox first, so
the fork server's imports run while the grader imports pytest and collects the tests.
"""

from __future__ import annotations

import ast
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.errors import UserError
from autograder.harness.spec import GradingSpec, PreparedSubmission
from autograder.results import GradingResult

if TYPE_CHECKING:
    from autograder.sandbox.base import Sandbox

#: What a runner may preload: a library the modules use -> what the fork server imports for it.
#: ``torch.optim``: the first optimizer of a process imports torch's compiler, ``torch._dynamo``
#: (about 1.2 s); it is preloaded only for modules that use ``torch.optim`` themselves, since on
#: the critical path of a `check` it costs more than it saves (training's tests build their
#: optimizers with training_support, which avoids torch.optim for that reason).
_PRELOADABLE = {"numpy": ("numpy",), "torch": ("numpy", "torch"),
                "torch.optim": ("numpy", "torch", "torch._dynamo")}


class NoTestSelected(UserError):
    """``check -k PATTERN`` matched no test."""


def runner_preload(sources: Iterable[Path]) -> tuple[str, ...]:
    """What the fork server should import once for runners of these modules: the heavy
    libraries their code imports (numpy; torch only where they import it; torch's compiler
    only where they use ``torch.optim``). A file that cannot be read or parsed adds nothing
    (the runner imports what it needs itself)."""
    found: set[str] = set()
    for path in sources:
        try:
            tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from torch import optim` names torch.optim
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                found.add(f"{node.value.id}.{node.attr}")  # torch.optim.Adam(...)
        found = {part for name in found for part in _parents(name)}
    preload: list[str] = []
    for library, modules in _PRELOADABLE.items():
        if library in found:
            preload += [m for m in modules if m not in preload]
    return tuple(preload) or ("numpy",)


def _parents(name: str) -> list[str]:
    """``"torch.optim.sgd"`` -> ``["torch", "torch.optim", "torch.optim.sgd"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def make_sandbox(backend: str, preload: tuple[str, ...] | None = None) -> Sandbox:
    """The sandbox backend by name. ``preload``: what the process backend's fork server
    imports once (see :func:`runner_preload`; None: the backend's default, torch included)."""
    if backend == "process":
        from autograder.sandbox.process import ProcessSandbox
        return ProcessSandbox() if preload is None else ProcessSandbox(preload=preload)
    if backend == "docker":
        try:
            from autograder.sandbox.docker import DockerSandbox
        except ImportError:
            from autograder.harness.plugin import HarnessError
            raise HarnessError("the docker backend is not available in this installation") \
                from None
        return DockerSandbox()
    from autograder.harness.plugin import HarnessError
    raise HarnessError(f"unknown sandbox backend {backend!r}: use 'process' or 'docker'")


def start_sandbox(backend: str, preload: tuple[str, ...] | None = None) -> Sandbox:
    """:func:`make_sandbox`, with its slow part (the process backend's fork server, importing
    ``preload``) started now and not waited for: the caller's own imports and the tests'
    collection overlap it, and the first runner waits only for what is left of it."""
    sandbox = make_sandbox(backend, preload)
    sandbox.warm_up()
    return sandbox


def run_session(spec: GradingSpec, submissions: Sequence[PreparedSubmission], sandbox: Sandbox,
                on_result: Callable[[GradingResult], None] | None = None, slot: int = 0,
                keyword: str | None = None) -> dict[str, GradingResult]:
    """Grade prepared submissions with one pytest session; returns results by submission id.
    ``slot`` tells concurrent sessions apart (their runners get distinct uids). ``keyword``:
    run only the tests pytest's ``-k`` expression selects (a student's ``check -k``)."""
    if not submissions:
        return {}
    import pytest

    from autograder.harness import plugin as plugin_module
    from autograder.harness.plugin import GradingPlugin, HarnessError

    plugin = GradingPlugin(spec, list(submissions), sandbox, on_result, slot=slot)
    selection = _Selection()
    with tempfile.TemporaryDirectory(prefix="autograder-pytest-") as tmp:
        args = pytest_args(spec, Path(tmp)) + (["-k", keyword] if keyword is not None else [])
        before = set(sys.modules)
        try:
            code = pytest.main(args, plugins=[plugin, plugin_module, selection])
        finally:
            forget_modules_imported_since(before, spec)
    if plugin.collect_errors:
        raise HarnessError("the tests could not be collected:\n" + "\n".join(plugin.collect_errors))
    if keyword is not None and selection.selected == 0:
        raise NoTestSelected(f"no test matches -k {keyword!r}; the tests are: "
                             f"{', '.join(sorted(selection.names))}")
    missing = [s.id for s in submissions if s.id not in plugin.results]
    if missing:
        raise HarnessError(f"pytest ended (exit code {int(code)}) without grading "
                           f"{', '.join(missing[:5])}; run the tests with plain pytest to see why")
    return plugin.results


class _Selection:
    """Counts the tests a session runs after ``-k`` (and keeps every name, to say which exist)."""

    def __init__(self) -> None:
        self.selected = 0
        self.names: set[str] = set()

    def pytest_deselected(self, items: list) -> None:
        self.names.update(item.originalname for item in items)

    def pytest_collection_finish(self, session) -> None:
        self.selected = len(session.items)
        self.names.update(item.originalname for item in session.items)


def pytest_args(spec: GradingSpec, tmp: Path) -> list[str]:
    """pytest's command line for a grading session (``tmp``: a private folder for its ini)."""
    ini = tmp / "pytest.ini"
    ini.write_text("[pytest]\n")
    return [*(str(p) for p in spec.test_files),
            "-c", str(ini), "--rootdir", str(spec.rootdir),
            "--confcutdir", str(spec.rootdir), "--import-mode=importlib",
            # Plugins the grader does not use; logging alone costs ~18 ms a submission.
            "-p", "no:cacheprovider", "-p", "no:stepwise", "-p", "no:terminal",
            "-p", "no:logging", "-p", "no:warnings", "-p", "no:unraisableexception",
            "-p", "no:threadexception", "-p", "no:doctest", "-p", "no:junitxml",
            "-p", "no:faulthandler", "-p", "no:unittest", "-p", "no:debugging",
            # No third-party plugins (xdist, anyio, hypothesis...): tests of an assignment use
            # the grading plugin only, and loading the others costs a student's `check` ~0.3 s.
            "--disable-plugin-autoload",
            "--capture=sys", "-W", "ignore::DeprecationWarning",
            # Plain asserts: a student reads the test's own message (or the failing line),
            # not pytest's introspection dumping the values compared.
            "--assert=plain"]


def forget_modules_imported_since(before: set[str], spec: GradingSpec) -> None:
    """pytest caches test modules in sys.modules by their path relative to the rootdir; the
    next session (another course, or edited tests) must import its own files afresh. Only the
    test files, conftests and the reference are forgotten: a library the tests imported (torch)
    must stay, since importing an extension module twice crashes the interpreter."""
    test_dirs = tuple(str(d.resolve()) + "/" for d in {p.parent for p in spec.test_files})
    root = str(spec.rootdir.resolve()) + "/"
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None) or ""
        if (file.startswith(test_dirs) and "site-packages" not in file
                or (file.startswith(root) and file.endswith("/conftest.py"))
                or name.startswith("_autograder_reference_")):
            del sys.modules[name]


