"""A tiny s-expression language used by `Frame.mask`, `Frame.reduce` and the CLI.

`AST.parse("(and (> self.x 2) (< self.x 4))").eval(env)` evaluates an expression against
an environment (a dict, or anything indexable by name). Tokens resolve, in order, to a
builtin, an aggregate, an int or float literal, a quoted string, a name of the
environment (dotted paths walk items then attributes) or one of the numpy functions of
`NUMPY_NAMES`.

Expressions come from users and command lines, so evaluation is fenced in: numpy is
reached only through the `NUMPY_NAMES` allow-list (never by walking its modules), an
attribute walked in the environment must be plain data (no method, class or module),
names starting with an underscore are refused, and arrays of the environment are
read-only views (numpy's ``out`` arguments cannot write into the data being read). Any
failure is an `ExpressionError`. Expressions can
still ask for much CPU or memory: they are not meant to be run for untrusted parties.
"""

from __future__ import annotations

import builtins as _py_builtins
import operator
import shlex
import types
from collections.abc import Callable, Iterator
from functools import cached_property, partial, reduce
from typing import Any, ClassVar

import numpy

from lakota.errors import ExpressionError, LakotaError

__all__ = ["AST", "NUMPY_NAMES", "Alias", "Env", "Groups", "KWargs", "Token"]

_WORD_CHARS = ".!=<>:{}-"
_QUOTES = ("'", '"')
_MISSING = object()

# Attribute names refused along any dotted path: file io, pickling, ctypes, test tooling.
_DENIED_NAMES = frozenset(
    {
        "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt",
        "fromfile", "fromregex", "tofile", "dump", "dumps", "memmap", "open_memmap",
        "ctypes", "ctypeslib", "f2py", "testing", "distutils", "DataSource", "npyio",
        "format", "os", "sys", "subprocess", "builtins",
    }
)  # fmt: skip

# Python builtins refused even when an environment hands them out.
_FORBIDDEN_IDS = frozenset(
    id(getattr(_py_builtins, name))
    for name in (
        "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
        "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help",
    )
    if hasattr(_py_builtins, name)
)  # fmt: skip

# The numpy functions an expression may call, by the name it calls them with: elementwise
# math and comparisons, reductions, sorting and set helpers, datetimes and strings.
# Nothing that reads or writes files, imports modules, builds arrays on raw memory
# (as_strided, ndarray) or pads strings to a requested width.
_NUMPY_UFUNCS = (
    "abs absolute add arccos arccosh arcsin arcsinh arctan arctan2 arctanh bitwise_and "
    "bitwise_not bitwise_or bitwise_xor cbrt ceil conj copysign cos cosh deg2rad degrees "
    "divide divmod equal exp exp2 expm1 fabs float_power floor floor_divide fmax fmin fmod "
    "gcd greater greater_equal heaviside hypot invert isfinite isinf isnan isnat lcm "
    "left_shift less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and "
    "logical_not logical_or logical_xor maximum minimum mod modf multiply negative "
    "nextafter not_equal positive power rad2deg radians reciprocal remainder right_shift "
    "rint sign signbit sin sinh sqrt square subtract tan tanh true_divide trunc"
)
_NUMPY_FUNCTIONS = (
    "all allclose amax amin any argmax argmin argsort around array array_equal asarray "
    "astype average bincount busday_count busday_offset clip concatenate count_nonzero "
    "cumprod cumsum datetime64 datetime_as_string diff digitize ediff1d flatnonzero "
    "float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool_ str_ "
    "interp intersect1d is_busday isclose isin lexsort max mean median min nan_to_num "
    "nanargmax nanargmin nancumprod nancumsum nanmax nanmean nanmedian nanmin "
    "nanpercentile nanprod nanquantile nanstd nansum nanvar nonzero percentile prod ptp "
    "quantile round searchsorted setdiff1d sort std sum take timedelta64 union1d unique var "
    "where zeros_like ones_like"
)
_NUMPY_STRING_FUNCTIONS = (
    "add capitalize count endswith equal find greater greater_equal isalnum isalpha "
    "isdecimal isdigit islower isnumeric isspace istitle isupper less less_equal lower "
    "lstrip not_equal replace rfind rstrip startswith str_len strip swapcase title upper"
)


