"""The ``lakota`` command line (also ``python -m lakota``), see SPEC §4.

```sh
lakota create temperature "timestamp timestamp*" "value float"
lakota write temperature/Brussels < brussels.csv
lakota read temp/Bru --gt 2020-06-01 --lt 2020-07-01      # unique prefixes resolve
lakota push file:///backup/lakota
```

Global options come before the subcommand: ``-r/--repo`` (repeatable: several URIs
make a cache chain, the first one local), ``-t/--timing``, ``-P/--pretty`` and
``-v/--verbose``. The repository defaults to ``$LAKOTA_REPO``, else the folder
``.lakota`` in the current directory.

Errors a user can fix (unknown collection, bad date or schema, missing repository...)
print one line on stderr and exit with status 1; wrong usage (unknown option, missing
argument) exits with status 2. Output is CSV by default, a table with ``-P`` and JSON
with ``--json`` for ``read`` and ``ls``; progress bars and colours only show on a
terminal.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, BinaryIO, NoReturn

import click
import numpy

from lakota import __version__
from lakota.collection import Collection
from lakota.errors import LakotaError
from lakota.frame import Frame
from lakota.pod import POD, CachePOD, FilePOD, MemPOD
from lakota.repo import Repo
from lakota.schema import Schema
from lakota.series import Series
from lakota.utils import logger

DEFAULT_REPO = ".lakota"
_HEXTIME = re.compile(r"^[0-9a-f]{11}$")
_CLOSED = {"l": "l", "left": "l", "r": "r", "right": "r", "b": "b", "both": "b", "n": "n",
           "none": "n"}
# Errors whose message is enough for a user: printed on one line, status 1
USER_ERRORS = (LakotaError, ValueError, KeyError, OSError)


class UserError(click.ClickException):
    """A mistake the user can fix: one line on stderr, exit status 1."""


def fail(message: str) -> NoReturn:
    raise UserError(message)


# --- repository and names -----------------------------------------------------------------


class Session:
    """What the global options decided, and the repository opened on first use."""

    def __init__(self, uris: tuple[str, ...], pretty: bool, verbose: int) -> None:
        env = os.environ.get("LAKOTA_REPO", "").strip()
        self.uris = list(uris) or [env or DEFAULT_REPO]
        self.pretty = pretty
        self.verbose = verbose
        self._repo: Repo | None = None

    @property
    def label(self) -> str:
        return " ".join(self.uris)

    def repo(self, must_exist: bool = True) -> Repo:
        """The repository; `must_exist` refuses a local folder that is not there yet."""
        if self._repo is None:
            self._repo = Repo(self.uris)  # several URIs: a cache chain
        if must_exist and not pod_exists(self._repo.pod):
            fail(
                f"Repository {self.label} not found "
                "(use -r/--repo or LAKOTA_REPO, or create a collection to start one)"
            )
        return self._repo


def pod_exists(pod: POD) -> bool:
    """False for a local folder that does not exist; remote storages are assumed to."""
    if isinstance(pod, CachePOD):
        return pod_exists(pod.remote)
    if isinstance(pod, FilePOD):
        return pod.path.is_dir()
    return True


def open_remote(uri: str, must_exist: bool) -> Repo:
    remote = Repo(uri)
    if must_exist and not pod_exists(remote.pod):
        fail(f"Repository {uri} not found")
    return remote


def resolve(name: str, labels: Iterable[str], kind: str, context: str = "") -> str:
    """`name` itself, or the one label it is a prefix of (SPEC §4 name resolution)."""
    labels = list(labels)
    if name in labels:
        return name
    matches = [label for label in labels if label.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        fail(f"{kind} {context}{name} not found")
    fail(f"{kind} {context}{name} is ambiguous: {', '.join(matches)}")


def get_collection(repo: Repo, name: str) -> Collection:
    """An existing collection, resolved by unique prefix."""
    label = resolve(name, repo.ls(), "Collection")
    clct = repo.collection(label)
    if clct is None:  # deleted in between
        fail(f"Collection {name} not found")
    return clct


def split_series_path(path: str) -> tuple[str, str | None]:
    """``"coll/series"`` → ``("coll", "series")``; ``"coll"`` → ``("coll", None)``."""
    collection, sep, series = path.partition("/")
    if not collection or (sep and not series):
        fail(f"Invalid name {path!r}: expected COLLECTION or COLLECTION/SERIES")
    return collection, series if sep else None


def get_series(repo: Repo, path: str) -> Series:
    """An existing series, both parts resolved by unique prefix."""
    clct_name, series_name = split_series_path(path)
    if series_name is None:
        fail(f"Expected COLLECTION/SERIES, got {path!r}")
    clct = get_collection(repo, clct_name)
    return clct.series(resolve(series_name, clct.ls(), "Series", f"{clct.label}/"))


# --- parsing ------------------------------------------------------------------------------


def parse_before(text: str | None) -> str | datetime | None:
    """An ISO date or datetime, or a revision epoch (11 hex digits, as `rev` shows)."""
    if text is None:
        return None
    if _HEXTIME.match(text):
        return text
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        fail(f"Invalid date {text!r}: expected an ISO date such as 2020-01-31 or 2020-01-31T12:00")


def parse_closed(text: str) -> str:
    try:
        return _CLOSED[text.lower()]
    except KeyError:
        fail(f"Invalid value {text!r} for --closed: use LEFT, RIGHT, BOTH, NONE (or l, r, b, n)")


def parse_column_defs(defs: tuple[str, ...]) -> Schema:
    """``("timestamp timestamp*", "value float")`` → a Schema."""
    columns: dict[str, str] = {}
    for text in defs:
        parts = text.strip().split(None, 1)
        if len(parts) != 2:
            fail(f"Invalid column definition {text!r}: expected 'NAME TYPE', e.g. 'value float'")
        name, definition = parts
        if name in columns:
            fail(f"Column {name!r} is defined twice")
        columns[name] = definition
    return Schema(**columns)


# --- output -------------------------------------------------------------------------------


def text_values(arr: numpy.ndarray) -> list[str]:
    """Column values as text: numpy's own formatting (2020-06-22T00:00:00, 25.0)."""
    if arr.dtype.kind == "O":
        return [str(value) for value in arr]
    return arr.astype(str).tolist()


