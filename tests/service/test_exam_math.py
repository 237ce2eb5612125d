"""The exam page shows handout formulas as math: ``$...$`` and ``$$...$$`` become MathML on the
server (autograder/service/handout.py), every formula of every handout in this course converts
without falling back to code, the real mini-exam page holds ``<math`` and no ``$$``, and hostile
handout cells come out inert.

Inertness is asserted on the parsed HTML (every start tag and attribute), not on substrings.
The browser's view (a ``math`` element visible with a size) is in test_exam_browser.py.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from autograder.course import Course
from autograder.exams import choose_variant
from autograder.service.handout import (Formula, UnsupportedMath, cell_source, formulas,
                                        latex_to_mathml, notebook_html, render_markdown)
from autograder.service.settings import ManualClock
from tests.service.conftest import REPO, UTC, build_course, make_service

VARIANTS = ["dropout", "leaky_relu"]
#: During miniexam1's window (2026-10-08 09:00-21:00 UTC in the test course).
DURING = dt.datetime(2026, 10, 8, 10, 0, tzinfo=UTC)
#: The one style attribute the renderer writes itself (\texttt); no handout can write another.
OWN_STYLE = "font-family: monospace"


# --- helpers ------------------------------------------------------------------------------------

class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser.tags


def assert_inert(html: str) -> None:
    """No element that runs or loads anything, no event handler, no link but a web link, no
    style a handout wrote, no id (a handout's id could shadow the page's own, e.g.
    ``#countdown``)."""
    for tag, attrs in tags(html):
        assert tag not in {"script", "img", "iframe", "object", "embed", "style", "link", "form",
                           "input", "svg", "base", "meta"}, (tag, attrs, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            assert name not in {"src", "xlink:href", "action", "formaction", "id"}, (tag, name)
            if name == "href":
                assert tag == "a" and (value or "").startswith(("https://", "http://")), (
                    tag, value, html)
            if name == "class":
                assert (tag, value) in {("code", "math"), ("pre", "code")}, (tag, value)
            if name == "style":
                assert value == OWN_STYLE, (tag, value, html)


def handout_notebooks(root: Path) -> list[tuple[str, Path]]:
    """Every handout the course declares, for every assignment and every exam variant: the
    source in assignments/ and, where it is built, the release the exam page reads."""
    found = []
    course = Course(root)
    for name in course.assignment_names():
        top = course.assignment(name)
        # An exam with variants names the handout each variant has in its own folder.
        for asg in top.variants() or [top]:
            handout = asg.config.handout
            if not handout:
                continue
            found.append((f"{asg.label} (source)", asg.public_dir / handout))
            released = asg.release_dir / Path(handout).name
            if released.is_file():
                found.append((f"{asg.label} (release)", released))
    return found


def unconvertible(path: Path) -> tuple[int, list[str]]:
    """How many formulas the notebook holds, and one line per formula that does not convert,
    naming the cell and the reason."""
    nb = json.loads(path.read_text())
    count, failures = 0, []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for formula in formulas(cell_source(cell)):
            count += 1
            try:
                latex_to_mathml(formula.latex, display=formula.display)
            except UnsupportedMath as e:
                failures.append(f"{path} cell {index}: {formula.latex!r}: {e}")
    return count, failures


def write_notebook(path: Path, *markdown: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


# --- every handout of the course --------------------------------------------------------------

HANDOUTS = handout_notebooks(REPO)


def test_the_course_declares_the_handouts_of_every_assignment_and_both_exam_variants() -> None:
    labels = {label.split(" ")[0] for label, _ in HANDOUTS}
    assert {"softmax", "conv", "batchnorm", "lstm", "training",
            "miniexam1/leaky_relu", "miniexam1/dropout"} <= labels, labels
    assert all(path.is_file() for _, path in HANDOUTS), HANDOUTS


@pytest.mark.parametrize("label, path", HANDOUTS, ids=[label for label, _ in HANDOUTS])
def test_every_formula_of_the_handout_converts_without_falling_back(label: str,
                                                                    path: Path) -> None:
    count, failures = unconvertible(path)
    assert not failures, (f"{label}: {len(failures)} of {count} formulas cannot be drawn on the "
                          f"exam page (write them with supported LaTeX, see docs/authoring.md):\n"
                          + "\n".join(failures))
    html = str(notebook_html(path))
    # As many <math> elements as formulas, and no dollar math left as text.
    assert html.count("<math ") == count, (label, html.count("<math "), count)
    assert 'class="math"' not in html and "$$" not in html, label


def test_the_handout_walk_names_the_cell_of_a_formula_it_cannot_draw(tmp_path: Path) -> None:
    nb = write_notebook(tmp_path / "new.ipynb", "Fine: $x^2$.", r"Not: $\foo{x}$ and $\frac{1}{$.")
    count, failures = unconvertible(nb)
    assert count == 3 and len(failures) == 2, failures
    assert failures[0].startswith(f"{nb} cell 1: '\\\\foo{{x}}'") and "\\foo" in failures[0]
    assert "cell 1" in failures[1] and "cannot read" in failures[1]


# --- the renderer ---------------------------------------------------------------------------------

def test_inline_math_stays_inline_and_display_math_is_a_block() -> None:
    html = str(render_markdown("Let $x_i$ be\n\n$$\\frac{a}{b}$$\n"))
    assert '<p>Let <math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html
    assert "<mfrac><mrow><mi>a</mi></mrow><mrow><mi>b</mi></mrow></mfrac>" in html
    assert "<msub><mi>x</mi><mi>i</mi></msub>" in html
    # As in LaTeX, a display sum has its limits under and over it, an inline one beside it.
    assert "<munderover><mo>∑</mo>" in str(latex_to_mathml(r"\sum_{i=1}^N x_i", display=True))
    assert "<msubsup><mo>∑</mo>" in str(latex_to_mathml(r"\sum_{i=1}^N x_i", display=False))


def test_double_dollars_inside_a_paragraph_are_display_math_as_in_jupyter() -> None:
    # conv.ipynb writes $$...$$ inside list items; read as $ + $...$ + $ it would pair the
    # wrong dollars and swallow the text and code between formulas.
    html = str(render_markdown("* hence\n  $$db_f = \\sum_i d_i$$\n  (one per filter) when"
                               " $S < HH$, `dx[P:-P]` with $P = 0$.\n"))
    assert html.count('display="block"') == 1 and html.count('display="inline"') == 2
    assert "(one per filter)" in html and "<code>dx[P:-P]</code>" in html
    assert "<mo>&lt;</mo>" in html


def test_the_constructs_the_handouts_use_come_out_as_readers_expect() -> None:
    def mathml(latex: str) -> str:
        return str(latex_to_mathml(latex, display=False))

    assert "<mtext>running_mean</mtext>" in mathml(r"\text{running\_mean}")
    assert '<mtext style="font-family: monospace">dnext_c</mtext>' in mathml(
        r"\texttt{dnext\_c}")
    assert "<mi>ℝ</mi>" in mathml(r"\mathbb{R}^D") and "𝟙" in mathml(r"\mathbb{1}[j = y_i]")
    assert "<mo>arg</mo>" in mathml(r"\arg\max_j Z_{ij}")  # latex2mathml lacks \arg
    assert "<mo>+</mo><mo>=</mo>" in mathml(r"\mathrel{+}=")  # no <mrow> inside a token
    assert "‖" in mathml(r"\lVert a \rVert") and "⊙" in mathml(r"f \odot c")
    assert "<mtable>" in mathml(r"\begin{cases} x & x > 0 \\ \alpha x & x \le 0 \end{cases}")


@pytest.mark.parametrize("latex", [r"\foo{x}", r"\frac{1}{", "x^", r"\unicode{0}",
                                   r"\href{https://example.org}{x}", r"\style{color:red}{x}",
                                   '\\color{red" onmouseover="alert(1)}{x}'])
def test_a_formula_that_cannot_be_drawn_is_shown_as_escaped_code(latex: str) -> None:
    with pytest.raises(UnsupportedMath):
        latex_to_mathml(latex, display=False)
    html = str(render_markdown(f"see ${latex}$ here"))
    assert "<math" not in html
    code = html.split('<code class="math">', 1)[1].split("</code>", 1)[0]
    assert code.replace("&quot;", '"').replace("&#34;", '"') == latex, html
    assert_inert(html)


HOSTILE = {
    "script in inline math": "$<script>alert(1)</script>$",
    "javascript link in display math": "$$\\href{javascript:alert(1)}{x}$$",
    "raw img with onerror": '<img src=x onerror="alert(1)">',
    "html inside \\text": "$\\text{<img src=x onerror=alert(1)>}$ and $$\\text{</math><script>alert(2)</script>}$$",
    "style attribute": "$\\style{background:url(https://evil.example/x)}{x}$",
    "label as page id": "$$x$$ (countdown)",
    "javascript markdown link": "[click](javascript:alert(1)) and ![x](javascript:alert(1))",
    "raw svg": "<svg onload=alert(1)></svg>\n\n<math><mtext><script>alert(1)</script></mtext></math>",
    "math colour breaking out": '$\\color{red" onmouseover="alert(1)}{x}$',
}


@pytest.mark.parametrize("markdown", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_handout_cell_comes_out_inert(markdown: str) -> None:
    html = str(render_markdown(markdown))
    assert_inert(html)


def test_a_formula_nested_past_the_recursion_limit_falls_back_instead_of_failing() -> None:
    for latex in ("{" * 3000 + "x" + "}" * 3000, "\\sqrt{" * 600 + "x" + "}" * 600):
        html = str(render_markdown(f"${latex}$"))
        assert html.startswith('<p><code class="math">') and "<math" not in html


def test_bidi_overrides_and_controls_in_formulas_are_refused() -> None:
    html = str(render_markdown("$\\unicode{x202E}abc$ $\\unicode{x1B}$"))
    assert "\u202e" not in html and "\x1b" not in html
    assert html.count('<code class="math">') == 2


# --- the exam page, served ------------------------------------------------------------------------

def exam_page_course(root: Path) -> Path:
    """The service's test course (students alice, bob, carol) with the real miniexam1."""
    build_course(root)
    for top in ("assignments", "solutions", "release"):
        shutil.copytree(REPO / top / "miniexam1", root / top / "miniexam1",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


def secret_covering_both_variants() -> tuple[str, dict[str, str]]:
    """A course secret under which alice, bob and carol draw both variants between them."""
    for i in range(100):
        secret = f"math-page-secret-{i}"
        drawn = {s: choose_variant(secret, s, "miniexam1", VARIANTS)
                 for s in ("alice", "bob", "carol")}
        if set(drawn.values()) == set(VARIANTS):
            return secret, drawn
    raise AssertionError("no secret gives both variants")  # pragma: no cover


def exam_page(svc, student: str) -> str:  # type: ignore[no-untyped-def]
    """The student starts the mini-exam and opens its page in a browser session."""
    from autograder.service.auth import CSRF_COOKIE, SESSION_COOKIE, ensure_user, open_session

    started = svc.client.post("/api/v1/assignments/miniexam1/start",
                              headers=svc.auth(student), json={"honour_code": True})
    assert started.status_code in (200, 201), started.text
    browser = TestClient(svc.client.app, follow_redirects=False)
    browser.cookies.set(SESSION_COOKIE, open_session(svc.db, ensure_user(svc.db, student)))
    browser.cookies.set(CSRF_COOKIE, "tok")
    page = browser.get("/exams/miniexam1")
    assert page.status_code == 200, page.text[:500]
    return page.text


def handout_part(page: str) -> str:
    """What the handout renderer put in the page (inside the template's own div)."""
    opening = '<div class="handout" id="handout">'
    start = page.index(opening) + len(opening)
    return page[start:page.index("</div>", start)]


@pytest.fixture
def math_exam(tmp_path: Path, sqlite_url: str):  # type: ignore[no-untyped-def]
    secret, drawn = secret_covering_both_variants()
    root = exam_page_course(tmp_path / "course")
    svc = make_service(root, sqlite_url, exam_secret=secret)
    svc.client.app.state.service.clock = ManualClock(DURING)
    yield svc, drawn, root
    svc.db.close()


def test_the_exam_page_shows_each_variants_handout_formulas_as_mathml(math_exam) -> None:  # type: ignore[no-untyped-def]
    svc, drawn, _ = math_exam
    seen = {}
    for student, variant in drawn.items():
        if variant in seen:
            continue
        page = exam_page(svc, student)
        handout = handout_part(page)
        assert "<math " in handout and "$$" not in handout and "$\\" not in handout, variant
        assert 'class="math"' not in handout  # nothing fell back to code
        assert_inert(handout)
        seen[variant] = handout
    assert set(seen) == set(VARIANTS)
    # leaky ReLU's piecewise definition is display math, with its cases as a table
    assert 'display="block"' in seen["leaky_relu"] and "<mtable>" in seen["leaky_relu"]
    assert "<mi>α</mi>" in seen["leaky_relu"]
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow><mi>p</mi>' \
        in seen["dropout"]


def test_a_hostile_released_handout_is_inert_on_the_exam_page(math_exam) -> None:  # type: ignore[no-untyped-def]
    svc, drawn, root = math_exam
    student, variant = next(iter(drawn.items()))
    write_notebook(root / "release/miniexam1/variants" / variant / "handout.ipynb",
                   "# The task", *HOSTILE.values(), "Fine: $\\frac{a}{b}$.")
    handout = handout_part(exam_page(svc, student))
    assert "<mfrac>" in handout and "The task" in handout
    assert_inert(handout)
    assert "alert(1)" in handout  # shown as text or code, not dropped silently


def test_formulas_lists_inline_and_display_math_in_order() -> None:
    assert formulas("a $x$ b\n\n$$y$$\n") == [Formula("x", False), Formula("y", True)]
