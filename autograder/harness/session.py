"""One grading session: the sandbox backend by name, and one pytest run of a spec's tests over
prepared submissions with the grading plugin. Used by the batch grader, its workers, ``verify``,
``check`` and the service's warm graders."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from autograder.harness import plugin as plugin_module
from autograder.harness.plugin import GradingPlugin, HarnessError
from autograder.harness.spec import GradingSpec, PreparedSubmission
from autograder.results import GradingResult
from autograder.sandbox.base import Sandbox


def make_sandbox(backend: str) -> Sandbox:
    """The sandbox backend by name."""
    if backend == "process":
        from autograder.sandbox.process import ProcessSandbox
        return ProcessSandbox()
    if backend == "docker":
        try:
            from autograder.sandbox.docker import DockerSandbox
        except ImportError:
            raise HarnessError("the docker backend is not available in this installation") \
                from None
        return DockerSandbox()
    raise HarnessError(f"unknown sandbox backend {backend!r}: use 'process' or 'docker'")


def run_session(spec: GradingSpec, submissions: Sequence[PreparedSubmission], sandbox: Sandbox,
                on_result: Callable[[GradingResult], None] | None = None, slot: int = 0
                ) -> dict[str, GradingResult]:
    """Grade prepared submissions with one pytest session; returns results by submission id.
    ``slot`` tells concurrent sessions apart (their runners get distinct uids)."""
    if not submissions:
        return {}
    plugin = GradingPlugin(spec, list(submissions), sandbox, on_result, slot=slot)
    with tempfile.TemporaryDirectory(prefix="autograder-pytest-") as tmp:
        before = set(sys.modules)
        try:
            code = pytest.main(pytest_args(spec, Path(tmp)), plugins=[plugin, plugin_module])
        finally:
            forget_modules_imported_since(before, spec)
    if plugin.collect_errors:
        raise HarnessError("the tests could not be collected:\n" + "\n".join(plugin.collect_errors))
    missing = [s.id for s in submissions if s.id not in plugin.results]
    if missing:
        raise HarnessError(f"pytest ended (exit code {int(code)}) without grading "
                           f"{', '.join(missing[:5])}; run the tests with plain pytest to see why")
    return plugin.results


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
            "-p", "no:faulthandler",
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