def _numpy_names() -> dict[str, Any]:
    """Name -> numpy callable for every allowed name this numpy version has."""
    names = {}
    for module, words in (
        ("", _NUMPY_UFUNCS), ("", _NUMPY_FUNCTIONS),
        ("char", _NUMPY_STRING_FUNCTIONS), ("strings", _NUMPY_STRING_FUNCTIONS),
    ):  # fmt: skip
        space = getattr(numpy, module) if module else numpy
        for word in words.split():
            value = getattr(space, word, None)
            if callable(value):
                names[f"{module}.{word}" if module else word] = value
    return names


NUMPY_NAMES: dict[str, Any] = _numpy_names()


class Token(str):
    """One word of an expression, kept as written (quotes included)."""

    def eval(self, env: Env) -> Any:
        """Resolve the token (see the module docstring for the order of the rules)."""
        if self in AST.builtins:
            return AST.builtins[self]
        if self in AST.aggregates:
            return partial(_AGGREGATES[self], _groups_of(env))
        for kind in (int, float):
            try:
                return kind(self)
            except ValueError:
                pass
        if len(self) >= 2 and self[0] in _QUOTES and self[-1] == self[0]:
            return str(self[1:-1])
        value = _lookup_env(env, self)
        if value is _MISSING:
            value = _lookup_numpy(self)
        if value is _MISSING:
            raise ExpressionError(f'Unexpected token: "{self}"')
        return value


class KWargs(dict):
    """Keyword arguments produced by `(kw key value ...)` for the enclosing call."""


class Alias:
    """`(as value "name")`: a value together with the output column name for `reduce`."""

    def __init__(self, value: Any, name: str) -> None:
        self.value = value
        self.name = name

    def __repr__(self) -> str:
        return f"Alias({self.value!r}, {self.name!r})"


class Env:
    """A chain of mappings; a name is looked up from the last mapping to the first."""

    def __init__(self, *mappings: Any) -> None:
        self.mappings = [m for m in mappings if m is not None]

    def __getitem__(self, name: str) -> Any:
        for mapping in reversed(self.mappings):
            try:
                return mapping[name]
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: str) -> bool:
        return self.get(name, _MISSING) is not _MISSING


