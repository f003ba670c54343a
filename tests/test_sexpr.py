import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakota.errors import ExpressionError
from lakota.sexpr import AST, Alias, Env, Groups, KWargs, Token


def ev(expr, env=None):
    return AST.parse(expr).eval(env)


# --- tokenizer and parser -------------------------------------------------------------


def test_parse_structure():
    ast = AST.parse("(+ 1 (* 2 3))")
    assert not ast.atom
    assert ast.tokens[0] == "+"
    assert isinstance(ast.tokens[0], Token)
    assert isinstance(ast.tokens[2], AST)
    assert str(ast) == "(+ 1 (* 2 3))"


def test_tokenizer_words_and_punctuation():
    ast = AST.parse("(f -2 <= != a.b:c {x} as-tz 'q s' \"d\" + * / % ~)")
    assert [str(t) for t in ast.tokens] == [
        "f", "-2", "<=", "!=", "a.b:c", "{x}", "as-tz", "'q s'", '"d"', "+", "*", "/", "%", "~",
    ]  # fmt: skip


def test_tokenizer_single_char_operators_split():
    ast = AST.parse("(+*/)")
    assert [str(t) for t in ast.tokens] == ["+", "*", "/"]


def test_comment_is_ignored():
    assert ev("(+ 1 # 100\n 2)") == 3


def test_missing_closing_paren_is_tolerated():
    assert ev("(+ 1 (+ 2 3") == 6


def test_only_first_expression_is_kept():
    assert ev("(+ 1 2) (+ 3 4)") == 3
    assert ev("(+ 1 2)) garbage (") == 3


def test_atom_expression():
    assert ev("42") == 42
    assert ev("x", {"x": 7}) == 7
    assert AST.parse("x").atom


@pytest.mark.parametrize("expr", ["", "   ", ")", "# only a comment"])
def test_empty_expression(expr):
    with pytest.raises(ExpressionError):
        AST.parse(expr)


def test_unterminated_quote():
    with pytest.raises(ExpressionError):
        AST.parse("(+ 'abc 1)")


def test_parse_non_string():
    with pytest.raises(ExpressionError):
        AST.parse(42)


def test_empty_list_eval():
    with pytest.raises(ExpressionError, match="Empty"):
        ev("()")


def test_ast_from_nested_lists():
    assert AST(["+", "1", ["*", "2", "3"]]).eval() == 7


def test_extract_tokens_flattens_one_level():
    ast = AST.parse("(+ a (* b (- c d)))")
    flat = ast.extract_tokens()
    assert [str(t) for t in flat[:4]] == ["+", "a", "*", "b"]
    assert isinstance(flat[4], AST)
    assert str(flat[4]) == "(- c d)"


# --- literals ------------------------------------------------------------------------


def test_literals():
    assert ev("1") == 1 and isinstance(ev("1"), int)
    assert ev("-2") == -2
    assert ev("1.5") == 1.5
    assert ev("1e-3") == 0.001
    assert ev("'abc'") == "abc"
    assert ev('"a b"') == "a b"
    assert ev("true") is True
    assert ev("false") is False


# --- builtins ------------------------------------------------------------------------


def test_arithmetic_folds():
    assert ev("(+ 1 2 3)") == 6
    assert ev("(- 10 2 3)") == 5
    assert ev("(* 2 3 4)") == 24
    assert ev("(/ 12 2 3)") == 2.0
    assert ev("(% 7 4)") == 3
    assert ev("(+ 5)") == 5


def test_arithmetic_on_arrays():
    env = {"x": numpy.array([1, 2, 3])}
    assert ev("(+ x 1)", env).tolist() == [2, 3, 4]
    assert ev("(* x x)", env).tolist() == [1, 4, 9]
    assert ev("(% x 2)", env).tolist() == [1, 0, 1]


def test_fold_without_args():
    with pytest.raises(ExpressionError):
        ev("(+)")


