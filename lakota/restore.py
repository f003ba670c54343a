"""Going back to a known-good state: a new revision equal to the state at `at`.

```python
from lakota import Repo, Schema
clct = Repo().create_collection(Schema(k="int*", v="float"), "c")
(clct / "s").write({"k": [1, 2], "v": [1.0, 2.0]})
clct.tag("good")
(clct / "s").write({"k": [2], "v": [-1.0]})
(clct / "s").restore("good")          # or clct.restore("good", labels=["s"])
(clct / "s").frame()["v"].tolist()    # [1.0, 2.0]
```

History is kept: the restore is one more revision (its message says what it restored),
and it reuses the rows, so no data is copied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .changelog import Revision, phi
from .commit import Commit
from .history import _replace_label

if TYPE_CHECKING:
    from .collection import Collection

__all__ = ["restore"]


def restore(
    collection: Collection, at: Any, labels: list[str] | None = None, message: str | None = None
) -> list[Revision]:
    """Write the state at `at` of these series (default: all) as a new revision.

    Returns the new revisions, empty if the state is already the one at `at`.
    """
    if collection.batch is not None:
        raise ValueError("restore makes a revision of its own: call it outside multi()")
    if labels is not None and (
        isinstance(labels, str) or not all(isinstance(x, str) for x in labels)
    ):
        raise TypeError("labels must be a list of series labels")
    target = collection.revision(at)
    old = collection.commit(at=target) if target is not None else None
    what = "collection" if labels is None else ", ".join(labels)
    name = at if isinstance(at, str) else target.child if target is not None else str(at)
    info = collection.revision_info(message, default_message=f"Restore {what} to {name}")
    with collection.writing():
        leaf = collection.changelog.leaf()
        base = collection.commit(at=leaf) if leaf is not None else None
        restored = _restored(collection, base, old, labels)
        parent = leaf.child if leaf is not None else phi
        return collection._write_commit(restored, [parent], info, base)


def _restored(
    collection: Collection, base: Commit | None, old: Commit | None, labels: list[str] | None
) -> Commit:
    empty = Commit.empty(collection.schema)
    if labels is None:
        return old if old is not None else empty
    result = base if base is not None else empty
    for label in labels:
        result = _replace_label(result, old if old is not None else empty, label)
    return result