def json_values(arr: numpy.ndarray) -> list[Any]:
    """Column values for JSON: numbers stay numbers (NaN is null), dates are ISO text."""
    if arr.dtype.kind in "mM":
        return arr.astype(str).tolist()
    if arr.dtype.kind == "f":
        return [None if math.isnan(value) else value for value in arr.tolist()]
    return arr.tolist()


def stdout_console() -> Any:
    from rich.console import Console

    # Off a terminal, do not squeeze or cut tables to 80 columns
    return Console(width=None if sys.stdout.isatty() else 10_000, soft_wrap=False)


def print_table(headers: list[str], rows: list[list[str]], pretty: bool) -> None:
    """A rich table with -P, else columns aligned with spaces."""
    if pretty:
        from rich.table import Table
        from rich.text import Text

        table = Table()
        for header in headers:  # Text: "[...]" in a value is not markup
            table.add_column(Text(header))
        for row in rows:
            table.add_row(*map(Text, row))
        stdout_console().print(table)
        return
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


class FrameWriter:
    """Writes frames as CSV (header once), tables or one JSON array."""

    def __init__(self, fmt: str, names: list[str]) -> None:
        self.fmt = fmt
        self.default_names = names
        self.started = False
        self.csv = csv.writer(sys.stdout, lineterminator="\n")

    def write(self, names: list[str], columns: list[numpy.ndarray]) -> None:
        if self.fmt == "json":
            self._json_rows(names, columns)
        elif self.fmt == "pretty":
            rows = list(zip(*(text_values(arr) for arr in columns)))
            print_table(names, [list(row) for row in rows], pretty=True)
        else:
            if not self.started:
                self.csv.writerow(names)
            self.csv.writerows(zip(*(text_values(arr) for arr in columns)))
        self.started = True

    def _json_rows(self, names: list[str], columns: list[numpy.ndarray]) -> None:
        for row in zip(*(json_values(arr) for arr in columns)):
            sys.stdout.write("[\n" if not self.started else ",\n")
            sys.stdout.write(json.dumps(dict(zip(names, row)), default=str))
            self.started = True

    def close(self) -> None:
        if self.fmt == "json":
            sys.stdout.write("\n]\n" if self.started else "[]\n")
        elif not self.started:
            self.write(self.default_names, [numpy.empty(0) for _ in self.default_names])


def output_format(json_flag: bool, pretty: bool, session: Session) -> str:
    """The command's own --json or -P wins over the global -P."""
    if json_flag and pretty:
        fail("--json and --pretty cannot be combined")
    return "json" if json_flag else "pretty" if pretty or session.pretty else "csv"


def print_labels(header: str, labels: list[str], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(labels))
    elif fmt == "pretty":
        print_table([header], [[label] for label in labels], pretty=True)
    else:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([header])
        writer.writerows([label] for label in labels)


