"""Collections: series sharing one schema and one changelog.

Every write to any series of a collection makes one new revision of the whole
collection. `multi()` groups several writes into a single revision.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy

from . import refs
from .changelog import Changelog, Revision, phi
from .commit import Commit, read_to_copy
from .errors import InvalidLabelError, RevisionNotFoundError
from .revinfo import make_info
from .schema import EMPTY_DIGEST, Codec, Schema
from .series import KVSeries, Series
from .utils import (
    Background,
    compute_later,
    digest_path,
    encodable,
    pooled_map,
    settings,
)

if TYPE_CHECKING:
    from .repo import Repo

__all__ = ["Collection", "Batch"]

_commit_locks: dict[tuple, threading.RLock] = {}
_commit_locks_guard = threading.Lock()


def _commit_lock(collection: Collection) -> threading.RLock:
    """One lock per collection folder and storage, shared by every Collection object."""
    key = (id(collection.repo.pod), collection.path)
    with _commit_locks_guard:
        return _commit_locks.setdefault(key, threading.RLock())


class Batch:
    """Rows collected by `Collection.multi()`, committed as one revision by `flush()`.

    Pages of numeric series are staged (encoded, hashed) on the cores while the caller
    goes on, and their data files are written in the background: a batch of many small
    writes keeps every core and the storage busy. Reading the staged rows, or
    committing them, first waits for all of that.
    """

    STAGING_LIMIT = 64  # pages staged ahead at most: bounds the memory of their copies

    def __init__(
        self, collection: Collection, root: bool = False, info: dict | None = None
    ) -> None:
        self.collection = collection
        self.root = root
        self.info = info
        self.rows: list[dict | Future] = []  # a future gives the rows of staged pages
        self.revs: list[Revision] = []
        self.writes = Background()  # data files of the batch, awaited before committing
        self._staging: deque[Future] = deque()
        self._counts: Counter[str] = Counter()
        self._staged: tuple[Commit | None, int, Commit | None] | None = None

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self._counts[row["label"]] += 1

    def stage_later(self, series: Series, pages: list[tuple]) -> None:
        """Stage `pages` of `series` on the cores; their rows join the batch in order."""
        while len(self._staging) >= self.STAGING_LIMIT:
            self._staging.popleft().exception()
        while self._staging and self._staging[0].done():
            self._staging.popleft()
        owned = [(frame.copy(), *bounds) for frame, *bounds in pages]  # callers may reuse buffers
        future = compute_later(series.stage_pages, owned, self.writes)
        self._staging.append(future)
        self.rows.append(future)
        self._counts[series.label] += len(pages)

    def pending(self, label: str) -> int:
        """How many rows of `label` wait in this batch."""
        return self._counts[label]

    def settle(self) -> None:
        """Wait for the staging and the writes; rows from futures become plain rows.
        Raise the first error once everything has ended."""
        errors = [item.exception() for item in self.rows if isinstance(item, Future)]
        self._staging.clear()
        self.writes.wait()
        for error in errors:
            if error is not None:
                raise error
        rows: list[dict | Future] = []
        for item in self.rows:
            rows.extend(item.result() if isinstance(item, Future) else [item])
        self.rows = rows

    def staged(self, base: Commit | None) -> Commit | None:
        """`base` with the pending rows applied; rows applied before are not redone."""
        self.settle()
        if self._staged is None or self._staged[0] is not base:
            self._staged = (base, 0, base)
        _, done, commit = self._staged
        commit = _overlay(self.collection.schema, commit, self.rows[done:])
        self._staged = (base, len(self.rows), commit)
        return commit

    def flush(self) -> list[Revision]:
        self.settle()
        if self.rows:
            self.revs = self.collection.commit_rows(self.rows, root=self.root, info=self.info)
            self.rows = []
        return self.revs


class Collection:
    """A named group of series with one schema and one history."""

    def __init__(self, label: str, schema: Schema, path: str, repo: Repo) -> None:
        self.label = label
        self.schema = schema
        self.path = str(path)
        self.repo = repo
        self.pod = repo.pod
        self.changelog = Changelog(repo.pod.cd(self.path))
        self.changelog.tag_lookup = lambda rev: refs.tag_names(self, rev)
        self._local = threading.local()
        self._decoded: tuple[str, Commit] | None = None

    # Series access

    def series(self, label: str) -> Series:
        """The series `label` (nothing is read or written)."""
        if not isinstance(label, str):
            raise TypeError(f"Series label must be a string, not {type(label).__name__}")
        label = label.strip()
        if not label:
            raise InvalidLabelError("Invalid series label: empty")
        if "\x00" in label:
            raise InvalidLabelError(f"Invalid series label {label!r}: NUL character")
        if not encodable(label):  # it would fail only once the data files are written
            raise InvalidLabelError(f"Invalid series label {label!r}: not valid Unicode")
        cls = KVSeries if self.schema.kind == "kv" else Series
        return cls(label, self)

    def __truediv__(self, label: str) -> Series:
        return self.series(label)

    def ls(self, at: Any = None) -> list[str]:
        """Sorted labels of the series in the latest revision (or at `at`, see `commit`)."""
        commit = self.commit(at=at)
        return commit.labels() if commit is not None else []

    def __iter__(self) -> Iterator[Series]:
        return (self.series(label) for label in self.ls())

    def __contains__(self, label: str) -> bool:
        return label in self.ls()

    # Commits

    @property
    def batch(self) -> Batch | None:
        """The `multi()` batch of the current thread, if any."""
        return getattr(self._local, "batch", None)

    def commit(self, before: str | datetime | None = None, at: Any = None) -> Commit | None:
        """The commit of the leaf revision, or None for an empty history.

        `before` reads the leaf as it was strictly before that time; `at` reads the
        revision it names: a tag, a `Revision`, a revision id or a unique prefix (7+ hex
        digits) of its child digest, or a `datetime`/epoch (inclusive).
        """
        if at is not None and before is not None:
            raise ValueError("Give either before= or at=, not both")
        leaf = self.revision(at) if at is not None else self.changelog.leaf(before=before)
        if leaf is None:
            return None
        try:
            return self._decode(leaf)
        except FileNotFoundError as exc:
            raise RevisionNotFoundError(
                f"Revision {leaf.path} of collection {self.label!r} no longer exists"
            ) from exc

    def revision(self, at: Any = None) -> Revision | None:
        """The revision `at` names (default: the leaf); see `commit`."""
        return refs.resolve_at(self, at)

    def _decode(self, rev: Revision) -> Commit:
        cached = self._decoded
        if cached is not None and cached[0] == rev.child:
            return cached[1]
        commit = rev.commit(self)
        self._decoded = (rev.child, commit)
        return commit

    def apply(
        self, rows: list[dict], root: bool = False, info: dict | None = None
    ) -> list[Revision] | None:
        """Commit segment rows now as one revision, or queue them in the `multi()` batch."""
        batch = self.batch
        if batch is not None:
            for row in rows:
                batch.append(row)
            return None
        return self.commit_rows(rows, root=root, info=info)

    def revision_info(
        self,
        message: str | None = None,
        author: str | None = None,
        meta: dict | None = None,
        default_message: str | None = None,
    ) -> dict | None:
        """The metadata of the next revision (`lakota.revinfo.make_info`).

        Inside `multi()` the block makes the revision, so it alone takes metadata.
        """
        if self.batch is not None and (message is not None or author is not None or meta):
            raise ValueError("Inside multi(), give message, author and meta to multi() itself")
        return make_info(message, author, meta, None if self.batch else default_message)

    def writing(self) -> threading.RLock:
        """The lock that serializes this collection's read-modify-write cycles in-process."""
        return _commit_lock(self)

    def commit_rows(
        self, rows: list[dict], root: bool = False, info: dict | None = None
    ) -> list[Revision]:
        """Overlay `rows` on the leaf commit (or on nothing if `root`) as one revision."""
        with _commit_lock(self):
            leaf = None if root else self.changelog.leaf()
            base = self._decode(leaf) if leaf is not None else None
            commit = _overlay(self.schema, base, rows)
            parent = leaf.child if leaf is not None else phi
            return self._write_commit(commit, [parent], info, base)

    def staged(self) -> Commit | None:
        """The leaf commit with this thread's pending `multi()` rows applied.

        Read-modify-write operations (KV upserts, `Series.update`) read from it so that
        they build on the earlier writes of the same batch.
        """
        batch = self.batch
        if batch is None:
            return self.commit()
        return batch.staged(None if batch.root else self.commit())

    def staged_rows_bound(self, label: str) -> int:
        """At most how many rows `label` has in `staged()`, found without staging: its
        rows in the leaf plus two per pending row (a write may split a row in two)."""
        batch = self.batch
        base = None if batch is not None and batch.root else self.commit()
        first, end = base.label_range(label) if base is not None else (0, 0)
        return end - first + (2 * batch.pending(label) if batch is not None else 0)

    def _write_commit(
        self,
        commit: Commit,
        parents: list[str],
        info: dict | None = None,
        base: Commit | None = None,
    ) -> list[Revision]:
        """Write `commit` as a child of `parents`, unless its data is that of `base`.

        Without `info` the payload of unchanged data is the parent's own, which the
        changelog skips; with `info` the data is compared, as a message alone changes
        nothing.
        """
        if info and base is not None and commit == base:
            return []
        revisions = self.changelog.commit(commit.encode(info), parents=parents)
        if revisions:
            self._decoded = (revisions[-1].child, commit)
        return revisions

    @contextmanager
    def multi(
        self,
        root: bool | None = None,
        message: str | None = None,
        author: str | None = None,
        meta: dict | None = None,
    ) -> Iterator[Batch]:
        """Group the writes of this thread into one revision, made when the block exits.

        If the block raises, nothing is committed and the collection stays usable.
        Nested blocks join the outer batch (and cannot take metadata of their own).
        """
        info = self.revision_info(message, author, meta)
        outer = self.batch
        if outer is not None:
            yield outer
            return
        batch = Batch(self, root=bool(root), info=info)
        self._local.batch = batch
        try:
            yield batch
        except BaseException:
            with suppress(Exception):  # the block's error matters, not a write's
                batch.settle()
            raise
        finally:
            self._local.batch = None
        batch.flush()

    def refresh(self) -> None:
        self.changelog.refresh()

    # Changes to whole series

    def delete(self, *labels: str, message: str | None = None) -> list[Revision] | None:
        """Remove every row of these series in one revision."""
        info = self.revision_info(message)
        with _commit_lock(self):
            leaf = self.changelog.leaf()
            if leaf is None:
                return None
            commit = self._decode(leaf)
            remaining = commit.delete_labels(labels)
            if len(remaining) == len(commit):
                return []
            return self._write_commit(remaining, [leaf.child], info)

    def rename(self, from_label: str, to_label: str, message: str | None = None) -> list[Revision]:
        """Move a series to a new label (overlaying what the new label held)."""
        info = self.revision_info(message)
        to_label = self.series(to_label).label
        with _commit_lock(self):
            leaf = self.changelog.leaf()
            if leaf is None or from_label not in self._decode(leaf).labels():
                raise KeyError(f"Series {from_label!r} not found in collection {self.label!r}")
            commit = self._decode(leaf).rename_label(from_label, to_label)
            return self._write_commit(commit, [leaf.child], info)

    def clone(
        self,
        other: Collection,
        rename: dict | None = None,
        defaults: dict | None = None,
        message: str | None = None,
    ) -> list[Revision]:
        """Copy the latest revision into the empty collection `other` (same repository).

        Columns map by name (`rename` maps old names to new ones); columns of `other`
        that this collection lacks are filled with `defaults` (zero by default).
        Data files are shared, not copied.
        """
        if other.changelog.leaf() is not None:
            raise ValueError(f"Clone target {other.label!r} is not empty")
        if other.repo.pod is not self.repo.pod:
            raise ValueError("Clone target must be in the same repository")
        commit = self.commit()
        if commit is None:
            return []
        cloned = _clone_commit(commit, other.schema, rename or {}, defaults or {})
        return other._write_commit(cloned, [phi], other.revision_info(message))

    # Data stack

    def to_dask(
        self,
        labels: list[str] | None = None,
        start: Any = None,
        stop: Any = None,
        select: str | list[str] | None = None,
        before: str | datetime | None = None,
        **options: Any,
    ) -> Any:
        """A lazy `dask.dataframe.DataFrame` of these series (default: all), read on compute.

        Indexed by the first index column, with a ``label`` column; see `lakota.daskio`
        for the partitions, divisions and `options` (closed, label_column, partition_size).
        """
        from .daskio import collection_to_dask

        return collection_to_dask(self, labels, start, stop, select, before, **options)

    # Tags

    def tag(
        self, name: str, at: Any = None, message: str | None = None, force: bool = False
    ) -> refs.Tag:
        """Name the revision `at` (default: the leaf); an existing name needs `force`."""
        return refs.tag_collection(self, name, at, message, force)

    def untag(self, name: str) -> None:
        """Remove the tag `name` (`TagNotFoundError` if there is none)."""
        refs.untag_collection(self, name)

    def tags(self) -> list[refs.Tag]:
        """``Tag(name, revision, author, message, epoch)`` of every tag, sorted by name."""
        return refs.collection_tags(self)

    # Log, change feed

    def log(self, series: str | None = None, limit: int | None = None) -> list:
        """`LogEntry` of each revision of the leaf's history, newest first (`lakota.changes`).

        Each has the revision, author, message, meta, tags, date and, per series it
        touched, the index range and the number of rows written. `series` keeps the
        revisions that touched it; `limit` keeps the first ones.
        """
        from .changes import collection_log

        return collection_log(self, series, limit)

    def changes(self, since: Any = None, until: Any = None) -> Iterator:
        """`Change(revision, label, start, stop, frame, closed, origin)` of what each
        revision wrote, in commit order along the history of `until` (default: the leaf).

        Resume with ``since=change.revision`` once every change of that revision is
        handled: each change comes exactly once, also across merges.
        """
        from .changes import collection_changes

        return collection_changes(self, since, until)

    def diff(self, a: Any, b: Any = None) -> list:
        """`SeriesDiff(label, status, start, stop, added, removed, changed)` of each series
        that differs from the state at `a` to the state at `b` (default: the leaf)."""
        from .diff import collection_diff

        return collection_diff(self, a, b)

    def restore(
        self, at: Any, labels: list[str] | None = None, message: str | None = None
    ) -> list[Revision]:
        """A new revision whose series (default: all) equal their state at `at`."""
        from .restore import restore

        return restore(self, at, labels, message)

    # History

    def merge(self, *heads: Revision, message: str | None = None) -> list[Revision]:
        """Join concurrent branches into one revision; newer branches win where they overlap."""
        from .history import merge_heads

        return merge_heads(self, list(heads), message)

    def trim(
        self,
        before: str | datetime | None = None,
        keep_last: int | None = None,
        dry_run: bool = False,
    ) -> Any:
        """Delete revision files older than `before` and not among the `keep_last` newest.

        `before` defaults to now - 2 x settings.timeout unless only `keep_last` is given.
        Data stays reachable since every commit is a full snapshot. The newest revision
        and tagged revisions are always kept, and nothing is deleted while unmerged heads
        exist. Returns the number of files deleted, or with `dry_run` a `TrimPlan`
        (revisions, files, bytes) of what would go, deleting nothing.
        """
        from .retention import trim, trim_plan

        plan = trim_plan(self, before, keep_last, measure=dry_run)
        return plan if dry_run else trim(self, plan)

    def defrag(self, max_chunk: int | None = None, message: str | None = None) -> list[Revision]:
        """Rewrite series made of many small segments into page-sized segments."""
        from .history import defrag_collection

        max_chunk = settings.defrag_max_chunk if max_chunk is None else max_chunk
        if not isinstance(max_chunk, int) or max_chunk <= 0:
            raise ValueError(f"max_chunk must be a positive integer, got {max_chunk!r}")
        return defrag_collection(self, max_chunk, message)

    def squash(
        self, trim: Any = None, max_chunk: int | None = None, message: str | None = None
    ) -> list[Revision]:
        """Deprecated: `defrag(max_chunk)` then `trim(trim)` unless `trim` is False."""
        warnings.warn("squash is deprecated, use defrag and trim", DeprecationWarning, stacklevel=2)
        revisions = self.defrag(max_chunk, message=message)
        if trim is not False:
            self.trim(trim)
        return revisions

    def digests(self, revisions: list[Revision] | None = None) -> Iterator[str]:
        """Every non-embedded digest referenced by these revisions (default: all)."""
        yield from self._stored_files(revisions)

    def _stored_files(
        self, revisions: list[Revision] | None = None
    ) -> dict[str, tuple[Codec, int]]:
        """The codec and number of values of each data file (non-embedded, non-empty
        digest) these revisions refer to."""
        files: dict[str, tuple[Codec, int]] = {}
        for rev in self.changelog.log() if revisions is None else revisions:
            try:
                commit = rev.commit(self)
            except FileNotFoundError:  # trimmed since it was listed: it refers to nothing
                continue
            lengths = commit.length.tolist()
            for name in self.schema:
                codec = self.schema[name].codec
                for digest, length in zip(commit.digest[name].tolist(), lengths):
                    if digest not in commit.embedded and digest != EMPTY_DIGEST:
                        files.setdefault(digest, (codec, length))
        return files

    # Sync

    def pull(self, remote: Collection, shallow: bool = False) -> list[str]:
        """Copy the remote's data files, then its revisions (so readers never miss data).

        Data files are checked against their digests before they are written here
        (unless `settings.verify_digests` is ``"never"``), revisions always: a damaged
        remote raises `CorruptedDataError` before any revision is copied (files copied
        until then are unreferenced, and gc reclaims them).
        """
        if not isinstance(remote, Collection):
            raise TypeError(f"pull needs a Collection, not {type(remote).__name__}")
        if remote.schema != self.schema:
            raise ValueError(
                f"Unable to sync collection {self.label!r}: schemas differ "
                f"({self.schema!r} here, {remote.schema!r} there)"
            )
        tags = refs.pull_plan(self, remote)  # a conflict raises before anything changes
        local_digests = set(self.digests())
        revisions = remote.changelog.leafs() if shallow else remote.changelog.log()
        revisions += [tag.revision for tag in tags.values()]
        stored = remote._stored_files(revisions)
        wanted = set(stored) - local_digests
        missing = [d for d in sorted(wanted) if not self.pod.isfile(digest_path(d))]

        def copy(digest: str) -> None:
            self.pod.write(digest_path(digest), read_to_copy(remote.pod, digest, *stored[digest]))

        pooled_map(copy, missing)
        copied = self.changelog.pull(remote.changelog, shallow=shallow)
        refs.apply_pull(self, tags)
        return copied

    def push(self, remote: Collection, shallow: bool = False) -> list[str]:
        if not isinstance(remote, Collection):
            raise TypeError(f"push needs a Collection, not {type(remote).__name__}")
        return remote.pull(self, shallow=shallow)

    def __repr__(self) -> str:
        return f"<Collection {self.label}>"


