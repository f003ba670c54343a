"""Operations that rewrite a collection's history: merging heads and defragmenting series."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .changelog import Revision
from .commit import Commit
from .frame import Frame
from .utils import settings

if TYPE_CHECKING:
    from .collection import Collection

__all__ = ["merge_heads", "defrag_collection", "frame_chunks"]


def merge_heads(collection: Collection, heads: list[Revision]) -> list[Revision]:
    """One commit holding every head's writes, written as a child of each head.

    The oldest head is the base. Rows that another head wrote since the common
    ancestor are overlaid on it in head order, so newer branches win where they
    overlap; rows inherited from the ancestor, even cut, are not re-applied, and
    series deleted on one side and untouched on the other stay deleted.
    """
    from .collection import _commit_lock

    changelog = collection.changelog
    with _commit_lock(collection):
        changelog.refresh()
        heads = heads or changelog.heads()
        if len({head.digests.child for head in heads}) < 2:
            return []
        ancestor = _common_ancestor(changelog.log(), heads)
        base = ancestor.commit(collection) if ancestor is not None else None
        merged = heads[0].commit(collection)
        for head in heads[1:]:
            merged = _merge_commit(merged, head.commit(collection), base)
        return collection._write_commit(merged, list(dict.fromkeys(h.child for h in heads)))


def _merge_commit(first: Commit, other: Commit, base: Commit | None) -> Commit:
    for pos in range(len(other)):
        row = other.at(pos)
        if row in first or (base is not None and _inherited(row, base)):
            continue
        first = first.update(**row)
    if base is not None:
        first = _drop_deleted_labels(first, other, base)
    return first


def _inherited(row: dict, base: Commit) -> bool:
    """True if `row` shows (part of) a segment the common ancestor already had."""
    for old in base.match(row["label"]):
        inside = old.start <= row["start"] <= row["stop"] <= old.stop
        if inside and old.digest == tuple(row["digest"]):
            return True
    return False


def _drop_deleted_labels(first: Commit, other: Commit, base: Commit) -> Commit:
    """Series that `other` deleted since `base` and `first` left unchanged go away."""
    gone = set(base.labels()) - set(other.labels())
    unchanged = [label for label in gone if list(first.match(label)) == list(base.match(label))]
    return first.delete_labels(unchanged) if unchanged else first


def _common_ancestor(log: list[Revision], heads: list[Revision]) -> Revision | None:
    """The nearest revision (by content) that every head descends from, or None."""
    by_child = defaultdict(list)
    for rev in log:
        by_child[rev.child].append(rev)
    lines = [_ancestry(head, by_child) for head in heads]
    others = [{rev.digests.child for rev in line} for line in lines[1:]]
    for rev in lines[0]:
        if all(rev.digests.child in digests for digests in others):
            return rev
    return None


def _ancestry(head: Revision, by_child: dict[str, list[Revision]]) -> list[Revision]:
    """`head` and its ancestors, nearest first (breadth first over parent links)."""
    found, queue, seen = [], [head], {head.path}
    while queue:
        rev = queue.pop(0)
        found.append(rev)
        for parent in by_child.get(rev.parent, []):
            if parent.path not in seen:
                seen.add(parent.path)
                queue.append(parent)
    return found


def defrag_collection(collection: Collection, max_chunk: int) -> list[Revision]:
    """Rewrite fragmented series as page-sized segments, in one revision.

    Inside `multi()` it builds on the pending writes of the batch, so it never undoes them.
    """
    with collection.multi() as batch:
        commit = collection.staged()
        for label in commit.labels() if commit is not None else []:
            start = _fragmented_from(commit, label, max_chunk)
            if start is not None:
                _rewrite(collection, commit, label, start)
    return batch.revs


def _fragmented_from(commit: Commit, label: str, max_chunk: int) -> tuple | None:
    """Start of the first small segment of `label`, if it has too many segments."""
    a, b = commit.label_range(label)
    if b - a <= max_chunk:
        return None
    lengths = commit.length[a:b]
    threshold = min(settings.page_len, lengths.sum() / (max_chunk + 1))
    for pos in range(a, b - 1):
        if lengths[pos - a] < threshold:
            return commit.row(pos).start
    return None


def _rewrite(collection: Collection, commit: Commit, label: str, start: tuple) -> None:
    series = collection.series(label)
    frame = Frame.from_segments(
        collection.schema, commit.segments(label, collection.pod, start, (), "b")
    )
    last_stop = commit.row(commit.label_range(label)[1] - 1).stop
    chunks = list(frame_chunks(frame, settings.page_len))
    if not chunks:
        series.delete(start, last_stop)
        return
    for pos, chunk in enumerate(chunks):
        chunk_start = start if pos == 0 else chunk.start()
        if pos + 1 < len(chunks):
            series.write(chunk, start=chunk_start, stop=chunks[pos + 1].start(), closed="l")
        else:
            series.write(chunk, start=chunk_start, stop=max(chunk.stop(), last_stop))


def frame_chunks(frame: Frame, size: int) -> Iterator[Frame]:
    """Split a sorted frame into pieces of about `size` rows, never inside a run of equal keys."""
    start, total = 0, len(frame)
    while start < total:
        end = min(start + size, total)
        if end < total:
            key = frame.schema.row(frame.columns, end - 1, full=False)
            end = frame.index(key, right=True)
        yield frame.slice(start, end)
        start = end
