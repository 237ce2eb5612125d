"""Trivial mutants: submissions that do no work, which must earn none of the regular points.

``verify`` adds two to every assignment by itself (no file to write): ``trivial:zeros``, where
every public function of every student module returns zeros, and ``trivial:constant``, where
it returns a constant (1 for integers and booleans, 0.5 for floats). Both have the right types,
shapes and dtypes, so a test that checks only those, or checks a gradient of a constant
function, or that the inputs are left unchanged, credits them and ``verify`` says which.

How the right shapes are found, whatever the inputs: each generated function calls the
reference function (staged beside it as ``_verify_reference_<module>``) on a *deep copy* of its
arguments and turns the result into zeros (or the constant) of the same structure. The copy
keeps the reference's side effects off the caller's objects (a model trained in place, running
statistics written into a dict), so nothing the test looks at afterwards carries the
reference's work either. Values are mapped recursively: numbers, numpy arrays and scalars and
torch tensors become the constant with the same dtype and shape; tuples, lists and dicts keep
their structure; a ``torch.nn.Module`` keeps its architecture with every floating-point
parameter and buffer set to the constant; anything else (None, strings, other objects) is
returned as the reference returned it.

One limit: a deep copy shares functions and closures, so a spy the test passed in (an
optimizer wrapper that logs its calls through a closure) still records the reference's calls. A
test that judges by such a log alone would credit the trivial mutant; the course's tests also
check the result (the weights after training), which the copy keeps from the caller.

This runs the reference inside the sandbox, which is no leak: ``verify`` is staff-only and
already grades the reference there as a submission. Public classes of a module are kept as the
reference defines them (there is no "zero" of a class); the functions are what is replaced.
"""

from __future__ import annotations

import ast

#: The submission ids verify gives the trivial mutants, and the constant each returns.
TRIVIAL_MUTANTS = {"trivial:zeros": "zeros", "trivial:constant": "constant"}

REFERENCE_PREFIX = "_verify_reference_"

_RUNTIME = '''\
import copy as _copy
import importlib as _importlib
import sys as _sys

import numpy as _np

_reference = _importlib.import_module({reference!r})
_KIND = {kind!r}


def _fill_for(kind_char):
    """The constant for a dtype kind: 0 for zeros; 1, True or 0.5 for the constant."""
    if _KIND == "zeros":
        return 0
    return {{"b": True, "i": 1, "u": 1}}.get(kind_char, 0.5)


def _trivial(value):
    torch = _sys.modules.get("torch")
    if isinstance(value, (bool, _np.bool_)):
        return type(value)(_fill_for("b"))
    if isinstance(value, (int, float, complex, _np.number)):
        return type(value)(_fill_for(_np.asarray(value).dtype.kind))
    if isinstance(value, _np.ndarray) and value.dtype.kind in "biufc":
        return _np.full_like(value, _fill_for(value.dtype.kind))
    if torch is not None and isinstance(value, torch.Tensor):
        kind = "b" if value.dtype == torch.bool else ("f" if value.is_floating_point()
                                                      or value.is_complex() else "i")
        return torch.full_like(value, _fill_for(kind))
    if torch is not None and isinstance(value, torch.nn.Module):
        with torch.no_grad():
            for tensor in [*value.parameters(), *value.buffers()]:
                if tensor.is_floating_point():
                    tensor.fill_(_fill_for("f"))
        return value
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(_trivial(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_trivial(v) for v in value)
    if isinstance(value, dict):
        return {{k: _trivial(v) for k, v in value.items()}}
    return value


def _call(function, args, kwargs):
    # The reference works on copies: its side effects must not reach the caller's objects.
    args, kwargs = _copy.deepcopy((args, kwargs))
    return _trivial(function(*args, **kwargs))

'''

_FUNCTION = '''

def {name}(*args, **kwargs):
    return _call(_reference.{name}, args, kwargs)
'''


def public_functions(reference: str) -> list[str]:
    """The top-level functions of a module whose names do not start with ``_``."""
    tree = ast.parse(reference)
    return [n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.name.startswith("_")]


def trivial_module(module: str, reference: str, kind: str) -> str:
    """Source of ``module`` as a trivial mutant of kind ``zeros`` or ``constant``."""
    tree = ast.parse(reference)
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)
               and not n.name.startswith("_")]
    header = (f'"""Trivial mutant made by `autograder verify` ({kind}): every public function '
              f'of {module}.py returns {"zeros" if kind == "zeros" else "a constant"} shaped '
              f'like the reference\'s result."""\n\n')
    source = header + _RUNTIME.format(reference=REFERENCE_PREFIX + module, kind=kind)
    if classes:
        source += f"from {REFERENCE_PREFIX}{module} import {', '.join(classes)}  # kept\n"
    for name in public_functions(reference):
        source += _FUNCTION.format(name=name)
    return source


def trivial_submissions(references: dict[str, str]) -> dict[str, dict[str, str]]:
    """The modules to stage for each trivial mutant: by submission id, module name -> source
    (each student module made trivial, plus the reference copies its functions call)."""
    copies = {REFERENCE_PREFIX + m: src for m, src in references.items()}
    return {sub_id: {**copies, **{m: trivial_module(m, src, kind)
                                  for m, src in references.items()}}
            for sub_id, kind in TRIVIAL_MUTANTS.items()}