def test_and_or():
    assert ev("(and true false)") is False
    assert ev("(or false true)") is True
    env = {"x": numpy.array([1, 2, 3, 4, 5])}
    assert ev("(and (> x 2) (< x 5))", env).tolist() == [False, False, True, True, False]
    assert ev("(or (< x 2) (> x 4))", env).tolist() == [True, False, False, False, True]


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("(< 1 2 3)", True),
        ("(< 3 2 1)", False),  # chained, not folded pairwise
        ("(< 1 3 2)", False),
        ("(<= 1 1 2)", True),
        ("(> 3 2 1)", True),
        ("(>= 3 3 4)", False),
        ("(= 2 2 2)", True),
        ("(= 2 2 3)", False),
        ("(!= 1 2)", True),
        ("(< 1)", True),
    ],
)
def test_comparisons_are_chained(expr, expected):
    assert ev(expr) is expected


def test_chained_comparison_on_arrays():
    env = {"x": numpy.array([0, 1, 2, 3, 4])}
    assert ev("(< 0 x 3)", env).tolist() == [False, True, True, False, False]
    assert ev("(<= 1 x 3)", env).tolist() == [False, True, True, True, False]


def test_not_is_elementwise():
    assert ev("(~ false)") is True
    assert ev("(~ true)") is False
    assert ev("(~ 0 '')") is True
    assert ev("(~ 0 1)") is False
    env = {"x": numpy.array([1, 2, 3])}
    assert ev("(~ (> x 1))", env).tolist() == [True, False, False]
    assert ev("(~ (> x 2) (< x 2))", env).tolist() == [False, True, False]


def test_in_list_dict():
    assert ev("(in 2 (list 1 2 3))") is True
    assert ev("(in 'z' (list 'a'))") is False
    assert ev("(list 1 'a' 2.5)") == [1, "a", 2.5]
    assert ev("(dict 'a' 1 'b' 2)") == {"a": 1, "b": 2}
    with pytest.raises(ExpressionError, match="even"):
        ev("(dict 'a')")


def test_kw_passes_keyword_arguments():
    env = {"x": numpy.array([3, 1, 3, 2])}
    values, counts = ev("(unique x (kw 'return_counts' true))", env)
    assert values.tolist() == [1, 2, 3]
    assert counts.tolist() == [1, 1, 2]
    assert isinstance(ev("(kw 'a' 1)"), KWargs)


def test_as_alias():
    alias = ev("(as (+ 1 2) 'three')")
    assert isinstance(alias, Alias)
    assert alias.value == 3
    assert alias.name == "three"
    with pytest.raises(ExpressionError):
        ev("(as 1 2)")


# --- name resolution -----------------------------------------------------------------


class Obj:
    attr = {"inner": 5}
    value = 10


def test_env_dotted_path_items_then_attributes():
    env = {"a": {"b": {"c": 1}}, "o": Obj()}
    assert ev("a.b.c", env) == 1
    assert ev("o.value", env) == 10
    assert ev("o.attr.inner", env) == 5
    assert ev("(+ o.value a.b.c)", env) == 11


def test_env_accepts_any_indexable():
    class Indexable:
        def __getitem__(self, key):
            if key == "x":
                return 3
            raise KeyError(key)

    assert ev("(+ x 1)", Indexable()) == 4


def test_env_chain_precedence():
    env = Env({"x": 1, "y": 2}, {"x": 10})
    assert env["x"] == 10
    assert env["y"] == 2
    assert "y" in env and "z" not in env
    with pytest.raises(KeyError):
        env["z"]
    assert ev("(+ x y)", env) == 12


def test_builtins_win_over_env():
    assert ev("true", {"true": 5}) is True


def test_numpy_functions():
    env = {"x": numpy.array([1.0, 4.0, 9.0])}
    assert ev("(sqrt x)", env).tolist() == [1.0, 2.0, 3.0]
    arr = numpy.array(["A", "b"])
    assert ev("(char.lower x)", {"x": arr}).tolist() == ["a", "b"]
    assert ev("(isin x (list 1.0 9.0))", env).tolist() == [True, False, True]
    assert ev("(logical_not (> x 2))", env).tolist() == [True, False, False]


