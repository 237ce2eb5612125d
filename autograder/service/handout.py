"""Handout notebooks as HTML for the service's pages, formulas typeset as MathML on the server.

One renderer, used wherever a page shows handout markdown (today the exam page's task):

* Markdown is CommonMark (markdown-it) with raw HTML disabled, so a handout cannot put a script,
  an event handler or a form on a page; links go through markdown-it's own check, which refuses
  ``javascript:``, ``vbscript:``, ``file:`` and ``data:`` links.
* ``$...$`` is inline math and ``$$...$$`` display math, on its own lines or inside a paragraph,
  as Jupyter reads them (mdit-py-plugins' dollarmath). Each formula becomes MathML with
  latex2mathml, which Chromium, Firefox and Safari draw natively: no JavaScript, no CDN.
* latex2mathml's output is not trusted as HTML: it copies ``\\text{...}`` verbatim into the markup
  (``$\\text{<img onerror=...>}$`` would be an element), turns ``\\href`` into an ``href`` and
  ``\\style`` into a ``style`` attribute, and shows a command it does not know as its name.
  :func:`latex_to_mathml` therefore takes its element tree, not its string, and writes the
  MathML itself: elements and attributes from an allow-list, attribute values of a plain
  alphabet, every text escaped. Anything else, or a formula latex2mathml cannot parse, raises
  :class:`UnsupportedMath`, and the page shows that formula's LaTeX as escaped code
  (``<code class="math">``) instead.

``tests/service/test_exam_math.py`` converts every formula of every handout in the course, so a
new handout with a construct this cannot draw fails CI naming the notebook and the cell.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from markupsafe import Markup, escape

from autograder.errors import UserError

MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# MathML Core's presentation elements that latex2mathml writes; anything else (an element a
# future latex2mathml adds, or a <semantics> with an annotation) is refused, not passed on.
_ELEMENTS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup",
    "mfrac", "msqrt", "mroot", "mstyle", "mover", "munder", "munderover", "mtable", "mtr",
    "mtd", "mpadded", "mphantom", "menclose", "mmultiscripts", "mprescripts", "none", "merror",
})
# Token elements hold text; every other element holds only elements.
_TOKENS = frozenset({"mi", "mn", "mo", "ms", "mtext"})
# Presentation attributes only: no href, style, class, id or event handler ever gets through.
_ATTRIBUTES = frozenset({
    "mathvariant", "displaystyle", "scriptlevel", "stretchy", "fence", "form", "separator",
    "accent", "accentunder", "columnalign", "rowalign", "columnlines", "rowlines",
    "columnspacing", "rowspacing", "frame", "framespacing", "minsize", "maxsize", "width",
    "height", "depth", "lspace", "rspace", "voffset", "linethickness", "notation", "largeop",
    "movablelimits", "symmetric", "linebreak", "mathcolor", "columnspan", "rowspan",
})
# Lengths, keywords, colour names and #rgb: nothing that could end the attribute or hold a URL.
_ATTRIBUTE_VALUE = re.compile(r"[A-Za-z0-9 .%#+\-]{0,64}")
# latex2mathml writes characters as XML character references inside its element texts.
_CHAR_REF = re.compile(r"&#(?:x([0-9A-Fa-f]*)|([0-9]*));")
# Text-mode escapes (\text{running\_mean}) that latex2mathml leaves in the text as written.
_TEXT_ESCAPE = re.compile(r"\\([_&%$#{} ])")
# MathML Core draws only mathvariant="normal"; the other variants become the Unicode
# mathematical alphanumerics (the way MathML Core itself recommends) or, where a font does it
# better for code, a style this module writes.
_VARIANT_LETTERS = {
    "bold": "BOLD", "italic": "ITALIC", "bold-italic": "BOLD ITALIC",
    "double-struck": "DOUBLE-STRUCK", "script": "SCRIPT", "fraktur": "FRAKTUR",
    "sans-serif": "SANS-SERIF", "sans-serif-italic": "SANS-SERIF ITALIC",
}
_VARIANT_STYLE = {"monospace": "font-family: monospace"}
# Letters that Unicode placed in the Letterlike Symbols block before the mathematical ones.
_LETTERLIKE = {"FRAKTUR": "BLACK-LETTER", "ITALIC SMALL H": "PLANCK CONSTANT"}
_CHAR_NAME = re.compile(r"(?:LATIN|GREEK) (CAPITAL|SMALL) LETTER (\w+)|DIGIT (\w+)")
# LaTeX's log-like operators that latex2mathml does not know (it knows \max but not \arg), said
# with \operatorname instead; a ``\\`` (new line) is matched first so "\\arg" stays three letters.
_MISSING_OPERATORS = re.compile(r"\\\\|\\(arg)(?![A-Za-z])")


class UnsupportedMath(UserError):
    """A formula the pages cannot draw as MathML (latex2mathml cannot parse it, or it holds a
    command or construct outside the allow-list); the page shows its LaTeX as code instead."""


@dataclass(frozen=True)
class Formula:
    """One formula of a markdown text: its LaTeX (without the dollars) and whether it is
    display math (``$$...$$``) or inline (``$...$``)."""

    latex: str
    display: bool


# --- LaTeX -> MathML ------------------------------------------------------------------------------

def latex_to_mathml(latex: str, *, display: bool) -> Markup:
    """``latex`` as a ``<math>`` element, safe to put in a page as it is.

    Raises :class:`UnsupportedMath` with the reason when latex2mathml cannot convert it or its
    result holds anything outside the allow-list (an unknown command, ``\\href``, ``\\style``,
    an invalid character)."""
    from latex2mathml.converter import convert_to_element

    latex = _MISSING_OPERATORS.sub(
        lambda m: f"\\operatorname{{{m.group(1)}}}" if m.group(1) else m.group(0), latex)
    mode = "block" if display else "inline"
    try:
        # The mode matters to latex2mathml too: limits go under and over a display \sum.
        root = convert_to_element(latex, display=mode)
    except Exception as e:  # latex2mathml's own errors have no common base; all mean "cannot"
        reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise UnsupportedMath(f"latex2mathml cannot read {latex!r} ({reason}): check that "
                              f"braces pair up and every command has its arguments") from None
    try:
        inner = "".join(_write(child) for child in root)
    except RecursionError:
        raise UnsupportedMath(f"{latex[:40]!r}... nests too deeply") from None
    return Markup(f'<math xmlns="{MATHML_NS}" display="{mode}">{inner}</math>')


def _write(el: Element) -> str:
    """One element of latex2mathml's tree as markup, from the allow-lists only."""
    tag = el.tag
    if tag not in _ELEMENTS or tag == "math":
        raise UnsupportedMath(f"<{tag}> is not drawn on the pages")
    attrs: dict[str, str] = {}
    for name, value in el.attrib.items():
        if name not in _ATTRIBUTES:
            raise UnsupportedMath(f"the attribute {name}= on <{tag}> is not drawn on the pages "
                                  f"(from a command such as \\href or \\style)")
        if not _ATTRIBUTE_VALUE.fullmatch(value):
            raise UnsupportedMath(f"{name}={value!r} on <{tag}> is not a plain value")
        attrs[name] = value
    if (el.tail or "").strip():
        raise UnsupportedMath(f"text {el.tail!r} after <{tag}>")
    if tag in _TOKENS:
        # A token with elements inside (\mathrel{+} gives <mo><mrow><mo>+</mo></mrow></mo>)
        # is drawn as its text: browsers do not draw elements inside a token.
        body = _token_text(el, attrs)
    else:
        if (el.text or "").strip():
            raise UnsupportedMath(f"text {el.text!r} directly inside <{tag}>")
        body = "".join(_write(child) for child in el)
    attributes = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<{tag}{attributes}>{body}</{tag}>"


