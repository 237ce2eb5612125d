"""Function-splice mutants: the file names only the functions with the mistake; verify splices
them into the reference, and a mutant that cannot be spliced is broken, with a message."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from autograder.authoring.mutants import MutantError, mutant_modules, read_mutant, splice
from autograder.authoring.trivial import public_functions, trivial_module, trivial_submissions

REFERENCE = '''\
"""Reference module."""

import numpy as np

SCALE = 2.0


def helper(x):
    """A helper."""
    return x * SCALE


@staticmethod_like
def loss(x, y):
    """The loss."""
    return float(np.sum((x - y) ** 2))


class Model:
    def forward(self, x):
        return helper(x)


def _private(x):
    return x
'''


def functions(source: str) -> dict[str, str]:
    tree = ast.parse(source)
    return {n.name: ast.unparse(n) for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def test_a_mutant_replaces_only_the_functions_it_names(tmp_path):
    mutant = '''"""The loss forgets the square."""

import math


def loss(x, y):
    return float(math.fsum(x - y))
'''
    spliced = splice(REFERENCE, mutant, where="no_square.py", module="mod")
    before, after = functions(REFERENCE), functions(spliced)
    assert after["loss"] == "def loss(x, y):\n    return float(math.fsum(x - y))"  # decorator gone too
    assert {k: v for k, v in after.items() if k != "loss"} == \
        {k: v for k, v in before.items() if k != "loss"}
    # The module level is the reference's, and the mutant's imports come before the definitions.
    assert "SCALE = 2.0" in spliced and '"""Reference module."""' in spliced
    assert spliced.index("import math") < spliced.index("def helper")
    compile(spliced, "spliced", "exec")


def test_a_mutant_may_replace_a_class_and_several_functions():
    mutant = '''"""Everything doubled."""


def helper(x):
    return x * 4


class Model:
    def forward(self, x):
        return -x
'''
    spliced = functions(splice(REFERENCE, mutant, where="m.py", module="mod"))
    assert spliced["helper"] == "def helper(x):\n    return x * 4"
    assert "return -x" in spliced["Model"]
    assert "np.sum" in spliced["loss"]


@pytest.mark.parametrize("text, message", [
    ('"""Typo."""\n\ndef loss(x, y)\n    return 0\n', r"typo\.py:3: syntax error"),
    ('"""Unknown."""\n\ndef los(x, y):\n    return 0\n',
     r"typo\.py:3: defines los, which mod\.py does not define \(it defines Model, _private, "
     r"helper, loss\).*# mutant: whole-module"),
    ('"""Module level."""\n\nSCALE = 3.0\n',
     r"typo\.py:3: a module-level statement \(`SCALE = 3.0`\).*# mutant: whole-module"),
    ('"""Nothing."""\n\nimport numpy as np\n', r"replaces no function of mod\.py"),
    ('"""Twice."""\n\ndef loss(x, y):\n    return 0\n\ndef loss(x, y):\n    return 1\n',
     r"defines loss twice"),
])
def test_a_mutant_that_cannot_be_spliced_is_an_authoring_error(text, message):
    with pytest.raises(MutantError, match=message):
        splice(REFERENCE, text, where="typo.py", module="mod")


def test_headers_choose_the_module_or_the_whole_module(tmp_path):
    modules = ("main", "other")
    plain = read_mutant(write(tmp_path, "plain", '"""A mistake."""\n\ndef f():\n    pass\n'),
                        modules)
    assert (plain.module, plain.whole_module, plain.description) == ("main", False, "A mistake.")
    other = read_mutant(write(tmp_path, "other", '# mutant: module=other\n"""In other."""\n'),
                        modules)
    assert other.module == "other" and not other.whole_module
    whole = read_mutant(write(tmp_path, "whole", '# mutant: whole-module\n"""SCALE is 3."""\n'
                                                 'SCALE = 3.0\n'), modules)
    assert whole.whole_module
    references = {"main": REFERENCE, "other": "x = 1\n"}
    assert mutant_modules(whole, references)["main"] == whole.source
    assert mutant_modules(whole, references)["other"] == "x = 1\n"


@pytest.mark.parametrize("text, message", [
    ("# mutant: module=nope\n\"\"\"x\"\"\"\n", r"bad\.py:1: `# mutant: module=nope` names a "
                                                r"module the assignment does not have; use one "
                                                r"of main, other"),
    ("# mutant: everything\n\"\"\"x\"\"\"\n", r"bad\.py:1: unknown header"),
    ("def f():\n    pass\n", r"bad\.py: start the file with a docstring that names the mistake"),
    ("# mutant: whole-module\n\"\"\"x\"\"\"\ndef f(:\n", r"bad\.py:3: syntax error"),
])
def test_a_bad_header_or_missing_docstring_is_an_authoring_error(tmp_path, text, message):
    with pytest.raises(MutantError, match=message):
        read_mutant(write(tmp_path, "bad", text), ("main", "other"))


def test_a_whole_module_mutant_that_does_not_compile_is_broken(tmp_path):
    # ast accepts it; only compiling finds a `return` outside a function.
    path = write(tmp_path, "ret", '# mutant: whole-module\n"""Returns early."""\nreturn 1\n')
    with pytest.raises(MutantError, match=r"ret\.py:3: syntax error"):
        mutant_modules(read_mutant(path, ("main",)), {"main": REFERENCE})


def test_every_mutant_of_the_course_is_a_function_splice_or_says_why_not():
    """The course's own mutants: each reads, splices, and names its mistake; whole-module ones
    are the exception, for a mistake at module level."""
    from autograder.course import Course
    from tests.conftest import REPO

    course = Course(REPO)
    count = 0
    for name in course.assignment_names():
        assignment = course.assignment(name)
        if not all(p.is_file() for p in assignment.reference_files().values()):
            continue  # an assignment still being written: `verify` reports what is missing
        references = {m: p.read_text() for m, p in assignment.reference_files().items()}
        for path in assignment.mutant_files():
            mutant = read_mutant(path, assignment.config.modules)
            modules = mutant_modules(mutant, references)
            assert modules[mutant.module] != references[mutant.module], f"{path} changes nothing"
            if not mutant.whole_module:
                defined = functions(path.read_text())
                assert set(defined) < set(functions(references[mutant.module])) or \
                    set(defined) == set(functions(references[mutant.module])), path
            count += 1
    assert count >= 90


# -- trivial mutants ----------------------------------------------------------------------------

def test_trivial_modules_wrap_every_public_function_and_compile():
    assert public_functions(REFERENCE) == ["helper", "loss"]
    for kind in ("zeros", "constant"):
        source = trivial_module("mod", REFERENCE, kind)
        compile(source, "trivial", "exec")
        assert "def helper(*args, **kwargs)" in source and "def loss(" in source
        assert "def _private" not in source
        assert "from _verify_reference_mod import Model" in source
    staged = trivial_submissions({"mod": REFERENCE})
    assert set(staged) == {"trivial:zeros", "trivial:constant"}
    assert staged["trivial:zeros"]["_verify_reference_mod"] == REFERENCE


def test_trivial_values_keep_structure_shape_and_dtype(tmp_path, monkeypatch):
    """Run a generated trivial module here (it is plain Python) against a small reference."""
    import importlib
    import sys

    import numpy as np
    import torch

    reference = '''
import numpy as np
import torch

def forward(x, params):
    params["seen"] = params.get("seen", 0) + 1          # a side effect on the caller's dict
    return x * 3.0, {"n": x.shape[0], "ok": True, "idx": np.arange(3)}, (x.sum(),)

def model():
    return torch.nn.Linear(2, 3)

def scalar(x):
    return float(np.sum(x)) + 1.0
'''
    for kind, fill in (("zeros", 0.0), ("constant", 0.5)):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / "_verify_reference_tmod.py").write_text(reference)
        (folder / "tmod.py").write_text(trivial_module("tmod", reference, kind))
        monkeypatch.syspath_prepend(str(folder))
        for name in ("tmod", "_verify_reference_tmod"):
            sys.modules.pop(name, None)
        mod = importlib.import_module("tmod")
        params: dict = {}
        out, info, (total,) = mod.forward(np.ones((4, 2), dtype=np.float32), params)
        assert params == {}, "the reference's side effects must not reach the caller"
        assert out.shape == (4, 2) and out.dtype == np.float32 and np.all(out == fill)
        assert info["n"] == (0 if kind == "zeros" else 1) and isinstance(info["n"], int)
        assert info["ok"] is (kind != "zeros")
        assert info["idx"].dtype.kind == "i" and np.all(info["idx"] == (0 if kind == "zeros" else 1))
        assert float(total) == fill
        net = mod.model()
        assert isinstance(net, torch.nn.Linear)
        assert all(torch.all(p == fill) for p in net.parameters())
        assert mod.scalar(np.ones(3)) == fill