def test_env_shadows_numpy():
    assert ev("(sqrt 4)", {"sqrt": lambda v: "mine"}) == "mine"


def test_unknown_token_message():
    with pytest.raises(ExpressionError, match='Unexpected token: "nope"'):
        ev("(+ nope 1)")
    with pytest.raises(ExpressionError, match='Unexpected token: "a.missing"'):
        ev("a.missing", {"a": {}})
    with pytest.raises(ExpressionError, match='Unexpected token: "pi"'):
        ev("pi")  # numpy attributes must be callable


@pytest.mark.parametrize("expr", ["(true)", "(1)", "('abc' 1)", "(x)"])
def test_calling_non_callable(expr):
    with pytest.raises(ExpressionError, match="Not callable"):
        ev(expr, {"x": 5})


def test_not_callable_names_the_token():
    with pytest.raises(ExpressionError, match='"true"'):
        ev("(true 1)")


@pytest.mark.parametrize(
    "expr",
    [
        "(o.__class__)",
        "o.__class__.__init__.__globals__",
        "(self.eval.__globals__.__builtins__.eval '1')",
        "(__import__ 'os')",
        "(eval '1')",
        "(exec 'x=1')",
        "(open '/etc/passwd')",
        "(load 'file.npy')",
        "(save 'file.npy' 1)",
        "(ctypeslib.load_library 'libc' '/lib')",
        "(testing.assert_equal 1 1)",
        "(lib.npyio.load 'x')",
        "(f2py.compile 'x')",
        "(core.os.system 'ls')",
        "(ndarray.tofile x 'f')",
        "(x.tofile 'f')",
        "(x.dump 'f')",
        "(m.system 'ls')",
    ],
)
def test_no_escape_to_python(expr):
    import os

    env = {"o": Obj(), "self": Obj(), "x": numpy.arange(3), "m": os}
    with pytest.raises(ExpressionError):
        ev(expr, env)


# --- aggregates ----------------------------------------------------------------------


def test_aggregate_detection_any_depth():
    assert AST.parse("(sum x)").is_aggregate()
    assert AST.parse("(+ 1 (sum x))").is_aggregate()
    assert AST.parse("(+ 1 (* 2 (- 3 (max x))))").is_aggregate()
    assert not AST.parse("(+ 1 (* 2 x))").is_aggregate()
    assert not AST.parse("(+ 'sum' x)").is_aggregate()
    assert AST.parse("len").is_aggregate()
    assert AST.aggregates == {
        "min", "max", "sum", "first", "last", "mean", "average", "quantile", "count", "len",
    }  # fmt: skip


def test_aggregates_without_groups():
    env = {"x": numpy.array([4.0, 1.0, 3.0, 2.0])}
    assert ev("(min x)", env) == 1.0
    assert ev("(max x)", env) == 4.0
    assert ev("(sum x)", env) == 10.0
    assert ev("(mean x)", env) == 2.5
    assert ev("(average x)", env) == 2.5
    assert ev("(count x)", env) == 4
    assert ev("(len x)", env) == 4
    assert ev("(first x)", env) == 4.0
    assert ev("(last x)", env) == 2.0
    assert ev("(quantile x)", env) == 2.5
    assert ev("(quantile x 0.25)", env) == 1.75
    assert ev("(quantile x 0.25 'lower')", env) == 1.0
    assert ev("(quantile x (kw 'q' 1 'method' 'nearest'))", env) == 4.0
    assert ev("(quantile x (list 0 1))", env).tolist() == [1.0, 4.0]


def test_first_last_of_empty():
    with pytest.raises(ExpressionError):
        ev("(first x)", {"x": numpy.array([])})