def _token_text(el: Element, attrs: dict[str, str]) -> str:
    """The escaped text of a token element, its character references decoded and its
    mathvariant made visible (``attrs`` is adjusted in place)."""
    raw = "".join(el.itertext())
    if el.tag == "mtext":
        raw = _TEXT_ESCAPE.sub(r"\1", raw)
    if "\\" in raw:
        # latex2mathml shows a command it does not know as its own name: <mi>\foo</mi>.
        command = re.search(r"\\[A-Za-z]+|\\.?", raw)
        shown = command.group(0) if command else raw
        raise UnsupportedMath(f"{shown} is not a command latex2mathml knows")
    text = _CHAR_REF.sub(_character, raw)
    variant = attrs.get("mathvariant")
    if variant is not None and variant != "normal":
        del attrs["mathvariant"]
        if variant in _VARIANT_STYLE:
            attrs["style"] = _VARIANT_STYLE[variant]
            if el.tag == "mi":
                attrs["mathvariant"] = "normal"  # upright, as \texttt is
        elif variant in _VARIANT_LETTERS:
            text = "".join(_styled(ch, _VARIANT_LETTERS[variant]) for ch in text)
    return str(escape(text))


def _character(match: re.Match[str]) -> str:
    """A character reference as its character; refused when it is not a printable one."""
    digits_hex, digits_dec = match.group(1), match.group(2)
    digits = digits_hex if digits_hex is not None else digits_dec
    if not digits:
        raise UnsupportedMath(f"{match.group(0)} is not a character")
    code = int(digits, 16 if digits_hex is not None else 10)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise UnsupportedMath(f"{match.group(0)} is not a character")
    ch = chr(code)
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\u2061\u2062":
        # Controls, invisible format characters (bidi overrides) and unassigned code points;
        # function application and invisible times are MathML's own.
        raise UnsupportedMath(f"{match.group(0)} is not a printable character")
    return ch