def _overlay(schema: Schema, commit: Commit | None, rows: list[dict]) -> Commit | None:
    """`commit` (None for an empty history) with `rows` applied in order.

    Rows are applied label by label to that label's part of the commit only, and the
    parts are joined once: a batch writing to many series costs time linear in the size
    of the commit, not quadratic. Only the embedded arrays still referenced are kept, so
    a long history of small writes does not pile them up in memory.
    """
    if not rows:
        return commit
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    embedded = dict(commit.embedded) if commit is not None else {}
    parts, done = [], 0
    for label in sorted(by_label):
        first, end = commit.label_range(label) if commit is not None else (0, 0)
        if first > done:
            parts.append(_bare(commit.slice(done, first)))
        part = _bare(commit.slice(first, end)) if end > first else None
        for row in by_label[label]:
            if part is None and (commit is not None or row is not rows[0]):
                part = Commit.empty(schema)  # as `update` would: an empty range adds nothing
            embedded.update(row.get("embedded") or {})
            row = {**row, "embedded": None}
            part = part.update(**row) if part is not None else Commit.one(schema, **row)
        parts.append(part)
        done = max(done, end)
    if commit is not None and done < len(commit):
        parts.append(_bare(commit.slice(done, None)))
    result = Commit.concat(*parts)
    result.embedded = {
        digest: embedded[digest] for digest in result.digests() if digest in embedded
    }
    return result


