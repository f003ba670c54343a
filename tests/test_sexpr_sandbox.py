"""Expressions cannot leave their sandbox: numpy is reached only through an allow-list,
environment attributes are plain data, and the data an expression reads stays intact.

Attacks that crash the interpreter on an unfenced evaluator run in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy
import pytest

from lakota import Frame, Repo, Schema
from lakota.errors import ExpressionError
from lakota.sexpr import AST, NUMPY_NAMES

SCHEMA = Schema(ts="timestamp*", value="float")


def frame() -> Frame:
    ts = numpy.array(["2020-01-01", "2020-02-01", "2020-03-01"], dtype="M8[s]")
    return Frame(SCHEMA, {"ts": ts, "value": numpy.array([1.0, 2.0, 3.0])})


def run_child(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_as_strided_is_refused_instead_of_crashing(tmp_path):
    child = run_child(
        """
        import numpy
        from lakota import Frame, Schema
        from lakota.errors import ExpressionError
        frm = Frame(Schema(idx="int*", value="float"), {"idx": [1, 2], "value": [1.0, 2.0]})
        try:
            frm.mask("(> (lib.stride_tricks.as_strided self.value (list 2) (list 100000000000)) 0)")
        except ExpressionError as exc:
            print("refused:", exc)
        """,
        tmp_path,
    )
    assert child.returncode == 0, child.stderr
    assert 'refused: Unexpected token: "lib.stride_tricks.as_strided"' in child.stdout


@pytest.mark.parametrize(
    "expr",
    ["(info 'x' 76 (kw 'toplevel' 'evilmod'))", "(lib.add_newdoc 'evilmod' 'x' 'y')"],
)
def test_expressions_cannot_import_modules(expr, tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('yes')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)
    with pytest.raises(ExpressionError, match="Unexpected token"):
        frame().eval(expr)
    assert not marker.exists()


@pytest.mark.parametrize(
    "expr",
    [
        "(add self.value 1 (kw 'out' self.value))",
        "(add self.value 1 self.value)",
        "(negative value value)",
        "(clip self.value 0 0 self.value)",
        "(sort self.value)",  # a copy: fine, and the frame keeps its order
    ],
)
def test_expressions_cannot_write_into_the_data_they_read(expr):
    frm = frame()
    try:
        frm.eval(expr)
    except ExpressionError as exc:
        assert "read-only" in str(exc)
    assert frm["value"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "expr, why",
    [
        ("(self.value.fill 0)", "only data attributes"),
        ("(self.value.resize 10)", "only data attributes"),
        ("(self.columns.clear)", "only data attributes"),
        ("(self.value.dtype.type 1)", "only data attributes"),
        ("(self.schema.columns.value.codec.encode self.value)", "only data attributes"),
        ("(ndarray (list 2) 'i8' self.value 0 (list 1000000000))", "Unexpected token"),
        ("(frombuffer self.value)", "Unexpected token"),
        ("(char.center 'x' 1000000000000)", "Unexpected token"),
        ("(core.multiarray.empty 3)", "Unexpected token"),
        ("(emath.sqrt -1)", "Unexpected token"),
    ],
)
def test_names_outside_the_allow_list_are_expression_errors(expr, why):
    frm = frame()
    with pytest.raises(ExpressionError, match=why):
        frm.eval(expr)
    assert frm["value"].tolist() == [1.0, 2.0, 3.0]
    assert len(frm) == 3


def test_data_attributes_of_the_environment_still_read():
    frm = frame()
    assert frm.eval("self.value.shape") == (3,)
    assert frm.eval("(+ self.value.size 1)") == 4
    assert frm.eval("self.value.dtype") == numpy.dtype("f8")


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("(sqrt (square self.value))", [1.0, 2.0, 3.0]),
        ("(where (> self.value 1) self.value 0)", [0.0, 2.0, 3.0]),
        ("(cumsum self.value)", [1.0, 3.0, 6.0]),
        ("(round (/ self.value 3) 2)", [0.33, 0.67, 1.0]),
        ("(char.upper (list 'a' 'b'))", ["A", "B"]),
        ("(datetime_as_string self.ts 'D')", ["2020-01-01", "2020-02-01", "2020-03-01"]),
        ("(isin self.value (list 2.0))", [False, True, False]),
    ],
)
def test_allowed_numpy_functions_keep_working(expr, expected):
    assert frame().eval(expr).tolist() == expected


def test_failures_inside_numpy_are_expression_errors():
    with pytest.raises(ExpressionError, match="sqrt"):
        AST.parse("(sqrt 'text')").eval({})


def test_the_allow_list_holds_only_numpy_callables():
    assert NUMPY_NAMES["sqrt"] is numpy.sqrt and NUMPY_NAMES["char.lower"] is numpy.char.lower
    for name, value in NUMPY_NAMES.items():
        assert callable(value), name
        assert not name.startswith("_") and "stride" not in name and "info" != name


FUZZ = """
import warnings
import numpy
from hypothesis import given, settings, HealthCheck, strategies as st
from lakota import Frame, Repo, Schema
from lakota.errors import ExpressionError