def _styled(ch: str, variant: str) -> str:
    """``ch`` as its mathematical alphanumeric in ``variant`` (``R`` -> ``ℝ`` for
    ``DOUBLE-STRUCK``), or unchanged where Unicode has none."""
    m = _CHAR_NAME.fullmatch(unicodedata.name(ch, ""))
    if m is None:
        return ch
    case, letter, digit = m.groups()
    names = ([f"MATHEMATICAL {variant} DIGIT {digit}"] if digit else
             [f"MATHEMATICAL {variant} {case} {letter}", f"{variant} {case} {letter}",
              f"{_LETTERLIKE.get(variant, variant)} {case} {letter}",
              _LETTERLIKE.get(f"{variant} {case} {letter}", "")])
    for name in names:
        try:
            return unicodedata.lookup(name)
        except KeyError:
            continue
    return ch


# --- markdown -------------------------------------------------------------------------------------

def _math_html(latex: str, display: bool) -> str:
    try:
        return str(latex_to_mathml(latex, display=display))
    except UnsupportedMath:
        # The reader still gets the formula, as its source; the CI test names the cell.
        code = f'<code class="math">{escape(latex)}</code>'
        return f"<pre>{code}</pre>\n" if display else code


def _render_inline(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    return _math_html(tokens[idx].content.strip(), False)


def _render_inline_double(self: Any, tokens: Sequence[Any], idx: int, options: Any,
                          env: Any) -> str:
    # $$...$$ inside a paragraph is display math, as in Jupyter; <math> may sit inside a <p>.
    return _math_html(tokens[idx].content.strip(), True)


def _render_block(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    return _math_html(tokens[idx].content.strip(), True) + "\n"


@lru_cache(maxsize=1)
def _markdown() -> Any:
    """The one markdown parser: CommonMark, raw HTML off, dollar math on. No labels on display
    math (``$$x$$ (countdown)`` would give a handout's formula an ``id`` of the page's own)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False})
    md.use(dollarmath_plugin, allow_labels=False, double_inline=True)
    md.add_render_rule("math_inline", _render_inline)
    md.add_render_rule("math_inline_double", _render_inline_double)
    md.add_render_rule("math_block", _render_block)
    return md


def render_markdown(text: str) -> Markup:
    """Markdown as HTML safe to put in a page: raw HTML shown as text, formulas as MathML
    (or as escaped code where :func:`latex_to_mathml` cannot draw them)."""
    return Markup(_markdown().render(text))


def formulas(text: str) -> list[Formula]:
    """Every formula of a markdown text, as the renderer sees it (the test of the handouts
    converts each)."""
    found: list[Formula] = []

    def walk(tokens: Sequence[Any]) -> Iterator[Any]:
        for t in tokens:
            yield t
            yield from walk(t.children or [])

    for t in walk(_markdown().parse(text)):
        if t.type in ("math_inline", "math_inline_double", "math_block"):
            found.append(Formula(t.content.strip(), t.type != "math_inline"))
    return found


# --- notebooks ------------------------------------------------------------------------------------

def cell_source(cell: dict[str, Any]) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def notebook_html(path: Path) -> Markup | None:
    """A handout notebook as HTML: markdown cells through :func:`render_markdown`, code cells
    as escaped code, outputs left out. None when the file cannot be read as a notebook."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", []), list):
        return None
    parts = []
    for cell in nb.get("cells", []):
        if not isinstance(cell, dict):
            continue
        src = cell_source(cell)
        if cell.get("cell_type") == "markdown":
            parts.append(str(render_markdown(src)))
        elif cell.get("cell_type") == "code" and src.strip():
            parts.append(f'<pre class="code"><code>{escape(src)}</code></pre>')
    return Markup("\n".join(parts))
