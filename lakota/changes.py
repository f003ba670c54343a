"""What each revision wrote: the log of a collection and its change feed.

```python
from lakota import Repo, Schema
clct = Repo().create_collection(Schema(k="int*", v="float"), "c")
(clct / "s").write({"k": [1, 2], "v": [1.0, 2.0]}, message="load")
(clct / "s").delete(2, 2)
[(e.message, e.touched["s"].rows) for e in clct.log()]   # [('', 0), ('load', 2)]
feed = list(clct.changes())                 # resume with since=feed[-1].revision
[(c.label, len(c.frame)) for c in feed]     # [('s', 2), ('s', 0)]: rows 1-2, then 2 deleted
```

A revision wrote the commit rows that its parents do not show: a data row is new
unless a parent row with the same digests covers its range (rows cut by later writes
keep their digests), a tombstone (deleted range) is new unless a parent tombstone
covers it. This needs the commits only, never the data files, except for the frames
of a change feed. Rewrites (defrag, the merging of small appends) write rows too:
their changes hold the same values again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .ancestry import History, Node
from .changelog import Revision
from .commit import Commit
from .frame import Frame
from .schema import EMPTY_DIGEST
from .utils import Closed

if TYPE_CHECKING:
    from .collection import Collection

__all__ = ["Change", "LogEntry", "Touched", "collection_changes", "collection_log"]


class Touched(NamedTuple):
    """What a revision wrote to one series: index range and rows written (0: a delete)."""

    start: tuple
    stop: tuple
    rows: int


class LogEntry(NamedTuple):
    """One revision of a collection's history, as `Collection.log` lists it."""

    revision: Revision
    author: str
    message: str
    meta: dict
    tags: list[str]
    date: datetime
    touched: dict[str, Touched]  # series label -> what the revision wrote to it


class Change(NamedTuple):
    """Rows a revision wrote to one series over ``[start, stop]`` (`closed` flags).

    Writing `frame` over that range (``series.write(frame, start, stop, closed)``)
    replays the change; an empty frame is a deleted range. `revision` is the revision
    to resume from (``since=``) once every change of it is handled: the revision itself,
    or the merge that brought it into the leaf's history; `origin` wrote the rows.
    """

    revision: Revision
    label: str
    start: tuple
    stop: tuple
    frame: Frame
    closed: str
    origin: Revision


class _Commits:
    """Decoded commits of one walk, by node."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._found: dict[int, Commit] = {}

    def get(self, node: Node) -> Commit:
        key = id(node)
        if key not in self._found:
            self._found[key] = self.collection._decode(node.revision)
        return self._found[key]


def written(commit: Commit, parents: list[Commit]) -> dict[str, list[list[int]]]:
    """Label → runs of consecutive positions of the rows `commit` wrote (module docstring).

    A label the parents have and `commit` lacks (a deleted series) maps to no runs.
    """
    found: dict[str, list[list[int]]] = {}
    labels = set(commit.labels())
    for label in sorted(labels | {lbl for parent in parents for lbl in parent.labels()}):
        if label not in labels:
            found[label] = []
            continue
        a, b = commit.label_range(label)
        old = [row for parent in parents for row in parent.match(label)]
        runs: list[list[int]] = []
        for pos in range(a, b):
            if _covered(commit.row(pos), old):
                continue
            if runs and runs[-1][-1] == pos - 1:
                runs[-1].append(pos)
            else:
                runs.append([pos])
        if runs:
            found[label] = runs
    return found


def _covered(row: Any, old: list) -> bool:
    tombstone = row.length == 0 or all(d == EMPTY_DIGEST for d in row.digest)
    for prev in old:
        same = prev.length == 0 if tombstone else prev.digest == row.digest
        if same and _contains(prev, row):
            return True
    return False


def _contains(outer: Any, inner: Any) -> bool:
    """True if the range of row `outer` includes that of row `inner` (closed flags too)."""
    left = outer.start < inner.start or (
        outer.start == inner.start and (outer.closed.left or not inner.closed.left)
    )
    right = inner.stop < outer.stop or (
        inner.stop == outer.stop and (outer.closed.right or not inner.closed.right)
    )
    return left and right


def _parents(commits: _Commits, node: Node) -> list[Commit]:
    return [commits.get(parent) for parent in node.parents]


def collection_log(
    collection: Collection, series: str | None = None, limit: int | None = None
) -> list[LogEntry]:
    """The revisions of the leaf's history, newest first, with what each one wrote."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
    leaf = collection.changelog.leaf()
    if leaf is None:
        return []
    history = History(collection.changelog.log())
    commits = _Commits(collection)
    entries = []
    for node, _ in reversed(history.line(history.node(leaf))):
        if limit is not None and len(entries) >= limit:
            break
        commit = commits.get(node)
        parents = _parents(commits, node)
        touched = _touched(commit, parents)
        if series is not None and series not in touched:
            continue
        rev = node.revision
        info = rev.info
        entries.append(
            LogEntry(
                rev, info["author"], info["message"], info["meta"], rev.tags, rev.date, touched
            )
        )
    return entries


def _touched(commit: Commit, parents: list[Commit]) -> dict[str, Touched]:
    found = {}
    for label, runs in written(commit, parents).items():
        if not runs:  # the whole series was deleted
            rows = [row for parent in parents for row in parent.match(label)]
            found[label] = Touched(min(r.start for r in rows), max(r.stop for r in rows), 0)
            continue
        positions = [pos for run in runs for pos in run]
        rows = [commit.row(pos) for pos in positions]
        found[label] = Touched(
            min(r.start for r in rows), max(r.stop for r in rows), sum(r.length for r in rows)
        )
    return found


def collection_changes(
    collection: Collection, since: Any = None, until: Any = None
) -> Iterator[Change]:
    """Changes along the history of `until` (default: the leaf) not in that of `since`."""
    end = collection.revision(until)
    if end is None:
        return
    history = History(collection.changelog.log())
    done: set[Node] = set()
    last = history.node(end)
    if since is not None:
        done = history.ancestry(history.node(collection.revision(since)))
        if until is None:
            last = _follow(collection, history, done, last)
    commits = _Commits(collection)
    for node, arrival in history.line(last):
        if node in done:
            continue
        commit = commits.get(node)
        parents = _parents(commits, node)
        for label, runs in written(commit, parents).items():
            if not runs:
                rows = [row for parent in parents for row in parent.match(label)]
                yield Change(
                    arrival.revision,
                    label,
                    min(r.start for r in rows),
                    max(r.stop for r in rows),
                    Frame(collection.schema),
                    "b",
                    node.revision,
                )
                continue
            for run in runs:
                yield _change(collection, commit, label, run, arrival, node)


def _follow(collection: Collection, history: History, done: set[Node], leaf: Node) -> Node:
    """The leaf, or if it does not descend from what was handled (`done`), the newest head
    that does: a feed stays on its branch until a merge brings the others in, so that
    `since` always stands for everything handled."""
    if done <= history.ancestry(leaf):
        return leaf
    for head in reversed(collection.changelog.leafs()):
        node = history.node(head)
        if done <= history.ancestry(node):
            return node
    return max(done)


def _change(
    collection: Collection, commit: Commit, label: str, run: list[int], arrival: Node, node: Node
) -> Change:
    first, last = commit.row(run[0]), commit.row(run[-1])
    part = commit.take(list(run))
    frame = Frame.from_segments(collection.schema, part.segments(label, collection.pod))
    closed = Closed.NONE.set_left(first.closed.left).set_right(last.closed.right)
    return Change(
        arrival.revision, label, first.start, last.stop, frame, closed.short, node.revision
    )