def _bare(commit: Commit) -> Commit:
    """`commit` without its embedded map (merged once by `_overlay`)."""
    commit.embedded = {}
    return commit


def _clone_commit(commit: Commit, schema: Schema, rename: dict, defaults: dict) -> Commit:
    """`commit` re-expressed with the columns of `schema`.

    A column without a source is filled with its default (zero unless `defaults` says
    otherwise); for an index column, that constant is also every row's start and stop.
    An index column of the source that `schema` does not index cannot be dropped: it
    is what orders the rows.
    """
    source_of = {rename.get(name, name): name for name in commit.schema}
    unmapped = [n for n in commit.schema.idx if rename.get(n, n) not in schema.idx]
    if unmapped:
        raise ValueError(f"Clone target lacks the index column(s) {', '.join(unmapped)}")
    embedded = dict(commit.embedded)
    digests, start, stop = {}, {}, {}
    for name, column in schema.columns.items():
        if name in source_of:
            digests[name] = commit.digest[source_of[name]]
            if column.idx:
                start[name] = commit.start[source_of[name]]
                stop[name] = commit.stop[source_of[name]]
            continue
        fill = defaults.get(name, column.zero())
        values = []
        for length in commit.length.tolist():
            filled = column.cast(numpy.full(length, fill, dtype=object))
            data, digest = column.codec.encode(filled, with_digest=True)
            embedded[digest] = data
            values.append(digest)
        digests[name] = numpy.array(values, dtype="U40")
        if column.idx:
            start[name] = stop[name] = column.cast(numpy.full(len(commit), fill, dtype=object))
    return Commit(
        schema, commit.label, start, stop, digests, commit.length, commit.closed, embedded
    )