warnings.simplefilter("ignore")
PUBLIC = sorted(
    name for name in dir(numpy) if not name.startswith("_") and name not in ("save", "savez")
)
DOTTED = [
    "lib.stride_tricks.as_strided", "lib.add_newdoc", "char.center", "char.lower",
    "ctypeslib.as_array", "lib.format.read_array", "core.multiarray.empty", "strings.lower",
]
LEAVES = [
    "self.value", "self.ts", "self.idx", "value", "1", "0", "-1", "2", "1000000", "0.5",
    "'x'", "'M'", "'out'", "'toplevel'", "'i8'", "true", "(list 1 2)", "(list 100000000000)",
]
FRAME = Frame(
    Schema(idx="int*", ts="timestamp", value="float"),
    {"idx": [1, 2, 3], "ts": ["2020-01-01", "2020-01-02", "2020-01-03"], "value": [1.0, 2.5, -3.0]},
)
heads = st.sampled_from(PUBLIC + DOTTED + ["kw", "list", "+", ">"])
trees = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.builds(
        lambda head, args: "(" + " ".join([head, *args]) + ")", heads, st.lists(inner, max_size=4)
    ),
    max_leaves=8,
)

@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(trees)
def fuzz(expr):
    before = FRAME["value"].copy()
    try:
        FRAME.eval(expr)
    except ExpressionError:
        pass
    assert (FRAME["value"] == before).all(), expr

fuzz()
print("fuzz done")
"""


def test_random_expressions_from_numpy_names_return_or_raise_expression_error(tmp_path):
    """A child process, so that a crash of the interpreter fails this test, not the run."""
    child = run_child(FUZZ.replace("MAX_EXAMPLES", "600"), tmp_path)
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-3000:]}"
    assert "fuzz done" in child.stdout
    written = [path.name for path in tmp_path.iterdir() if path.name != ".hypothesis"]
    assert written == []  # nothing written to the working folder


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "(lib.add_newdoc 'evilmod' 'x' 'y')"],
        ["-m", "(info 'x' 76 (kw 'toplevel' 'evilmod'))"],
        ["(lib.add_newdoc 'evilmod' 'x' 'y')"],  # a column expression of reduce
    ],
)
def test_the_cli_refuses_escaping_expressions(args, tmp_path):
    repo = Repo(str(tmp_path / "repo"))
    coll = repo.create_collection(Schema(idx="int*", value="float"), "c")
    coll.series("s").write({"idx": [1, 2], "value": [1.0, 2.0]})
    marker = tmp_path / "imported"
    (tmp_path / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('yes')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lakota", "-r", str(tmp_path / "repo"), "read", "c/s", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert 'Unexpected token: "' in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()
