"""The safe expression language of `when` and `[[constraints]] expr`: never eval, bounded work."""

from __future__ import annotations

import time

import pytest

from tuner.expr import Expr, ExprError


@pytest.mark.parametrize("text,env,want", [
    ("tile_h * tile_w <= 4096", {"tile_h": 64, "tile_w": 64}, True),
    ("tile_h * tile_w <= 4096", {"tile_h": 64, "tile_w": 65}, False),
    ("opt == '-O3' and unroll", {"opt": "-O3", "unroll": True}, True),
    ("not (a or b)", {"a": False, "b": False}, True),
    ("x in (1, 2, 4)", {"x": 4}, True),
    ("x not in [1, 2]", {"x": 3}, True),
    ("1 < x <= 3", {"x": 3}, True),
    ("1 < x <= 3", {"x": 4}, False),
    ("min(a, b) + max(a, b) + abs(-a)", {"a": 2, "b": 5}, 9),
    ("log2(x) == 3", {"x": 8}, True),
    ("x // 3 + x % 3 - 2 ** 3 / 4", {"x": 10}, 3 + 1 - 2.0),
    ("threads <= cores", {"threads": 4, "cores": 8}, True),
    ("a if a > b else b", {"a": 1, "b": 2}, 2),
    ("-x + +y", {"x": 1, "y": 3}, 2),
])
def test_evaluates(text, env, want):
    assert Expr(text)(env) == want


def test_names_are_the_variables_read():
    assert Expr("min(a, b) <= c + 1 and d == 'x'").names == {"a", "b", "c", "d"}


@pytest.mark.parametrize("text", [
    "x.__class__",                            # attribute access
    "().__class__.__bases__[0]",              # attribute + subscript
    "x[0]",                                   # subscripts
    "open('/etc/passwd')",                    # a call outside the whitelist
    "__import__('os').system('true')",        # __import__
    "eval('1')",
    "getattr(x, 'y')",
    "(lambda: 1)()",                          # lambdas
    "lambda x: x",
    "[i for i in range(3)]",                  # comprehensions
    "{i: i for i in (1, 2)}",
    "sum(i for i in (1, 2))",
    "{1, 2}",                                 # set displays
    "{'a': 1}",
    "(y := 3)",                               # assignment expressions
    "min(a, key=abs)",                        # keyword arguments
    "f'{x}'",                                 # f-strings
    "x << 1000",                              # shifts (unbounded results)
    "b'bytes' == x",
])
def test_rejects_outside_the_language(text):
    with pytest.raises(ExprError):
        Expr(text)


def test_syntax_error_is_expr_error():
    with pytest.raises(ExprError, match="syntax"):
        Expr("x >")


@pytest.mark.parametrize("text,env", [
    ("2 ** 10 ** 10", {}),
    ("x ** 10 ** 10 > 0", {"x": 3}),
    ("(10 ** 100) ** (10 ** 4)", {}),
    ("'a' * 10 ** 12", {}),
    ("(1, 2) * 10 ** 12", {}),
    ("x * 10 ** 12", {"x": "abc"}),
    ("2.0 ** 100000", {}),
])
def test_blowups_are_refused_quickly(text, env):
    """Huge powers and repetitions raise ExprError at once instead of eating memory and time."""
    t0 = time.perf_counter()
    with pytest.raises(ExprError):
        Expr(text)(env)
    assert time.perf_counter() - t0 < 1.0


def test_reasonable_powers_still_work():
    assert Expr("2 ** 20")({}) == 1 << 20
    assert Expr("x ** 0.5")({"x": 16}) == 4.0
    assert Expr("(-2) ** 3")({}) == -8
    assert Expr("'ab' * n")({"n": 3}) == "ababab"


@pytest.mark.parametrize("text,env", [
    ("log2(x) > 1", {"x": 0}),          # math domain error
    ("x / y > 1", {"x": 1, "y": 0}),    # division by zero
    ("x + 'a'", {"x": 1}),              # type error
    ("missing > 1", {}),                # unknown name
])
def test_evaluation_errors_are_expr_errors(text, env):
    """Whatever goes wrong while evaluating is an ExprError, which callers turn into bad input."""
    with pytest.raises(ExprError):
        Expr(text)(env)


def test_never_uses_eval(monkeypatch):
    import builtins

    def no_eval(*a, **k):
        raise AssertionError("eval called")
    monkeypatch.setattr(builtins, "eval", no_eval)
    monkeypatch.setattr(builtins, "exec", no_eval)
    assert Expr("a + 1 == 2")({"a": 1})


@pytest.mark.parametrize("text", [
    "+".join(["x"] * 1000) + " > 0",         # a sum of 1,000 terms: 1,000 levels deep
    "-" * 3000 + "x",                        # 3,000 nested minus signs (and too long)
    "-" * 150 + "x",                         # short, but deeper than the cap
    "(" * 250 + "x" + ")" * 250,             # the parser's own nesting limit
    "x" * 2001,                              # too long
    "not x\0",                               # a NUL byte
])
def test_deep_or_long_expressions_are_refused_at_parse_time(text):
    """Evaluation recurses once per level: depth and length are capped when parsed, so no
    RecursionError (a traceback) can come later."""
    with pytest.raises(ExprError):
        Expr(text)


def test_the_depth_cap_leaves_real_expressions_alone():
    assert Expr("+".join(["x"] * 90) + " > 0")({"x": 1})
    assert Expr("-" * 90 + "x")({"x": 1}) == 1


@pytest.mark.parametrize("text,env", [
    ("len('%20000000d' % a) < 3", {"a": 1}),   # formatting builds a string of any width
    ("len(s % a) < 3", {"s": "%20000000d", "a": 1}),
    ("len(t % a) < 3", {"t": ("%d",), "a": 1}),
])
def test_percent_is_refused_on_strings(text, env):
    t0 = time.perf_counter()
    with pytest.raises(ExprError, match="'%'"):
        Expr(text)(env)
    assert time.perf_counter() - t0 < 1.0


def test_percent_is_still_the_remainder_of_numbers():
    assert Expr("x % 3 == 1")({"x": 10})
    assert Expr("x % 2.5")({"x": 6.0}) == 1.0
