"""Operations that rewrite a collection's history: merging heads and defragmenting series."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .changelog import Revision
from .commit import Commit
from .frame import Frame
from .utils import Closed, settings

if TYPE_CHECKING:
    from .collection import Collection
    from .pod import POD

__all__ = ["merge_heads", "defrag_collection"]


def merge_heads(
    collection: Collection, heads: list[Revision], message: str | None = None
) -> list[Revision]:
    """One commit holding every head's writes, written as a child of each head.

    The oldest head is the base; every other head is merged into it in order, as a
    three-way merge against their common ancestor: a series changed on one side only
    takes that side's rows, and a series changed on both sides is merged key by key,
    the later head winning on the keys it changed. No write is lost, whether the
    other side appended, overwrote, deleted or rewrote (defragmented) its segments.
    """
    from .collection import _commit_lock

    changelog = collection.changelog
    with _commit_lock(collection):
        changelog.refresh()
        heads = heads or changelog.heads()
        if len({head.digests.child for head in heads}) < 2:
            return []
        ancestor = _common_ancestor(changelog.log(), heads)
        base = (
            ancestor.commit(collection) if ancestor is not None else Commit.empty(collection.schema)
        )
        merged = heads[0].commit(collection)
        for head in heads[1:]:
            merged = _merge_commit(collection, merged, head.commit(collection), base)
        info = collection.revision_info(message, default_message=f"Merge {len(heads)} branches")
        return collection._write_commit(merged, list(dict.fromkeys(h.child for h in heads)), info)


def _merge_commit(collection: Collection, ours: Commit, theirs: Commit, base: Commit) -> Commit:
    labels = set(ours.labels()) | set(theirs.labels()) | set(base.labels())
    for label in sorted(labels):
        base_rows = list(base.match(label))
        their_rows = list(theirs.match(label))
        if their_rows == base_rows:
            continue
        if list(ours.match(label)) == base_rows:
            ours = _replace_label(ours, theirs, label)
        else:
            ours = _merge_keys(collection, label, ours, theirs, base)
    return ours


def _replace_label(ours: Commit, theirs: Commit, label: str) -> Commit:
    """`ours` with the rows of `label` taken from `theirs`."""
    result = ours.delete_labels([label])
    for pos in range(*theirs.label_range(label)):
        result = result.update(**theirs.at(pos))
    return result


def _merge_keys(
    collection: Collection, label: str, ours: Commit, theirs: Commit, base: Commit
) -> Commit:
    """Merge a series changed on both sides: their rows win on the keys they changed."""
    schema, pod = collection.schema, collection.pod
    frames = [
        Frame.from_segments(schema, commit.segments(label, pod)) for commit in (base, theirs, ours)
    ]
    base_groups, their_groups, our_groups = (_key_groups(frame) for frame in frames)
    changed = {
        key
        for key in base_groups.keys() | their_groups.keys()
        if base_groups.get(key) != their_groups.get(key)
    }
    series = collection.series(label)
    every_key = our_groups.keys() | their_groups.keys() | base_groups.keys()
    for first, last in _runs(sorted(every_key), changed):  # an unchanged key ends a run
        rows = frames[1].islice(first, last, closed="b")
        ours = ours.update(**series.stage(rows, first, last, Closed.BOTH))
    return ours


def _key_groups(frame: Frame) -> dict[tuple, list[tuple]]:
    """Rows grouped by index key, in frame order."""
    keys = zip(*(list(frame[name]) for name in frame.schema.idx))
    rows = zip(*(map(_comparable, frame[name].tolist()) for name in frame.schema))
    groups: dict[tuple, list[tuple]] = {}
    for key, row in zip(keys, rows):
        groups.setdefault(key, []).append(row)
    return groups


def _comparable(value: object) -> object:
    """NaN never equals itself: give it a stand-in so that unchanged NaNs compare equal."""
    return "<NaN>" if isinstance(value, float) and value != value else value


def _runs(keys: list[tuple], marked: set[tuple]) -> Iterator[tuple[tuple, tuple]]:
    """Maximal ``(first, last)`` runs of consecutive `keys` that are all `marked`."""
    first = last = None
    for key in keys:
        if key in marked:
            first = key if first is None else first
            last = key
        elif first is not None:
            yield first, last
            first = None
    if first is not None:
        yield first, last


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


def defrag_collection(
    collection: Collection, max_chunk: int, message: str | None = None
) -> list[Revision]:
    """Rewrite fragmented series as page-sized segments, in one revision.

    Inside `multi()` it builds on the pending writes of the batch, so it never undoes them
    (and the batch's own metadata applies).
    """
    info = collection.revision_info(message, default_message="Defrag") or {}
    with collection.multi(**info) as batch:
        commit = collection.staged()
        for label in commit.labels() if commit is not None else []:
            start = _fragmented_from(commit, label, max_chunk, collection.pod)
            if start is not None:
                _rewrite(collection, commit, label, start)
    return batch.revs


def _fragmented_from(commit: Commit, label: str, max_chunk: int, pod: POD) -> tuple | None:
    """Start of the first small segment of `label`, if it has too many segments.

    A segment is small when it holds fewer than ``min(page_len, stored rows /
    (max_chunk + 1))`` rows (the rule of lakota 0.7.1). Its stored length is checked
    first; when no segment is small by that count, the rows each one still shows are
    counted (decoding the index columns), so that segments cut short by later
    overlapping writes count as fragments too.
    """
    a, b = commit.label_range(label)
    if b - a <= max_chunk:
        return None
    lengths = commit.length[a:b]
    threshold = min(settings.page_len, lengths.sum() / (max_chunk + 1))
    for pos in range(a, b - 1):
        if lengths[pos - a] < threshold:
            return commit.row(pos).start
    for segment in commit.segments(label, pod)[:-1]:
        if len(segment) < threshold:
            return segment.start
    return None


def _rewrite(collection: Collection, commit: Commit, label: str, start: tuple) -> None:
    series = collection.series(label)
    frame = Frame.from_segments(
        collection.schema, commit.segments(label, collection.pod, start, (), "b")
    )
    last_stop = commit.row(commit.label_range(label)[1] - 1).stop
    if frame.empty:
        series.delete(start, last_stop)
    else:
        series.write(frame, start=start, stop=max(frame.stop(), last_stop))
