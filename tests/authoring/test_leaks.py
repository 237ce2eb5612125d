"""find_release_leaks: solution lines, hidden tests and mutants in a release are found."""

from __future__ import annotations

import json
import shutil

from autograder.authoring.leaks import MIN_SECRET_CHARS
from autograder.authoring.release import build_release, find_release_leaks


def test_clean_release_has_no_leaks(assignment):
    build_release(assignment)
    assert find_release_leaks(assignment) == []


def test_missing_release_is_reported(assignment):
    problems = find_release_leaks(assignment)
    assert len(problems) == 1 and "autograder release toy" in problems[0]


def test_solution_line_pasted_into_public_test_is_found(assignment):
    test = assignment.public_tests_dir / "test_public.py"
    # Re-spaced and embedded in an assignment: still the solution's line.
    test.write_text(test.read_text() + "\nexpected = exps / exps.sum(axis=1,keepdims=True)\n")
    build_release(assignment)
    problems = find_release_leaks(assignment)
    assert len(problems) == 1
    assert problems[0].startswith("release/toy/tests/test_public.py:8: holds a solution line "
                                  "(solutions/toy/toy_softmax.py:11: return exps / exps.sum")


def test_solution_line_in_a_comment_is_found(assignment):
    test = assignment.public_tests_dir / "test_public.py"
    test.write_text(test.read_text() + "\n#     shifted  =  x - x.max(axis=1, keepdims=True)\n")
    build_release(assignment)
    problems = find_release_leaks(assignment)
    assert len(problems) == 1 and "toy_softmax.py:9: shifted = x - x.max" in problems[0]


def test_solution_line_in_a_notebook_output_is_found(assignment):
    build_release(assignment)
    handout = assignment.release_dir / "toy.ipynb"
    notebook = json.loads(handout.read_text())
    notebook["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                        "text": ["ok\n", "doubled_value = np.multiply(x, 2.0)\n"]}]
    handout.write_text(json.dumps(notebook))
    problems = find_release_leaks(assignment)
    assert len(problems) == 1 and "release/toy/toy.ipynb" in problems[0]
    assert "toy_softmax.py:19" in problems[0]


def test_notebook_solution_cell_line_is_a_secret(assignment):
    build_release(assignment)
    (assignment.release_dir / "notes.py").write_text("centred = x - x.mean(axis=0, keepdims=True)\n")
    problems = find_release_leaks(assignment)
    assert len(problems) == 1 and "toy.ipynb cell 1" in problems[0]


def test_short_and_public_by_design_lines_are_not_leaks(assignment):
    ref = assignment.solution_dir / "toy_softmax.py"
    # `x = np.asarray(x)` is a solution line, but the stub publishes it outside a region too.
    ref.write_text(ref.read_text().replace(
        "    # BEGIN SOLUTION\n    shifted",
        "    x = np.asarray(x)\n    # BEGIN SOLUTION\n    x = np.asarray(x)\n    shifted"))
    test = assignment.public_tests_dir / "test_public.py"
    ref.write_text(ref.read_text().replace("        doubled_value =", "        n = len(x)\n        doubled_value ="))
    test.write_text(test.read_text() + "\nx = np.asarray(x)\nn = len(x)\nassert n\n")
    build_release(assignment)
    assert len("".join("n = len(x)".split())) < MIN_SECRET_CHARS
    assert find_release_leaks(assignment) == []


def test_hidden_test_file_copied_is_found(assignment):
    build_release(assignment)
    shutil.copy(assignment.hidden_tests_dir / "test_hidden_softmax.py", assignment.release_dir / "tests")
    shutil.copy(assignment.hidden_tests_dir / "test_hidden_softmax.py", assignment.release_dir / "renamed.py")
    problems = find_release_leaks(assignment)
    assert any(p.startswith("release/toy/tests/test_hidden_softmax.py: is hidden test file "
                            "solutions/toy/tests/test_hidden_softmax.py") for p in problems)
    assert any(p.startswith("release/toy/renamed.py: is a copy of hidden test file") for p in problems)


def test_hidden_test_name_mentioned_is_found(assignment):
    readme_source = assignment.public_tests_dir / "test_public.py"
    readme_source.write_text(readme_source.read_text()
                             + "\n# see test_secret_large_logits and test_hidden_softmax.py\n")
    build_release(assignment)
    problems = find_release_leaks(assignment)
    assert any("names hidden test test_secret_large_logits" in p for p in problems)
    assert any("names hidden test file solutions/toy/tests/test_hidden_softmax.py" in p for p in problems)


def test_hidden_names_shared_with_public_tests_are_not_leaks(assignment):
    (assignment.hidden_tests_dir / "conftest.py").write_text("# hidden fixtures, different\n")
    hidden = assignment.hidden_tests_dir / "test_hidden_softmax.py"
    hidden.write_text(hidden.read_text() + "\n\ndef test_rows_sum_to_one(student):\n    pass\n")
    build_release(assignment)
    assert find_release_leaks(assignment) == []


def test_mutant_and_whole_reference_are_found(assignment):
    build_release(assignment)
    shutil.copy(assignment.mutants_dir / "no_max_shift.py", assignment.release_dir)
    shutil.copy(assignment.solution_dir / "toy_softmax.py", assignment.release_dir / "reference_copy.py")
    problems = find_release_leaks(assignment)
    assert any(p.startswith("release/toy/no_max_shift.py: is mutant solutions/toy/mutants/no_max_shift.py")
               for p in problems)
    assert any(p.startswith("release/toy/reference_copy.py: is a copy of reference module "
                            "solutions/toy/toy_softmax.py") for p in problems)


def test_leak_check_on_another_folder(assignment, tmp_path):
    out = tmp_path / "elsewhere"
    build_release(assignment, out)
    assert find_release_leaks(assignment, out) == []
    (out / "x.py").write_text("shifted = x - x.max(axis=1, keepdims=True)\n")
    assert len(find_release_leaks(assignment, out)) == 1


def test_formula_published_in_a_docstring_and_plain_calls_are_not_leaks(assignment):
    ref = assignment.solution_dir / "toy_softmax.py"
    ref.write_text(ref.read_text()
                   .replace('"""Twice x."""', '"""Twice x: ``np.multiply(x, 2.0) + 0``."""')
                   .replace("        doubled_value = np.multiply(x, 2.0)\n",
                            "        doubled_value = np.multiply(x, 2.0) + 0\n"
                            "        as_float = np.asarray(x, dtype=np.float64)\n"))
    test = assignment.public_tests_dir / "test_public.py"
    test.write_text(test.read_text() + "\nexpected = np.asarray(x, dtype=np.float64)\n")
    build_release(assignment)
    assert find_release_leaks(assignment) == []
    test.write_text(test.read_text() + "\nexpected = np.exp(shifted) + x.max(axis=1, keepdims=True)\n"
                    "result = x - x.max(axis=1, keepdims=True)\n")
    build_release(assignment)
    problems = find_release_leaks(assignment)
    assert len(problems) == 1 and "toy_softmax.py:9: shifted = x - x.max" in problems[0]