class AST:
    """A parsed s-expression: a list of `Token` and nested `AST`, or a single atom."""

    builtins: ClassVar[dict[str, Any]] = {}
    aggregates: ClassVar[set[str]] = set()

    def __init__(self, tokens: list | tuple | str) -> None:
        if isinstance(tokens, (list, tuple)):
            self.atom = False
            self.tokens: list[Token | AST] = [_as_node(t) for t in tokens]
        else:
            self.atom = True
            self.tokens = [Token(tokens)]

    @classmethod
    def parse(cls, expr: str) -> AST:
        """Parse the first top-level expression of `expr`; the rest is ignored."""
        if not isinstance(expr, str):
            raise ExpressionError(f"Expression must be a string, not {type(expr).__name__}")
        stack: list[list] = [[]]
        try:
            for word in _tokenize(expr):
                if word == "(":
                    stack[-1].append([])
                    stack.append(stack[-1][-1])
                    continue
                if word == ")":
                    if len(stack) == 1:
                        break
                    stack.pop()
                else:
                    stack[-1].append(word)
                if len(stack) == 1:
                    break
        except ValueError as exc:  # shlex: unterminated quote
            raise ExpressionError(f"Invalid expression {expr!r}: {exc}") from None
        if not stack[0]:
            raise ExpressionError(f"Empty expression: {expr!r}")
        first = stack[0][0]
        return cls(first) if isinstance(first, list) else cls(str(first))

    def eval(self, env: Any = None) -> Any:
        """Evaluate the expression against `env` (dict, `Env` or anything indexable)."""
        if not isinstance(env, Env):
            env = Env(env if env is not None else {})
        if self.atom:
            return self.tokens[0].eval(env)
        if not self.tokens:
            raise ExpressionError("Empty expression: ()")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for node in self.tokens[1:]:
            value = node.eval(env)
            if isinstance(value, KWargs):
                kwargs.update(value)
            else:
                args.append(value)
        head = self.tokens[0]
        func = head.eval(env)
        if not callable(func):
            raise ExpressionError(f'Not callable: "{head}" (in {self})')
        try:
            return func(*args, **kwargs)
        except LakotaError:
            raise
        except Exception as exc:  # numpy raises TypeError, ValueError, MemoryError...
            raise ExpressionError(f"{self}: {type(exc).__name__}: {exc}") from exc

    def iter_tokens(self) -> Iterator[Token]:
        """Every token of the tree, depth first."""
        for node in self.tokens:
            if isinstance(node, AST):
                yield from node.iter_tokens()
            else:
                yield node

    def extract_tokens(self) -> list[Token | AST]:
        """The tokens of this expression, nested expressions flattened one level."""
        out: list[Token | AST] = []
        for node in self.tokens:
            if isinstance(node, AST) and not node.atom:
                out.extend(node.tokens)
            else:
                out.append(node)
        return out

    def is_aggregate(self) -> bool:
        """True if an aggregate token appears anywhere in the expression."""
        return any(tok in self.aggregates for tok in self.iter_tokens())

    def __str__(self) -> str:
        if self.atom:
            return str(self.tokens[0])
        return "(" + " ".join(str(t) for t in self.tokens) + ")"

    def __repr__(self) -> str:
        return f"<AST {self}>"


def _as_node(item: Any) -> Token | AST:
    if isinstance(item, (Token, AST)):
        return item
    if isinstance(item, (list, tuple)):
        return AST(item)
    return Token(item)


def _tokenize(expr: str) -> Iterator[str]:
    lexer = shlex.shlex(expr, posix=False)
    lexer.wordchars += _WORD_CHARS
    return iter(lexer)


# --- name resolution ------------------------------------------------------------------


def _check_safe(value: Any, path: str) -> Any:
    if id(value) in _FORBIDDEN_IDS:
        raise ExpressionError(f'Forbidden name: "{path}"')
    if isinstance(value, types.ModuleType):
        raise ExpressionError(f'Forbidden name: "{path}" (module)')
    return value


def _safe_getattr(obj: Any, part: str, path: str) -> Any:
    """An attribute that is plain data: methods, classes and modules stay out of reach."""
    if not part or part.startswith("_") or part in _DENIED_NAMES:
        raise ExpressionError(f'Forbidden name: "{path}"')
    value = getattr(obj, part)
    if callable(value) or isinstance(value, types.ModuleType):
        raise ExpressionError(f'Forbidden name: "{path}" (only data attributes are allowed)')
    return value


def _read_only(value: Any) -> Any:
    """Arrays of the environment are given out as read-only views: an expression cannot
    write into the data it reads (numpy's ``out=`` arguments)."""
    if isinstance(value, numpy.ndarray) and value.flags.writeable:
        value = value.view()
        value.flags.writeable = False
    return value


def _lookup_env(env: Env, path: str) -> Any:
    """Walk a dotted path in the environment: items first, then data attributes."""
    first, *rest = path.split(".")
    try:
        obj = env[first]
    except KeyError:
        return _MISSING
    _check_safe(obj, path)
    for part in rest:
        try:
            obj = obj[part]
            continue
        except (KeyError, IndexError, TypeError, ValueError):
            pass
        try:
            obj = _safe_getattr(obj, part, path)
        except AttributeError:
            return _MISSING
        _check_safe(obj, path)
    return _read_only(_check_safe(obj, path))


def _lookup_numpy(path: str) -> Any:
    """The numpy callable allowed under this name (`sqrt`, `char.lower`), or `_MISSING`."""
    return NUMPY_NAMES.get(path, _MISSING)


