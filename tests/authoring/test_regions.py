"""Stub generation: regions become `raise NotImplementedError` stubs; bad markers are refused."""

from __future__ import annotations

import ast
import textwrap

import pytest

from autograder.authoring.regions import (
    AuthoringError, make_stub, solution_region_lines, strip_solutions)

PATH = "solutions/hw/mod.py"


def stub(source: str) -> str:
    return strip_solutions(textwrap.dedent(source), PATH)


def raise_messages(text: str) -> list[str]:
    return [node.exc.args[0].value for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)]


def test_function_region_becomes_raise_keeping_signature_and_docstring():
    out = stub('''\
        def softmax_loss(x, y, *, reg=0.0):
            """Loss and gradient.

            Returns (loss, dx).
            """
            # BEGIN SOLUTION
            loss = x.sum()
            return loss, x
            # END SOLUTION
        ''')
    assert out == textwrap.dedent('''\
        def softmax_loss(x, y, *, reg=0.0):
            """Loss and gradient.

            Returns (loss, dx).
            """
            # YOUR CODE HERE
            raise NotImplementedError("softmax_loss: replace this line with your implementation")
        ''')


def test_method_with_decorator_is_named_by_class():
    out = stub('''\
        import functools

        class Layer:
            """A layer."""

            @functools.lru_cache
            def forward(self, x):
                """Forward pass."""
                # BEGIN SOLUTION
                return x + 1
                # END SOLUTION

            @staticmethod
            def backward(dout):
                ### BEGIN SOLUTION
                return dout
                ### END SOLUTION
        ''')
    assert "@functools.lru_cache\n    def forward(self, x):\n        \"\"\"Forward pass.\"\"\"" in out
    assert "@staticmethod" in out
    assert raise_messages(out) == [
        "Layer.forward: replace this line with your implementation",
        "Layer.backward: replace this line with your implementation",
    ]
    assert "return x + 1" not in out and "return dout" not in out
    compile(out, PATH, "exec")


def test_nested_function_region_uses_inner_indentation_and_name():
    out = stub('''\
        def outer(a):
            def inner(b):
                # BEGIN SOLUTION
                return a * b
                # END SOLUTION
            return inner
        ''')
    assert "        # YOUR CODE HERE\n        raise NotImplementedError(\"outer.inner:" in out
    assert "    return inner\n" in out
    assert "a * b" not in out


def test_multiple_regions_and_blank_lines_inside():
    src = '''\
        def f(x):
            # BEGIN SOLUTION
            y = x + 1

            z = y * 2
            # END SOLUTION
            print("kept")
            # BEGIN SOLUTION

            return z

            # END SOLUTION


        def g():
            # BEGIN SOLUTION
            pass
            # END SOLUTION
        '''
    out = stub(src)
    assert out.count("# YOUR CODE HERE") == 3
    assert raise_messages(out) == [f"{n}: replace this line with your implementation" for n in "ffg"]
    assert 'print("kept")' in out
    assert "y * 2" not in out and "return z" not in out
    assert make_stub(textwrap.dedent(src), PATH).todo == ("f", "g")


def test_stub_is_valid_python_and_keeps_code_outside_regions_byte_for_byte():
    src = textwrap.dedent('''\
        """Module docstring."""
        import numpy as np
        CONSTANT = 3   # a comment, kept


        def f(x):
            # BEGIN SOLUTION
            return np.exp(x)
            # END SOLUTION
        ''')
    out = strip_solutions(src, PATH)
    compile(out, PATH, "exec")
    assert out.startswith('"""Module docstring."""\nimport numpy as np\nCONSTANT = 3   # a comment, kept\n')
    assert out.endswith("\n") and "\r" not in out


def test_crlf_source_gives_lf_stub():
    src = "def f():\r\n    # BEGIN SOLUTION\r\n    return 1\r\n    # END SOLUTION\r\n"
    assert "\r" not in strip_solutions(src, PATH)


def test_otter_solution_lines():
    out = stub('''\
        def square(x):
            y = x * x  # SOLUTION NO PROMPT
            return y  # SOLUTION

        nine = square(3)  # SOLUTION
        weights: list = [1, 2]   # SOLUTION
        total += 5 #SOLUTION
        ''')
    assert out == textwrap.dedent('''\
        def square(x):
            ...

        nine = ...
        weights: list = ...
        total += ...
        ''')
    assert make_stub(textwrap.dedent('''\
        def square(x):
            return x * x  # SOLUTION
        nine = 9  # SOLUTION
        '''), PATH).module_level_placeholders