def test_aggregates_with_groups():
    x = numpy.array([5.0, 1.0, 2.0, 7.0, 3.0])
    bins = numpy.array([1, 0, 1, 0, 2])
    env = {"x": x, "_groups": Groups(bins, 3)}
    assert ev("(min x)", env).tolist() == [1.0, 2.0, 3.0]
    assert ev("(max x)", env).tolist() == [7.0, 5.0, 3.0]
    assert ev("(sum x)", env).tolist() == [8.0, 7.0, 3.0]
    assert ev("(mean x)", env).tolist() == [4.0, 3.5, 3.0]
    assert ev("(average x)", env).tolist() == [4.0, 3.5, 3.0]
    assert ev("(count x)", env).tolist() == [2, 2, 1]
    assert ev("(len x)", env).tolist() == [2, 2, 1]
    assert ev("(first x)", env).tolist() == [1.0, 5.0, 3.0]
    assert ev("(last x)", env).tolist() == [7.0, 2.0, 3.0]
    assert ev("(+ 1 (max x))", env).tolist() == [8.0, 6.0, 4.0]
    with pytest.raises(ExpressionError, match="quantile"):
        ev("(quantile x)", env)


def test_groups_from_bins_and_keys():
    env = {"x": numpy.array([1, 2, 3]), "_bins": numpy.array([0, 1, 0]), "_keys": ["a", "b"]}
    assert ev("(sum x)", env).tolist() == [4, 2]


def test_group_aggregates_keep_dtypes():
    bins = numpy.array([0, 1, 0, 1])
    env = {
        "i": numpy.array([1, 2, 3, 4]),
        "s": numpy.array(["b", "z", "a", "y"]),
        "t": numpy.array(["2020-01-02", "2020-01-01", "2020-01-03", "2020-01-04"], "M8[s]"),
        "_groups": Groups(bins, 2),
    }
    total = ev("(sum i)", env)
    assert total.dtype == numpy.int64 and total.tolist() == [4, 6]
    assert ev("(min s)", env).tolist() == ["a", "y"]
    assert ev("(max s)", env).tolist() == ["b", "z"]
    tmax = ev("(max t)", env)
    assert tmax.dtype == numpy.dtype("M8[s]")
    assert tmax.astype(str).tolist() == ["2020-01-03T00:00:00", "2020-01-04T00:00:00"]
    assert ev("(last s)", env).dtype.kind == "U"


def test_groups_empty():
    env = {"x": numpy.array([], dtype=float), "_groups": Groups(numpy.array([], int), 0)}
    for agg in ("min", "max", "sum", "mean", "count", "first", "last"):
        assert ev(f"({agg} x)", env).tolist() == []


def test_group_shape_mismatch():
    env = {"x": numpy.array([1, 2]), "_groups": Groups(numpy.array([0, 0, 1]), 2)}
    with pytest.raises(ExpressionError, match="shape"):
        ev("(sum x)", env)


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1
    )
)
def test_group_aggregates_match_brute_force(rows):
    keys = numpy.array([k for k, _ in rows])
    vals = numpy.array([v for _, v in rows])
    uniq, bins = numpy.unique(keys, return_inverse=True)
    env = {"v": vals, "_groups": Groups(bins, len(uniq))}
    expected = {k: [v for kk, v in rows if kk == k] for k in uniq.tolist()}
    assert ev("(min v)", env).tolist() == [min(expected[k]) for k in uniq.tolist()]
    assert ev("(max v)", env).tolist() == [max(expected[k]) for k in uniq.tolist()]
    assert ev("(count v)", env).tolist() == [len(expected[k]) for k in uniq.tolist()]
    assert ev("(first v)", env).tolist() == [expected[k][0] for k in uniq.tolist()]
    assert ev("(last v)", env).tolist() == [expected[k][-1] for k in uniq.tolist()]
    numpy.testing.assert_allclose(
        ev("(sum v)", env), [sum(expected[k]) for k in uniq.tolist()], atol=1e-6
    )


@given(st.lists(st.integers(-100, 100), min_size=1, max_size=5))
def test_chained_lt_matches_python(values):
    expr = "(< " + " ".join(str(v) for v in values) + ")"
    expected = all(a < b for a, b in zip(values, values[1:]))
    assert ev(expr) is expected