# --- progress -----------------------------------------------------------------------------


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (a spinner when `total` is None), only on a terminal.

    Yields a function that advances the bar by one step.
    """
    from rich.console import Console
    from rich.progress import Progress

    with Progress(
        console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


# --- the command group --------------------------------------------------------------------


class PipeClosed(Exception):
    """The reader of our output went away (``lakota read ... | head``)."""


class LakotaGroup(click.Group):
    """Lists the commands in definition order and knows the aliases."""

    aliases = {"del": "delete", "length": "len"}

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # before click turns it into exit status 1
            raise PipeClosed() from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(name, name))


@click.group(cls=LakotaGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-r", "--repo", "uris", multiple=True, metavar="URI",
              help="Repository URI; several make a cache chain (the first one local). "
              "Default: $LAKOTA_REPO, else ./.lakota")
@click.option("-t", "--timing", is_flag=True, help="Print the run time on stderr.")
@click.option("-P", "--pretty", is_flag=True, help="Tables instead of CSV.")
@click.option("-v", "--verbose", count=True, help="-v logs INFO, -vv logs every storage call.")
@click.pass_context
def cli(ctx: click.Context, uris: tuple[str, ...], timing: bool, pretty: bool,
        verbose: int) -> None:
    """Lakota: versioned columnar storage for numerical and time series."""
    if verbose:
        logging.basicConfig(format="%(levelname)s:%(asctime).19s: %(message)s")
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    ctx.obj = Session(uris, pretty, verbose)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        return
    if timing:
        started = time.perf_counter()
        name = ctx.invoked_subcommand
        ctx.call_on_close(lambda: click.echo(
            f"Timing ({name}): {si_seconds(time.perf_counter() - started)}", err=True))


def si_seconds(seconds: float) -> str:
    """``0.0123`` → ``"12.3ms"``."""
    for factor, prefix in ((1, ""), (1e3, "m"), (1e6, "µ")):
        if seconds * factor >= 1:
            return f"{seconds * factor:.3g}{prefix}s"
    return f"{seconds * 1e9:.3g}ns"


pass_session = click.pass_obj


@cli.command()
@click.argument("label")
@click.argument("columns", nargs=-1, required=True)
@pass_session
def create(session: Session, label: str, columns: tuple[str, ...]) -> None:
    """Create a collection: each COLUMN is "NAME TYPE", e.g. "timestamp timestamp*".

    TYPE is timestamp, date, float, int, str or a numpy dtype; a `*` marks the index
    columns, `| codec…` picks the codecs: "name str* | zstd".
    """
    schema = parse_column_defs(columns)
    session.repo(must_exist=False).create_collection(schema, label)


@cli.command()
@click.argument("path", metavar="COLLECTION/SERIES")
@click.option("-f", "--file", "stream", type=click.File("rb"), default="-",
              help="CSV (or .parquet) file to read (default: standard input).")
@pass_session
def write(session: Session, path: str, stream: BinaryIO) -> None:
    """Write CSV rows (first line: the column names, rows sorted) to a series.

    Cells are read as `lakota export` writes them (dates in ISO format, booleans
    True/False). The collection must exist (a unique prefix is enough); the series is
    created if needed and is named exactly as given.
    """
    clct_name, series_name = split_series_path(path)
    if series_name is None:
        fail(f"Expected COLLECTION/SERIES, got {path!r}")
    clct = get_collection(session.repo(), clct_name)
    frame = read_frame(stream, clct.schema)
    if frame.empty:
        click.echo("Nothing to write: the input has no rows", err=True)
        return
    clct.series(series_name).write(frame)


def read_frame(stream: BinaryIO, schema: Schema) -> Frame:
    """The rows of a CSV (or parquet) stream, parsed and checked like `lakota import`."""
    from lakota.io import read_series

    source = getattr(stream, "name", "")
    stem = "stdin" if stream in (sys.stdin, sys.stdin.buffer) else "input"
    name = f"{stem}.parquet" if str(source).lower().endswith(".parquet") else f"{stem}.csv"
    pod = MemPOD()
    pod.write(name, stream.read())
    return read_series(pod, schema, name)[1]


@cli.command()
@click.argument("path", metavar="COLLECTION/SERIES")
@click.argument("columns", nargs=-1)
@click.option("-l", "--limit", type=click.IntRange(min=0), help="At most N rows.")
@click.option("-o", "--offset", type=click.IntRange(min=0), help="Skip the first N rows.")
@click.option("-p", "--paginate", type=click.IntRange(min=1), help="Read N rows at a time.")
@click.option("-t", "--tail", type=click.IntRange(min=1), help="The last N rows.")
@click.option("-B", "--before", help="Read the series as it was before this date or epoch.")
@click.option("-m", "--mask", help="Keep the rows where this s-expression is true.")
@click.option("--gt", "--greater-than", "start", multiple=True,
              help="Start bound, one per index column.")
@click.option("--lt", "--less-than", "stop", multiple=True,
              help="Stop bound, one per index column.")
@click.option("-c", "--closed", default="LEFT", show_default=True,
              help="Included bounds: LEFT, RIGHT, BOTH or NONE (l, r, b, n).")
@click.option("-P", "--pretty", is_flag=True, help="Tables instead of CSV.")
@click.option("--json", "json_flag", is_flag=True, help="One JSON array of row objects.")
@pass_session
def read(session: Session, path: str, columns: tuple[str, ...], limit: int | None,
         offset: int | None, paginate: int | None, tail: int | None, before: str | None,
         mask: str | None, start: tuple[str, ...], stop: tuple[str, ...], closed: str,
         pretty: bool, json_flag: bool) -> None:
    """Print rows of a series; COLUMNS select columns or, with "(...)", reduce.

    Example: lakota read temp/Bru "(floor self.timestamp 'M')" "(max self.value)"
    """
    if tail is not None and paginate is not None:
        fail("--tail and --paginate cannot be combined")
    fmt = output_format(json_flag, pretty, session)
    series = get_series(session.repo(), path)
    reduce = any("(" in column for column in columns)
    unknown = [c for c in columns if not reduce and c not in series.schema]
    if unknown:
        fail(f"Unknown column(s) {', '.join(unknown)} in {series.collection.label}")
    whole = reduce or mask is not None or not columns
    query = {
        "start": start or None,
        "stop": stop or None,
        "before": parse_before(before),
        "closed": parse_closed(closed),
        "limit": limit,
        "offset": offset,
        "select": None if whole else list(columns),
    }
    if tail is not None:
        frames: Iterable[Frame] = [series.tail(tail, **query)]
    elif paginate is not None:
        frames = series.paginate(paginate, **query)
    else:
        frames = [series.frame(**query)]
    writer = FrameWriter(fmt, list(columns) or list(series.schema))
    for frm in frames:
        if mask is not None and not frm.empty:
            frm = frm.mask(mask)
        if frm.empty:
            continue
        if reduce:
            frm = frm.reduce(**{column: column for column in columns})
        names = list(frm.columns) if reduce or not columns else list(columns)
        writer.write(names, [frm[name] for name in names])
    writer.close()


@cli.command()
@click.argument("collection", required=False)
@click.option("-P", "--pretty", is_flag=True, help="A table instead of CSV.")
@click.option("--json", "json_flag", is_flag=True, help="A JSON array.")
@pass_session
def ls(session: Session, collection: str | None, pretty: bool, json_flag: bool) -> None:
    """List the collections, or the series of COLLECTION."""
    fmt = output_format(json_flag, pretty, session)
    repo = session.repo()
    if collection is None:
        print_labels("collection", repo.ls(), fmt)
    else:
        print_labels("series", get_collection(repo, collection).ls(), fmt)


@cli.command(name="len")
@click.argument("path", metavar="COLLECTION[/SERIES]")
@pass_session
def length(session: Session, path: str) -> None:
    """Number of rows of a series, or of all the series of a collection (alias: length)."""
    repo = session.repo()
    if split_series_path(path)[1] is None:
        click.echo(sum(len(series) for series in get_collection(repo, path)))
    else:
        click.echo(len(get_series(repo, path)))


@cli.command()
@click.argument("path", metavar="[COLLECTION[/SERIES]]", required=False)
@click.option("-e", "--extended", count=True,
              help="-e lists the segments of each revision, -ee adds their digests.")
@pass_session
def rev(session: Session, path: str | None, extended: int) -> None:
    """Show the revisions of a collection (of the registry without argument)."""
    repo = session.repo()
    series_label = None
    if path is None:
        clct = repo.registry
    else:
        clct_name, series_name = split_series_path(path)
        clct = get_collection(repo, clct_name)
        if series_name is not None:
            series_label = resolve(series_name, clct.ls(), "Series", f"{clct.label}/")
    for revision in clct.changelog.log():
        commit = revision.commit(clct)
        rows = [row for row in (commit.row(pos) for pos in range(len(commit)))
                if series_label is None or row.label == series_label]
        stamp = datetime.fromtimestamp(int(revision.epoch, 16) / 1000)
        click.echo()
        click.echo(f"Revision: {revision.path}{'*' if revision.is_leaf else ''}")
        click.echo(f"Date: {stamp.isoformat(' ', 'milliseconds')}")
        click.echo(f"Total length: {sum(row.length for row in rows)}")
        if extended:
            print_segments(rows, extended > 1, session.pretty)


def print_segments(rows: list, digests: bool, pretty: bool) -> None:
    headers = ["label", "start", "stop", "length", "closed"] + (["digests"] if digests else [])
    table = []
    for row in rows:
        cells = [row.label, bound_text(row.start), bound_text(row.stop), str(row.length),
                 row.closed.short]
        table.append(cells + ([" / ".join(row.digest)] if digests else []))
    print_table(headers, table, pretty)


def bound_text(bound: tuple) -> str:
    return ", ".join(str(value) for value in bound)


# --- version control: tags, log, diff, change feed, restore ------------------------------


def parse_at(clct: Collection, text: str) -> Any:
    """A tag or revision id as it is; otherwise an ISO date or datetime (inclusive)."""
    if text in {tag.name for tag in clct.tags()}:
        return text
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return text


def target(repo: Repo, path: str) -> tuple[Collection, str | None]:
    """The collection of COLLECTION[/SERIES] and the series label (resolved), if any."""
    clct_name, series_name = split_series_path(path)
    clct = get_collection(repo, clct_name)
    if series_name is None:
        return clct, None
    return clct, resolve(series_name, clct.ls(), "Series", f"{clct.label}/")


def short(revision: Any) -> str:
    """A revision as `log` shows it: its child id (epoch-digest)."""
    return revision.child if revision is not None else ""


def pretty_wanted(session: Session) -> bool:
    return session.pretty or sys.stdout.isatty()


@cli.command()
@click.argument("collection")
@click.argument("name", required=False)
@click.option("--at", "at", help="Revision to tag (tag, revision id or prefix, ISO date); "
              "default: the latest.")
@click.option("-m", "--message", help="Why this tag.")
@click.option("-f", "--force", is_flag=True, help="Move the tag if the name is taken.")
@click.option("-d", "--delete", "remove", is_flag=True, help="Remove the tag NAME.")
@pass_session
def tag(session: Session, collection: str, name: str | None, at: str | None,
        message: str | None, force: bool, remove: bool) -> None:
    """Tag a revision of COLLECTION as NAME, or list its tags without NAME.

    COLLECTION "/" tags every collection at its latest revision (a repository tag).
    """
    repo = session.repo()
    if collection == "/":
        if name is None:
            rows = [[t.name, ", ".join(sorted(t.revisions)), t.author, t.message,
                     hextime_text(t.epoch)] for t in repo.tags()]
            print_table(["tag", "collections", "author", "message", "date"], rows,
                        pretty_wanted(session))
        elif remove:
            repo.untag(name)
        else:
            repo.tag(name, message=message, force=force)
        return
    clct = get_collection(repo, collection)
    if name is None:
        rows = [[t.name, short(t.revision), t.author, t.message, hextime_text(t.epoch)]
                for t in clct.tags()]
        print_table(["tag", "revision", "author", "message", "date"], rows,
                    pretty_wanted(session))
    elif remove:
        clct.untag(name)
    else:
        clct.tag(name, at=parse_at(clct, at) if at else None, message=message, force=force)


def hextime_text(stamp: str) -> str:
    return datetime.fromtimestamp(int(stamp, 16) / 1000).isoformat(" ", "seconds")


@cli.command()
@click.argument("path", metavar="COLLECTION[/SERIES]")
@click.option("-n", "--limit", type=click.IntRange(min=0), help="Show at most N revisions.")
@pass_session
def log(session: Session, path: str, limit: int | None) -> None:
    """History of a collection (or of one series), newest first: who, why, what.

    A table on a terminal (or with -P), plain text when piped.
    """
    clct, series_label = target(session.repo(), path)
    entries = clct.log(series=series_label, limit=limit)
    if pretty_wanted(session):
        rows = [[short(e.revision), e.date.isoformat(" ", "seconds"), e.author, e.message,
                 ", ".join(e.tags), touched_text(e.touched)] for e in entries]
        print_table(["revision", "date", "author", "message", "tags", "series"], rows, True)
        return
    for entry in entries:
        tags = f" (tags: {', '.join(entry.tags)})" if entry.tags else ""
        click.echo(f"revision {short(entry.revision)}{tags}")
        click.echo(f"Author: {entry.author}")
        click.echo(f"Date:   {entry.date.isoformat(' ', 'milliseconds')}")
        if entry.message:
            click.echo(f"\n    {entry.message}")
        for label, what in entry.touched.items():
            click.echo(f"    {label}: {what.rows} row(s) over {bound_text(what.start)} .. "
                       f"{bound_text(what.stop)}")
        click.echo()


def touched_text(touched: dict) -> str:
    return "; ".join(f"{label}: {what.rows}" for label, what in touched.items())


@cli.command()
@click.argument("path", metavar="COLLECTION[/SERIES]")
@click.argument("a")
@click.argument("b", required=False)
@click.option("--rows", is_flag=True, help="Print the rows as CSV with a leading change "
              "column: + added, - removed, ~ changed (new values).")
@pass_session
def diff(session: Session, path: str, a: str, b: str | None, rows: bool) -> None:
    """What changed from A to B (default: the latest): tags, revision ids or ISO dates."""
    clct, series_label = target(session.repo(), path)
    old, new = parse_at(clct, a), parse_at(clct, b) if b else None
    found = [d for d in clct.diff(old, new) if series_label in (None, d.label)]
    if not rows:
        table = [[d.label, d.status, bound_text(d.start), bound_text(d.stop), str(d.added),
                  str(d.removed), str(d.changed)] for d in found]
        print_table(["series", "status", "start", "stop", "added", "removed", "changed"],
                    table, session.pretty)
        return
    names = list(clct.schema)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["change", "series", *names])
    for summary in found:
        change = clct.series(summary.label).diff(old, new)
        changed = {n: change.changed[n if n in clct.schema.idx else f"{n}_b"] for n in names}
        for mark, columns in (("-", change.removed.columns), ("+", change.added.columns),
                              ("~", changed)):
            values = [text_values(numpy.asarray(columns[n])) for n in names]
            writer.writerows([mark, summary.label, *row] for row in zip(*values))


@cli.command()
@click.argument("collection")
@click.option("-s", "--since", help="Last revision handled (as printed); default: the start.")
@click.option("-u", "--until", help="Stop at this revision (default: the latest).")
@click.option("--rows", is_flag=True, help="Print the rows of each change as CSV.")
@pass_session
def changes(session: Session, collection: str, since: str | None, until: str | None,
            rows: bool) -> None:
    """The change feed: what each revision wrote, in commit order.

    Resume with --since set to the revision of the last change handled.
    """
    clct = get_collection(session.repo(), collection)
    feed = clct.changes(since=parse_at(clct, since) if since else None,
                        until=parse_at(clct, until) if until else None)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    names = list(clct.schema)
    if rows:
        writer.writerow(["revision", "series", *names])
    else:
        writer.writerow(["revision", "series", "start", "stop", "closed", "rows"])
    for change in feed:
        if not rows:
            writer.writerow([change.revision.child, change.label, bound_text(change.start),
                             bound_text(change.stop), change.closed, len(change.frame)])
            continue
        values = [text_values(change.frame[n]) for n in names]
        writer.writerows([change.revision.child, change.label, *row] for row in zip(*values))


@cli.command()
@click.argument("path", metavar="COLLECTION[/SERIES]")
@click.argument("at")
@click.option("-m", "--message", help="Why (default: what was restored).")
@pass_session
def restore(session: Session, path: str, at: str, message: str | None) -> None:
    """Write the state at AT (tag, revision id or ISO date) as a new revision."""
    clct, series_label = target(session.repo(), path)
    labels = None if series_label is None else [series_label]
    revisions = clct.restore(parse_at(clct, at), labels=labels, message=message)
    click.echo(f"{path}: " + ("restored" if revisions else "already in that state"))


@cli.command()
@click.argument("path", metavar="COLLECTION[/SERIES]")
@pass_session
def delete(session: Session, path: str) -> None:
    """Delete a collection, or one series of it (alias: del). Names must be exact."""
    repo = session.repo()
    clct_name, series_name = split_series_path(path)
    if clct_name not in repo.ls():
        fail(f"Collection {clct_name} not found")
    if series_name is None:
        repo.delete(clct_name)
        return
    clct = repo.collection(clct_name)
    if series_name not in clct.ls():
        fail(f"Series {path} not found")
    clct.delete(series_name)


@cli.command()
@click.argument("collection", required=False)
@pass_session
def merge(session: Session, collection: str | None) -> None:
    """Merge the branches of a collection (of the registry without argument)."""
    repo = session.repo()
    target = repo.registry if collection is None else get_collection(repo, collection)
    revisions = repo.merge() if collection is None else target.merge()
    click.echo(f"{target.label}: " + (f"merged, {len(revisions)} revision(s) written"
                                       if revisions else "nothing to merge"))


def selected(repo: Repo, labels: tuple[str, ...], everything: bool) -> list[Collection]:
    """The collections named (by prefix), all of them plus the registry, or the registry."""
    if everything:
        return [*repo.search(), repo.registry]
    if not labels:
        return [repo.registry]
    return [get_collection(repo, label) for label in labels]


@cli.command()
@click.argument("labels", nargs=-1)
@click.option("-a", "--all", "everything", is_flag=True, help="Every collection and the registry.")
@pass_session
def defrag(session: Session, labels: tuple[str, ...], everything: bool) -> None:
    """Rewrite series made of many small segments (default: the registry only)."""
    targets = selected(session.repo(), labels, everything)
    with progress("Defrag", len(targets)) as advance:
        for clct in targets:
            revisions = clct.defrag()
            click.echo(f"{clct.label}: " + ("defragmented" if revisions else "nothing to do"))
            advance()


@cli.command()
@click.argument("labels", nargs=-1)
@click.option("-b", "--before", help="Delete revisions older than this date "
              "(default: now minus twice the GC timeout).")
@click.option("-k", "--keep-last", type=click.IntRange(min=0),
              help="Keep the N newest revisions (alone: whatever their age).")
@click.option("-n", "--dry-run", is_flag=True, help="Only print what would be deleted.")
@click.option("-a", "--all", "everything", is_flag=True, help="Every collection and the registry.")
@pass_session
def trim(session: Session, labels: tuple[str, ...], before: str | None, keep_last: int | None,
         dry_run: bool, everything: bool) -> None:
    """Delete old revisions (history only, data stays); default: the registry only.

    Tagged revisions stay readable (tagging keeps a copy of them).
    """
    cutoff = parse_before(before)
    for clct in selected(session.repo(), labels, everything):
        result = clct.trim(before=cutoff, keep_last=keep_last, dry_run=dry_run)
        if dry_run:
            click.echo(f"{clct.label}: {len(result.files)} revision(s) would be deleted "
                       f"({result.bytes} bytes)")
        else:
            click.echo(f"{clct.label}: {result} revision(s) deleted")


def sync(local: Repo, remote: Repo, labels: tuple[str, ...], shallow: bool, push: bool) -> None:
    """Push or pull collections one at a time, with a progress bar."""
    source = local if push else remote
    names = [resolve(label, source.ls(), "Collection") for label in labels] or source.ls()
    with progress("Push" if push else "Pull", len(names)) as advance:
        for name in names:
            if push:
                local.push(remote, name, shallow=shallow)
            else:
                local.pull(remote, name, shallow=shallow)
            advance()


@cli.command()
@click.argument("remote", metavar="URI")
@click.argument("labels", nargs=-1)
@click.option("-s", "--shallow", is_flag=True, help="Only the latest revisions.")
@pass_session
def push(session: Session, remote: str, labels: tuple[str, ...], shallow: bool) -> None:
    """Send collections (default: all) to the repository at URI."""
    sync(session.repo(), open_remote(remote, must_exist=False), labels, shallow, push=True)


@cli.command()
@click.argument("remote", metavar="URI")
@click.argument("labels", nargs=-1)
@click.option("-s", "--shallow", is_flag=True, help="Only the latest revisions.")
@pass_session
def pull(session: Session, remote: str, labels: tuple[str, ...], shallow: bool) -> None:
    """Fetch collections (default: all) from the repository at URI."""
    sync(session.repo(must_exist=False), open_remote(remote, must_exist=True), labels, shallow,
         push=False)


@cli.command()
@click.option("-n", "--dry-run", is_flag=True, help="Only print what would be deleted.")
@pass_session
def gc(session: Session, dry_run: bool) -> None:
    """Delete the data files no revision uses (two phases, see `lakota help gc`).

    A first run renames unused files (soft delete); a later run deletes those
    older than the timeout (10 minutes by default).
    """
    with progress("Garbage collection", None):
        result = session.repo().gc(dry_run=dry_run)
    if dry_run:
        click.echo(f"{len(result.hard)} segments would be deleted")
        click.echo(f"{len(result.soft)} segments would be soft-deleted")
        click.echo(f"{result.bytes} bytes")
        return
    hard, soft = result
    click.echo(f"{hard} segments deleted")
    click.echo(f"{soft} segments soft-deleted")


@cli.command()
@pass_session
def check(session: Session) -> None:
    """Verify every revision and data file; print what is wrong (exit status 1 if any).

    Reads the whole history of every collection and checks each referenced data file
    against its digest, so it reads the whole repository.
    """
    with progress("Check", None):
        report = session.repo().check()
    for problem in report.problems:
        click.echo(str(problem))
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(report.summary())
    if not report.ok:
        fail(f"{len(report.problems)} problem(s) found")


@cli.command(name="export")
@click.argument("uri")
@click.option("-c", "--collection", "collections", multiple=True,
              help="Export only this collection (repeatable).")
@click.option("-T", "--file-type", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True)
@pass_session
def export_(session: Session, uri: str, collections: tuple[str, ...], file_type: str) -> None:
    """Write collections to URI as COLLECTION/SERIES.csv (or .parquet) files."""
    repo = session.repo()
    names = [resolve(name, repo.ls(), "Collection") for name in collections] or repo.ls()
    with progress("Export", len(names)) as advance:
        for name in names:
            repo.export_collections(uri, [name], file_type=file_type)
            advance()


@cli.command(name="import")
@click.argument("uri")
@click.option("-c", "--collection", "collections", multiple=True,
              help="Import only this collection (repeatable).")
@pass_session
def import_(session: Session, uri: str, collections: tuple[str, ...]) -> None:
    """Load collections from a folder written by `lakota export`."""
    if not pod_exists(POD.from_uri(uri)):
        fail(f"Folder {uri} not found")
    repo = session.repo(must_exist=False)
    if not collections:
        with progress("Import", None):
            repo.import_collections(uri)
        return
    with progress("Import", len(collections)) as advance:
        for name in collections:
            repo.import_collections(uri, [name])
            advance()


@cli.command()
@click.argument("repo_maps", nargs=-1, metavar='["NAME URI [URI...]"]...')
@click.option("-w", "--web-uri", default="http://127.0.0.1:8080", show_default=True,
              help="Where to listen: http(s)://HOST:PORT[/BASE].")
@click.option("--token", envvar="LAKOTA_TOKEN", help="Require 'Authorization: Bearer TOKEN' "
              "on every request (default: $LAKOTA_TOKEN).")
@click.option("--read-only", is_flag=True, help="Refuse write, rm and mv (403).")
@click.option("--allow-anonymous-writes", is_flag=True,
              help="Without a token, let anyone write, move and delete (unsafe).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also accept this Host name (repeatable; '*' accepts any).")
@click.option("--max-body-size", default="128M", show_default=True, metavar="SIZE",
              help="Largest request body (bytes, or with a K, M or G suffix); 413 past it.")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False),
              help="TLS certificate chain (PEM) for an https:// web URI.")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False),
              help="TLS private key (PEM) for an https:// web URI.")
@pass_session
def serve(session: Session, repo_maps: tuple[str, ...], web_uri: str, token: str | None,
          read_only: bool, allow_anonymous_writes: bool, allowed_hosts: tuple[str, ...],
          max_body_size: str, certfile: str | None, keyfile: str | None) -> None:
    """Serve repositories over HTTP (the POD protocol of HttpPOD).

    Each argument maps a name to a repository, e.g. "prices /srv/prices": clients open
    Repo("http://HOST:PORT/BASE/prices"). Several URIs make a cache chain. Without
    argument, the repository of -r/--repo is served at the base path. Clients give the
    token in the URI: http://HOST:PORT/prices?token=TOKEN.

    Without a token the server is read-only, unless --allow-anonymous-writes. Only
    requests naming this server in their Host header (the -w host, localhost, and
    --allowed-host names) and coming from no other web origin are served. Listening
    on another interface than loopback without a token prints a warning; use
    --certfile/--keyfile (or a TLS proxy) so that the token is not sent in clear.
    """
    try:
        from lakota import server
    except ImportError as exc:
        fail(f"lakota serve needs the server extra: pip install 'lakota[server]' ({exc})")
    maps = list(repo_maps) or ["/ " + " ".join(f'"{uri}"' for uri in session.uris)]
    server.serve(maps, web_uri, token=token or None, read_only=read_only,
                 verbose=session.verbose > 0, allow_anonymous_writes=allow_anonymous_writes,
                 allowed_hosts=allowed_hosts, max_body=parse_size(max_body_size),
                 certfile=certfile, keyfile=keyfile)


def parse_size(text: str) -> int:
    """``"128M"`` → 134217728: a byte count with an optional K, M or G (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size such as 1000000, 64K or 128M")
    return int(match[1]) * 1024 ** "_KMG".index(match[2].upper() or "_")


@cli.command()
@pass_session
def ui(session: Session) -> None:
    """Open the repository in the web browser (read-only, on a free port of 127.0.0.1)."""
    try:
        from lakota.server import Policy, build_app
        from lakota.web.launch import run_local
    except ImportError as exc:
        fail(f"lakota ui needs the server extra: pip install 'lakota[server]' ({exc})")
    app = build_app({"/": session.repo().pod}, policy=Policy(read_only=True))
    run_local(app, "/ui/repo?repo=%2F")


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@cli.command(name="help")
@click.argument("command", required=False)
@click.pass_context
def help_(ctx: click.Context, command: str | None) -> None:
    """Show the help of COMMAND (or of lakota)."""
    group = ctx.parent.command if ctx.parent else cli
    if command is None:
        click.echo(group.get_help(ctx.parent))
        return
    cmd = group.get_command(ctx, command)
    if cmd is None:
        fail(f"Unknown command {command!r}, see 'lakota help'")
    click.echo(cmd.get_help(click.Context(cmd, info_name=command, parent=ctx.parent)))


# --- entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 usage, 130 ^C)."""
    try:
        status = cli.main(args=argv, prog_name="lakota", standalone_mode=False)
        sys.stdout.flush()
        return status if isinstance(status, int) else 0
    except click.UsageError as exc:
        command = f"{exc.ctx.info_name} " if exc.ctx and exc.ctx.parent else ""
        hint = f" (see 'lakota {command}--help')"
        return report(f"{exc.format_message()}{hint}", exc.exit_code)
    except click.ClickException as exc:
        return report(exc.format_message(), exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        return 130
    except (BrokenPipeError, PipeClosed):
        # The reader went away: stop quietly, and drop what is still buffered
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except USER_ERRORS as exc:
        return report(error_text(exc), 1)
    except Exception as exc:
        if logger.getEffectiveLevel() <= logging.DEBUG:
            traceback.print_exc()
        return report(f"Internal error: {type(exc).__name__}: {error_text(exc)} "
                      "(run with -vv for the traceback)", 1)


def error_text(exc: BaseException) -> str:
    """One line: KeyError quotes its message, OSError may span lines."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        text = exc.args[0]
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def report(message: str, status: int) -> int:
    click.secho(f"Error: {message}", err=True, fg="red")
    return status