def test_otter_prompt_blocks_string_and_comment_styles():
    out = stub('''\
        def circumference(r):
            # BEGIN SOLUTION NO PROMPT
            return 2 * 3.14 * r
            # END SOLUTION
            """ # BEGIN PROMPT
            # Next, define a circumference function.
            pass
            """; # END PROMPT


        def area(r):
            # BEGIN PROMPT
            # radius = ...
            # # compute the area from radius
            # return ...
            # END PROMPT
            # BEGIN SOLUTION NO PROMPT
            return 3.14 * r * r
            # END SOLUTION
        ''')
    assert out == textwrap.dedent('''\
        def circumference(r):
            # Next, define a circumference function.
            pass


        def area(r):
            radius = ...
            # compute the area from radius
            return ...
        ''')


def test_todo_names_functions_of_every_kind_of_region():
    src = textwrap.dedent('''\
        def helper():
            return 1


        # BEGIN SOLUTION NO PROMPT
        def extra():
            return 2
        # END SOLUTION


        class Net:
            def forward(self, x):
                # BEGIN SOLUTION NO PROMPT
                return x
                # END SOLUTION
                """ # BEGIN PROMPT
                return ...
                """ # END PROMPT

        def f():
            y = 2  # SOLUTION
            return y
        ''')
    assert make_stub(src, PATH).todo == ("Net.forward", "f")


def test_solution_region_lines_lists_code_only():
    src = textwrap.dedent('''\
        def f(x):
            # BEGIN SOLUTION
            # a comment inside

            y = x + 1
            return y   # SOLUTION
            # END SOLUTION
            z = 3  # SOLUTION
            return z
        ''')
    assert solution_region_lines(src, PATH) == [(5, "y = x + 1"), (6, "return y"), (8, "z = 3")]


@pytest.mark.parametrize("source, line, words", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", 2, ["never closed", "# END SOLUTION"]),
    ("def f():\n    return 1\n    # END SOLUTION\n", 3, ["END SOLUTION without", "BEGIN SOLUTION"]),
    ("def f():\n    # BEGIN SOLUTION\n    x = 1\n    # BEGIN SOLUTION\n    return x\n"
     "    # END SOLUTION\n", 4, ["inside the region opened at line 2", "add `# END SOLUTION` before line 4"]),
    ("def f():\n    # BEGIN SOLUTION (vectorised)\n    return 1\n    # END SOLUTION\n", 2,
     ["unrecognised solution marker", "alone on its line"]),
    ("def f():\n    # SOLUTION\n", 2, ["no code before it"]),
    ('def f():\n    """ # BEGIN PROMPT\n    pass\n', 2, ["BEGIN PROMPT is never closed", "END PROMPT"]),
    ("def f():\n    pass\n    # END PROMPT\n", 3, ["END PROMPT without"]),
    ("x = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n", 2,
     ["outside any function", "run on import", "# SOLUTION"]),
    ("class A:\n    # BEGIN SOLUTION\n    size = 2\n    # END SOLUTION\n", 2, ["outside any function"]),
])
def test_bad_markers_name_file_line_and_fix(source, line, words):
    with pytest.raises(AuthoringError) as info:
        strip_solutions(source, PATH)
    message = str(info.value)
    assert message.startswith(f"{PATH}:{line}: "), message
    for word in words:
        assert word in message


def test_region_leaving_invalid_python_is_refused_with_the_source_line():
    source = textwrap.dedent('''\
        def f(x):
            if x:
                # BEGIN SOLUTION NO PROMPT
                return 1
                # END SOLUTION
            return 0
        ''')
    with pytest.raises(AuthoringError) as info:
        strip_solutions(source, PATH)
    message = str(info.value)
    assert message.startswith(f"{PATH}:6: ") and "invalid Python" in message
    assert "NO PROMPT" in message  # says what to write instead


def test_region_marker_at_wrong_indentation_is_refused():
    source = "def f(x):\n    y = 1\n# BEGIN SOLUTION\n    return y\n# END SOLUTION\n    return 2\n"
    with pytest.raises(AuthoringError, match=rf"^{PATH}:\d+: "):
        strip_solutions(source, PATH)


def test_bad_markers_are_refused_by_solution_region_lines_too():
    with pytest.raises(AuthoringError, match=f"{PATH}:2: "):
        solution_region_lines("def f():\n    # BEGIN SOLUTION\n", PATH)
