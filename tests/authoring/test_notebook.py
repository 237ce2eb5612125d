"""The handout notebook: nbgrader's preprocessors clear solutions, hidden tests and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.authoring.errors import AuthoringError
from autograder.authoring.notebook import build_handout, solution_cell_lines

from .conftest import write_handout


@pytest.fixture
def handout_source(tmp_path: Path) -> Path:
    path = tmp_path / "toy.ipynb"
    write_handout(path)
    return path


def cells(text: str) -> list[dict]:
    return json.loads(text)["cells"]


def test_solution_region_and_outputs_are_cleared(handout_source):
    text = build_handout(handout_source)
    intro, solution, plain = cells(text)
    assert "".join(intro["source"]) == "# Softmax\nImplement `softmax`."
    source = "".join(solution["source"])
    assert "centred" not in source and "BEGIN SOLUTION" not in source
    assert source.startswith("def notebook_helper(x):\n    # YOUR CODE HERE\n    raise NotImplementedError(")
    for cell in (solution, plain):
        assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "secret output 42" not in text
    assert "print(np.arange(3))" in "".join(plain["source"])
    nbformat.validate(nbformat.reads(text, as_version=4))


def test_handout_is_deterministic_with_trailing_newline(handout_source):
    first, second = build_handout(handout_source), build_handout(handout_source)
    assert first == second
    assert first.endswith("}\n") and not first.endswith("\n\n") and "\r" not in first


def test_whole_solution_cell_and_hidden_tests_and_unmarked_regions(tmp_path):
    nb = nbformat.v4.new_notebook()
    whole = nbformat.v4.new_code_cell("answer = 42 * 17", id="whole",
                                      metadata={"nbgrader": {"solution": True, "grade": False,
                                                             "grade_id": "a", "schema_version": 3}})
    written = nbformat.v4.new_markdown_cell("The answer is because of reasons.", id="written",
                                            metadata={"nbgrader": {"solution": True, "grade": False,
                                                                   "grade_id": "b", "schema_version": 3}})
    tests = nbformat.v4.new_code_cell(
        "assert answer > 0\n### BEGIN HIDDEN TESTS\nassert answer == 714\n### END HIDDEN TESTS",
        id="tests", metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "t",
                                           "points": 1, "schema_version": 3}})
    unmarked = nbformat.v4.new_code_cell("x = 1\n# BEGIN SOLUTION\ny = x + 99\n# END SOLUTION", id="u")
    nb.cells = [whole, written, tests, unmarked]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    out = cells(build_handout(path))
    assert "".join(out[0]["source"]).startswith("# YOUR CODE HERE\nraise NotImplementedError(")
    assert "".join(out[1]["source"]) == "YOUR ANSWER HERE"
    assert "".join(out[2]["source"]) == "assert answer > 0"
    assert "y = x + 99" not in "".join(out[3]["source"])
    assert sorted(text for _, text in solution_cell_lines(path)) == sorted(
        ["answer = 42 * 17", "The answer is because of reasons.", "assert answer == 714", "y = x + 99"])


def test_missing_cell_ids_get_stable_ids(tmp_path):
    raw = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
           "cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1",
                      "outputs": [], "execution_count": None}]}
    path = tmp_path / "noids.ipynb"
    path.write_text(json.dumps(raw))
    assert build_handout(path) == build_handout(path)
    assert cells(build_handout(path))[0]["id"] == "cell-0"


@pytest.mark.parametrize("content, words", [
    ("{not json", ["invalid JSON"]),
    ('{"nbformat": 3, "worksheets": []}', ["nbformat 4"]),
    ('{"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [{"cell_type": "code"}]}',
     ["invalid notebook at cells/0"]),
])
def test_malformed_notebook_names_file_and_problem(tmp_path, content, words):
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    with pytest.raises(AuthoringError) as info:
        build_handout(path)
    assert str(info.value).startswith(f"{path}: ")
    for word in words:
        assert word in str(info.value)


def test_missing_notebook_says_so(tmp_path):
    with pytest.raises(AuthoringError, match="not found"):
        build_handout(tmp_path / "nope.ipynb")


def test_unbalanced_region_names_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("intro", id="a"),
                nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1", id="b")]
    path = tmp_path / "open.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(AuthoringError) as info:
        build_handout(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cell 1 ") and "END" in message
