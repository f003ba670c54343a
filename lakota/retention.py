"""Retention: which revisions `trim` deletes and which data files `gc` reclaims.

```python
from lakota import Repo, Schema
repo = Repo()
clct = repo.create_collection(Schema(k="int*", v="float"), "c")
for i in range(5):
    (clct / "s").write({"k": [i], "v": [1.0]})
plan = clct.trim(keep_last=2, dry_run=True)   # TrimPlan(revisions, files, bytes)
len(plan.revisions)                           # 3, nothing deleted yet
repo.gc(dry_run=True)                         # GCPlan(soft, hard, restore, bytes)
```

Tagging copies the revision into the collection's tag archive (`lakota.refs`), which
trim never touches and garbage collection treats as live: a tagged revision and its
data files always stay. A dry run reads the files it lists to count their bytes.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from .changelog import Revision
from .utils import digest_path, hextime, logger, settings

if TYPE_CHECKING:
    from .collection import Collection
    from .repo import Repo

__all__ = ["GCPlan", "TrimPlan", "gc_plan", "trim_plan"]


class TrimPlan(NamedTuple):
    """What `trim` deletes: the revisions, their files (paths in the collection folder)
    and the bytes of those files."""

    revisions: list[Revision]
    files: list[str]
    bytes: int


class GCPlan(NamedTuple):
    """What `gc` does: data files to soft-delete, soft-deleted files to delete for good,
    soft-deleted files to restore (referenced again), and the bytes that go."""

    soft: list[str]
    hard: list[str]
    restore: list[str]
    bytes: int


def trim_plan(
    collection: Collection,
    before: str | datetime | None = None,
    keep_last: int | None = None,
    measure: bool = False,
) -> TrimPlan:
    """Revisions older than `before` (default: now - 2 x settings.timeout, unless only
    `keep_last` is given) and not among the `keep_last` newest; never the head, and
    nothing while unmerged heads exist. Tagged revisions stay in the tag archive."""
    if keep_last is not None and (
        not isinstance(keep_last, int) or isinstance(keep_last, bool) or keep_last < 0
    ):
        raise ValueError(f"keep_last must be a non-negative integer, got {keep_last!r}")
    if before is None and keep_last is None:
        before = datetime.now() - timedelta(seconds=2 * settings.timeout)
    changelog = collection.changelog
    heads = changelog.heads()
    if len(heads) > 1:
        logger.warning(
            "Collection %s has %d heads: merge before trimming", collection.label, len(heads)
        )
        return TrimPlan([], [], 0)
    log = changelog.log()
    keep = {heads[0].path} if heads else set()
    if keep_last:
        keep |= {rev.path for rev in sorted(log, key=lambda r: (r.epoch, r.path))[-keep_last:]}
    old = changelog.log(before=before) if before is not None else log
    revisions = list({rev.path: rev for rev in old if rev.path not in keep}.values())
    files = [rev.path for rev in revisions]
    size = sum(len(changelog.pod.read(path)) for path in files) if measure else 0
    return TrimPlan(revisions, files, size)


def trim(collection: Collection, plan: TrimPlan) -> int:
    """Delete the files of `plan` one at a time, in log order: an interrupted trim leaves
    a log whose first revisions are gone, never a revision cut from its descendants."""
    for path in plan.files:
        collection.changelog.pod.rm(path, missing_ok=True)
    collection.changelog.refresh()
    return len(plan.files)


def gc_plan(repo: Repo, measure: bool = False) -> GCPlan:
    """The actions of a garbage collection (see `Repo.gc`), without doing them.

    The listing happens before the revisions are read, so data written by a running
    writer is at most soft-deleted.
    """
    candidates = repo.data_files()
    active = repo._active_digests()
    deadline = hextime(time.time() - settings.timeout)
    soft, hard, restore = [], [], []
    for name in candidates:
        digest, _, stamp = name.partition(".")
        path = digest_path(digest)
        if not stamp:
            if digest not in active:
                soft.append(path)
        elif digest in active and not repo.pod.isfile(path):
            restore.append(f"{path}.{stamp}")
        elif stamp <= deadline:  # unused, or a copy left by an interrupted move
            hard.append(f"{path}.{stamp}")
    size = sum(_size(repo, path) for path in soft + hard) if measure else 0
    return GCPlan(soft, hard, restore, size)


def _size(repo: Repo, path: str) -> int:
    try:
        return len(repo.pod.read(path))
    except FileNotFoundError:  # moved by a concurrent gc
        return 0


def gc(repo: Repo, plan: GCPlan) -> tuple[int, int]:
    """Carry out `plan`; returns ``(hard_deleted, soft_deleted)``."""
    suffix = "." + hextime()
    for path in plan.soft:
        repo.pod.mv(path, path + suffix, missing_ok=True)
    for name in plan.restore:
        repo.pod.mv(name, name.rpartition(".")[0], missing_ok=True)
    for name in plan.hard:
        repo.pod.rm(name, missing_ok=True)
    return len(plan.hard), len(plan.soft)
