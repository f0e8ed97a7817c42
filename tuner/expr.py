"""A small, safe expression language for constraints and conditions.

`tile_h * tile_w <= 4096`, `threads <= batch`, `opt == '-O3' and unroll`. Parsed with
Python's `ast` and evaluated by walking a whitelist of node types: no attribute access,
no calls except a few pure functions, no names but the knobs and stated constants.
Never `eval`.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Mapping

MAX_INT_BITS = 4096      # `2 ** 10 ** 10` would take minutes and gigabytes: refuse it
MAX_REPEAT = 100_000     # `'a' * 10 ** 12` likewise
MAX_CHARS = 2000         # the longest expression in the built-in studies is about 200 characters
MAX_DEPTH = 100          # `a+a+...` (1,000 terms) or 3,000 nested `-` would exhaust the recursion


def _pow(a: Any, b: Any) -> Any:
    if (isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1
            and b * math.log2(abs(a)) > MAX_INT_BITS):
        raise ExprError(f"{a} ** {b} is too large (over {MAX_INT_BITS} bits)")
    return operator.pow(a, b)


def _mod(a: Any, b: Any) -> Any:
    # `'%20000000d' % a` builds a string of any width: only numbers have a remainder here
    if isinstance(a, (str, tuple)):
        raise ExprError("'%' formatting of strings is not allowed (only numbers have a remainder)")
    return operator.mod(a, b)


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, tuple)) and isinstance(n, int) and len(seq) * n > MAX_REPEAT:
            raise ExprError(f"repeating a sequence {n} times is too large")
    return operator.mul(a, b)


_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: _mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: _mod,
    ast.Pow: _pow,
}
_CMPOPS = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_FUNCS = {"min": min, "max": max, "abs": abs, "log2": math.log2, "int": int, "len": len}


class ExprError(ValueError):
    """A syntax error or a use of something outside the language."""


def _check_depth(tree: ast.AST) -> None:
    """Walk without recursion: evaluation recurses once per level, so deep trees are refused."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError(f"expression is nested too deeply (over {MAX_DEPTH} levels)")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class Expr:
    """A parsed expression; `names` are the variables it reads."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ExprError(f"an expression must be a string, got {type(text).__name__} {text!r:.40}")
        self.text = text
        if len(text) > MAX_CHARS:
            raise ExprError(f"expression is too long ({len(text)} characters, at most {MAX_CHARS})")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise ExprError(f"syntax error in '{text}': {e.msg}") from None
        except (ValueError, RecursionError, MemoryError) as e:   # NUL bytes; the parser's own limits
            raise ExprError(f"cannot parse '{text:.60}': {type(e).__name__}") from None
        self._tree = tree.body
        _check_depth(self._tree)
        self.names = frozenset(self._check(self._tree))

    def _check(self, node: ast.AST) -> set[str]:
        names: set[str] = set()
        if isinstance(node, ast.Name):
            if node.id not in _FUNCS:
                names.add(node.id)
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool)):
                raise ExprError(f"unsupported constant in '{self.text}'")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                raise ExprError(f"'%' formatting of strings is not allowed in '{self.text}'")
            names |= self._check(node.left) | self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            names |= self._check(node.operand)
        elif isinstance(node, ast.BoolOp):
            for v in node.values:
                names |= self._check(v)
        elif isinstance(node, ast.Compare) and all(type(o) in _CMPOPS for o in node.ops):
            for v in [node.left, *node.comparators]:
                names |= self._check(v)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for v in node.elts:
                names |= self._check(v)
        elif isinstance(node, ast.IfExp):
            for v in (node.test, node.body, node.orelse):
                names |= self._check(v)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in _FUNCS and not node.keywords):
            for v in node.args:
                names |= self._check(v)
        else:
            raise ExprError(f"'{ast.unparse(node)}' is not allowed in '{self.text}'")
        return names

    def __call__(self, env: Mapping[str, Any]) -> Any:
        try:
            return self._eval(self._tree, env)
        except ExprError:
            raise
        except (ArithmeticError, TypeError, ValueError) as e:   # log2(0), 1/0, 2.0**1e6, 1+'a'
            raise ExprError(f"cannot evaluate '{self.text}': {e}") from None

    def _eval(self, node: ast.AST, env: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in env:
                raise ExprError(f"unknown name '{node.id}' in '{self.text}'")
            return env[node.id]
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, env), self._eval(node.right, env))
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, env) for v in node.values)
            return any(self._eval(v, env) for v in node.values)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, env)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self._eval(v, env) for v in node.elts)
        if isinstance(node, ast.IfExp):
            return self._eval(node.body if self._eval(node.test, env) else node.orelse, env)
        if isinstance(node, ast.Call):
            return _FUNCS[node.func.id](*(self._eval(a, env) for a in node.args))
        raise ExprError(f"cannot evaluate '{self.text}'")  # unreachable: _check rejected it

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"