# --- builtins ---------------------------------------------------------------------------


def _fold(op: Callable, name: str) -> Callable:
    def fold(*args: Any) -> Any:
        if not args:
            raise ExpressionError(f'"{name}" needs at least one argument')
        return reduce(op, args)

    fold.__name__ = f"fold_{op.__name__}"
    return fold


def _chain(op: Callable, name: str) -> Callable:
    """Chained comparison: `(< a b c)` is `(a < b) and (b < c)`, elementwise on arrays."""

    def compare(*args: Any) -> Any:
        if not args:
            raise ExpressionError(f'"{name}" needs at least one argument')
        if len(args) == 1:
            return True
        result = op(args[0], args[1])
        for left, right in zip(args[1:-1], args[2:]):
            result = result & op(left, right)
        return result

    compare.__name__ = f"chain_{op.__name__}"
    return compare


def _not(*args: Any) -> Any:
    """Elementwise: true where every argument is falsy."""
    if not args:
        raise ExpressionError('"~" needs at least one argument')
    if not any(isinstance(a, numpy.ndarray) for a in args):
        return not any(args)
    result = numpy.logical_not(reduce(numpy.logical_or, args))
    return result.item() if numpy.ndim(result) == 0 else result


def _pairs(args: tuple, name: str) -> list[tuple]:
    if len(args) % 2:
        raise ExpressionError(f'"{name}" needs an even number of arguments (key value ...)')
    return list(zip(args[::2], args[1::2]))


def _in(item: Any, container: Any) -> bool:
    return item in container


def _alias(value: Any, name: Any) -> Alias:
    if not isinstance(name, str):
        raise ExpressionError(f'"as" needs a string name, got {name!r}')
    return Alias(value, name)


AST.builtins.update(
    {
        "true": True,
        "false": False,
        "+": _fold(operator.add, "+"),
        "-": _fold(operator.sub, "-"),
        "*": _fold(operator.mul, "*"),
        "/": _fold(operator.truediv, "/"),
        "%": _fold(operator.mod, "%"),
        "and": _fold(operator.and_, "and"),
        "or": _fold(operator.or_, "or"),
        "<": _chain(operator.lt, "<"),
        "<=": _chain(operator.le, "<="),
        "=": _chain(operator.eq, "="),
        "!=": _chain(operator.ne, "!="),
        ">=": _chain(operator.ge, ">="),
        ">": _chain(operator.gt, ">"),
        "~": _not,
        "in": _in,
        "list": lambda *args: list(args),
        "dict": lambda *args: dict(_pairs(args, "dict")),
        "kw": lambda *args: KWargs(_pairs(args, "kw")),
        "as": _alias,
    }
)


# --- aggregates -------------------------------------------------------------------------


class Groups:
    """Bins of a group-by: `bins[i]` is the group of row `i`, groups are `0..size-1`.

    Every group is expected to be non-empty (as produced by `numpy.unique`'s inverse).
    Sorting work is done once and shared by every aggregate of a `reduce`. With
    `presorted`, `bins` is known to be non-decreasing and no sort is needed at all.
    """

    def __init__(self, bins: numpy.ndarray, size: int, presorted: bool = False) -> None:
        self.bins = numpy.asarray(bins).reshape(-1)
        self.size = int(size)
        self.presorted = presorted

    @cached_property
    def order(self) -> numpy.ndarray | None:
        """Row order grouping the bins together (None when already grouped)."""
        return None if self.presorted else numpy.argsort(self.bins, kind="stable")

    @cached_property
    def counts(self) -> numpy.ndarray:
        return numpy.bincount(self.bins, minlength=self.size)

    @cached_property
    def starts(self) -> numpy.ndarray:
        return (numpy.cumsum(self.counts) - self.counts).astype(numpy.intp)

    @cached_property
    def ends(self) -> numpy.ndarray:
        return (self.starts + self.counts).astype(numpy.intp)

    def check(self, arr: Any, name: str) -> numpy.ndarray:
        arr = numpy.asarray(arr)
        if arr.shape != self.bins.shape:
            raise ExpressionError(
                f"{name}: argument has shape {arr.shape}, expected {self.bins.shape}"
            )
        return arr

    def grouped(self, arr: numpy.ndarray) -> numpy.ndarray:
        """`arr` reordered so that each group is contiguous (rows keep their order)."""
        return arr if self.order is None else arr[self.order]

    def rows(self, positions: numpy.ndarray) -> numpy.ndarray:
        """Row numbers of positions in the grouped order."""
        return positions if self.order is None else self.order[positions]

    def extreme(self, arr: numpy.ndarray, ufunc: numpy.ufunc) -> numpy.ndarray:
        """Per-group minimum or maximum, keeping the input dtype."""
        if self.size == 0:
            return arr[:0]
        try:
            return ufunc.reduceat(self.grouped(arr), self.starts)
        except TypeError:  # e.g. fixed-width strings have no minimum ufunc
            order = numpy.lexsort((arr, self.bins))
            pick = self.starts if ufunc is numpy.minimum else self.ends - 1
            return arr[order[pick]]

    def sum(self, arr: numpy.ndarray) -> numpy.ndarray:
        if arr.dtype.kind in "biu" and self.size:
            return numpy.add.reduceat(self.grouped(arr).astype(numpy.int64), self.starts)
        return numpy.bincount(self.bins, weights=arr, minlength=self.size)

    def mean(self, arr: numpy.ndarray) -> numpy.ndarray:
        return numpy.bincount(self.bins, weights=arr, minlength=self.size) / self.counts

    def first(self, arr: numpy.ndarray) -> numpy.ndarray:
        return arr[self.rows(self.starts)]

    def last(self, arr: numpy.ndarray) -> numpy.ndarray:
        return arr[self.rows(self.ends - 1)]


def _groups_of(env: Env) -> Groups | None:
    groups = env.get("_groups")
    if isinstance(groups, Groups):
        return groups
    bins = env.get("_bins")
    if bins is None:
        return None
    keys = env.get("_keys")
    size = len(keys) if keys is not None else int(numpy.max(bins, initial=-1)) + 1
    return Groups(bins, size)


def _agg_min(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        return numpy.min(arr)
    return groups.extreme(groups.check(arr, "min"), numpy.minimum)


def _agg_max(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        return numpy.max(arr)
    return groups.extreme(groups.check(arr, "max"), numpy.maximum)


def _agg_sum(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        return numpy.sum(arr)
    return groups.sum(groups.check(arr, "sum"))


def _agg_mean(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        return numpy.mean(arr)
    return groups.mean(groups.check(arr, "mean"))


def _agg_count(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        return len(arr)
    groups.check(arr, "count")
    return groups.counts


def _agg_first(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        if len(arr) == 0:
            raise ExpressionError("first: empty array")
        return arr[0]
    return groups.first(groups.check(arr, "first"))


def _agg_last(groups: Groups | None, arr: Any) -> Any:
    if groups is None:
        if len(arr) == 0:
            raise ExpressionError("last: empty array")
        return arr[-1]
    return groups.last(groups.check(arr, "last"))


def _agg_quantile(groups: Groups | None, arr: Any, q: Any = 0.5, method: str = "linear") -> Any:
    if groups is not None:
        raise ExpressionError("quantile is not supported with group-by keys")
    return numpy.quantile(arr, q, method=method)


_AGGREGATES: dict[str, Callable] = {
    "min": _agg_min,
    "max": _agg_max,
    "sum": _agg_sum,
    "mean": _agg_mean,
    "average": _agg_mean,
    "count": _agg_count,
    "len": _agg_count,
    "first": _agg_first,
    "last": _agg_last,
    "quantile": _agg_quantile,
}
AST.aggregates.update(_AGGREGATES)


def is_aggregate(expr: str | AST) -> bool:
    """True if the expression (string or AST) uses an aggregate."""
    ast = expr if isinstance(expr, AST) else AST.parse(expr)
    return ast.is_aggregate()
