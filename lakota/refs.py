"""Tags (names for revisions) and `at=`: finding the revision a read or a diff starts from.

```python
from lakota import Repo, Schema
repo = Repo()
clct = repo.create_collection(Schema(ts="int*", value="float"), "prices")
(clct / "a").write({"ts": [1, 2], "value": [1.0, 2.0]})
clct.tag("month-end", message="January close")
(clct / "a").write({"ts": [3], "value": [3.0]})
(clct / "a").frame(at="month-end")["ts"].tolist()  # [1, 2]
[tag.name for tag in clct.tags()]                   # ['month-end']
```

Storage (docs/format.md): tags are rows of a key-value collection labelled ``tags``,
registered in the registry namespace ``refs``, which lakota 0.7.1 neither lists nor
pulls but does scan in its garbage collection (so its data files stay protected). The
series ``tags`` holds one row per tag: the key is ``COLLECTION/NAME`` for a collection
tag and ``/NAME`` for a repository tag; the value is a map with ``revision`` (the
revision file name) or ``revisions`` (collection label → file name), ``author``,
``message`` and ``epoch`` (hextime of tagging).
"""

from __future__ import annotations

import re
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy

from .changelog import Revision
from .errors import (
    InvalidLabelError,
    RevisionNotFoundError,
    TagConflictError,
    TagExistsError,
    TagNotFoundError,
)
from .revinfo import default_author
from .utils import hashed_path, hexdigest, hextime

if TYPE_CHECKING:
    from .collection import Collection
    from .repo import Repo

__all__ = ["Tag", "RepoTag", "check_name", "resolve_at"]

REFS_NAMESPACE = "refs"
STORE_LABEL = "tags"
SERIES = "tags"
MIN_PREFIX = 7
_name = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_hex = re.compile(r"^[0-9a-f]+$")
_side = re.compile(r"^[0-9a-f]{11}-[0-9a-f]{40}$")
_registered: weakref.WeakSet = weakref.WeakSet()  # Repo objects that saw the store registered
_archived: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Repo -> archived paths
_rows_cache: dict[str, dict[str, dict]] = {}  # store revision child -> tag rows
STORE_PATH = "{}/{}".format(*hashed_path(hexdigest(b"lakota refs: tags")))


class Tag(NamedTuple):
    """A name for one revision of a collection."""

    name: str
    revision: Revision
    author: str
    message: str
    epoch: str  # hextime of tagging


class RepoTag(NamedTuple):
    """A name for the leaves every collection had at one instant (a repository snapshot)."""

    name: str
    revisions: dict[str, str]  # collection label -> revision file name
    author: str
    message: str
    epoch: str


def check_name(name: Any) -> str:
    """`name` if it is a valid tag name: letters, digits, ``._-``, 1 to 128 characters."""
    if not isinstance(name, str) or not _name.match(name):
        raise InvalidLabelError(
            f"Invalid tag name {name!r}: use 1 to 128 letters, digits, '.', '_' or '-'"
        )
    return name


# Storage


def _store(repo: Repo, create: bool = False) -> Collection:
    """The collection holding the tags, at its fixed folder; registered before a write."""
    meta = {"path": STORE_PATH, "schema": repo.schema.dumps()}
    if create and repo not in _registered:
        if repo.collection(STORE_LABEL, namespace=REFS_NAMESPACE) is None:
            repo.registry.series(REFS_NAMESPACE).write({"label": [STORE_LABEL], "meta": [meta]})
        _registered.add(repo)
    return repo.reify(STORE_LABEL, meta)


def _rows(repo: Repo) -> dict[str, dict]:
    """Every tag row: key → value.

    Cached by the store's leaf revision: a revision's content never changes, so a read
    at a tag costs a listing of the store when no tag changed.
    """
    store = _store(repo)
    leaf = store.changelog.leaf()
    if leaf is None:
        return {}
    found = _rows_cache.get(leaf.child)
    if found is None:
        frame = store.series(SERIES).frame(at=leaf)
        found = dict(zip(frame["label"].tolist(), frame["meta"].tolist()))
        if len(_rows_cache) >= 64:
            _rows_cache.clear()
        _rows_cache[leaf.child] = found
    return dict(found)


def _write(repo: Repo, rows: dict[str, dict]) -> None:
    if rows:
        store = _store(repo, create=True)
        store.series(SERIES).write({"label": list(rows), "meta": list(rows.values())})
        _join(store)


def _delete(repo: Repo, keys: list[str]) -> None:
    if keys:
        store = _store(repo, create=True)
        store.series(SERIES).delete(*keys)
        _join(store)


def _join(store: Collection) -> None:
    """Merge the store if concurrent taggers forked it, so that no tag stays hidden."""
    if len(store.changelog.heads()) > 1:
        store.merge()


def _record(message: str | None, **fields: Any) -> dict:
    if message is not None and not isinstance(message, str):
        raise TypeError(f"message must be a string, not {type(message).__name__}")
    return {**fields, "author": default_author(), "message": message or "", "epoch": hextime()}


def _key(label: str, name: str) -> str:
    return f"{label}/{name}"


def _archive(collection: Collection, create: bool = False) -> Collection:
    """The folder holding a copy of each tagged revision of `collection`.

    It is registered (namespace ``refs``, labelled by the collection's folder, with its
    schema) before the first copy: garbage collectors, ours and lakota 0.7.1's, then
    keep the data its revisions reference. Trim never touches it.
    """
    repo = collection.repo
    path = "{}/{}".format(*hashed_path(hexdigest(f"lakota tags of {collection.path}".encode())))
    meta = {"path": path, "schema": collection.schema.dumps()}
    seen = _archived.setdefault(repo, set())
    if create and collection.path not in seen:
        if repo.collection(collection.path, namespace=REFS_NAMESPACE) is None:
            repo.registry.series(REFS_NAMESPACE).write({"label": [collection.path], "meta": [meta]})
        seen.add(collection.path)
    return repo.reify(collection.path, meta)


def _keep(collection: Collection, revision: Revision) -> None:
    """Copy a revision file into the tag archive (same name and content)."""
    pod = _archive(collection, create=True).changelog.pod
    if not pod.isfile(revision.path):
        pod.write(revision.path, revision.read())


def _tag(collection: Collection, name: str, value: dict) -> Tag:
    revision = Revision.from_path(_archive(collection).changelog, value["revision"])
    return Tag(name, revision, value.get("author", ""), value.get("message", ""), value["epoch"])


def _collection_values(collection: Collection, rows: dict[str, dict]) -> dict[str, dict]:
    """Tag name → row value, for the tags of `collection`."""
    found = {}
    for key, value in rows.items():
        label, _, name = key.rpartition("/")
        if label == collection.label and isinstance(value, dict) and "revision" in value:
            found[name] = value
    return found


# Collection tags


def collection_tags(collection: Collection) -> list[Tag]:
    """The tags of `collection`, sorted by name."""
    values = _collection_values(collection, _rows(collection.repo))
    return [_tag(collection, name, values[name]) for name in sorted(values)]


def tag_collection(
    collection: Collection, name: str, at: Any = None, message: str | None = None, force=False
) -> Tag:
    """Name the revision `at` (default: the leaf) of `collection`."""
    check_name(name)
    revision = resolve_at(collection, at)
    if revision is None:
        raise RevisionNotFoundError(f"Collection {collection.label!r} has no revision to tag")
    current = _collection_values(collection, _rows(collection.repo)).get(name)
    if current is not None and not force:
        raise TagExistsError(
            f"Tag {name!r} of collection {collection.label!r} already points at "
            f"{current['revision']} (use force=True to move it)"
        )
    value = _record(message, revision=revision.path)
    _keep(collection, revision)
    _write(collection.repo, {_key(collection.label, name): value})
    return _tag(collection, name, value)


def untag_collection(collection: Collection, name: str) -> None:
    check_name(name)
    values = _collection_values(collection, _rows(collection.repo))
    if name not in values:
        raise TagNotFoundError(f"Collection {collection.label!r} has no tag {name!r}")
    _delete(collection.repo, [_key(collection.label, name)])
    _forget(collection, [values.pop(name)["revision"]], values)


def _forget(collection: Collection, paths: list[str], remaining: dict[str, dict]) -> None:
    """Remove archived revisions that no remaining tag names."""
    still = {value["revision"] for value in remaining.values()}
    pod = _archive(collection).changelog.pod
    for path in set(paths) - still:
        pod.rm(path, missing_ok=True)


def tag_names(collection: Collection, revision: Revision) -> list[str]:
    """Names of the tags of `collection` pointing at `revision`."""
    values = _collection_values(collection, _rows(collection.repo))
    return sorted(name for name, value in values.items() if value["revision"] == revision.path)


# Repository tags


def repo_tags(repo: Repo) -> list[RepoTag]:
    found = []
    for key, value in sorted(_rows(repo).items()):
        if key.startswith("/") and isinstance(value, dict) and "revisions" in value:
            found.append(
                RepoTag(
                    key[1:],
                    dict(value["revisions"]),
                    value.get("author", ""),
                    value.get("message", ""),
                    value["epoch"],
                )
            )
    return found


def tag_repo(repo: Repo, name: str, message: str | None = None, force: bool = False) -> RepoTag:
    """Tag every collection at its leaf, and record the set, in one write."""
    check_name(name)
    rows = _rows(repo)
    if f"/{name}" in rows and not force:
        raise TagExistsError(f"Repository tag {name!r} already exists (use force=True to move it)")
    revisions = {}
    for clct in repo.search():
        leaf = clct.changelog.leaf()
        if leaf is None:
            continue
        if _key(clct.label, name) in rows and not force:
            raise TagExistsError(
                f"Collection {clct.label!r} already has a tag {name!r} (use force=True)"
            )
        revisions[clct.label] = leaf.path
    record = _record(message, revisions=revisions)
    for clct in repo.search():
        if clct.label in revisions:
            _keep(clct, Revision.from_path(clct.changelog, revisions[clct.label]))
    new = {_key(label, name): {**record, "revision": path} for label, path in revisions.items()}
    new = {k: {f: v for f, v in value.items() if f != "revisions"} for k, value in new.items()}
    _write(repo, {f"/{name}": record, **new})
    return RepoTag(name, revisions, record["author"], record["message"], record["epoch"])


def untag_repo(repo: Repo, name: str) -> None:
    """Remove a repository tag and the collection tags it made."""
    check_name(name)
    rows = _rows(repo)
    value = rows.get(f"/{name}")
    if value is None:
        raise TagNotFoundError(f"Repository has no tag {name!r}")
    keys = [f"/{name}"]
    for label, path in value.get("revisions", {}).items():
        own = rows.get(_key(label, name))
        if isinstance(own, dict) and own.get("revision") == path:
            keys.append(_key(label, name))
    _delete(repo, keys)
    for clct in repo.search():
        if _key(clct.label, name) in keys:
            remaining = _collection_values(clct, _rows(repo))
            _forget(clct, [value["revisions"][clct.label]], remaining)


def drop_collection(repo: Repo, collection: Collection) -> None:
    """Forget the tags of a deleted collection, and its tag archive."""
    _delete(repo, [k for k in _rows(repo) if k.rpartition("/")[0] == collection.label])
    if repo.collection(collection.path, namespace=REFS_NAMESPACE) is not None:
        repo.registry.series(REFS_NAMESPACE).delete(collection.path)
        _archive(collection).changelog.pod.rm(".", recursive=True, missing_ok=True)


def rename_collection(repo: Repo, old: str, new: str) -> None:
    """Move the tags of a renamed collection."""
    rows = {k: v for k, v in _rows(repo).items() if k.rpartition("/")[0] == old}
    if rows:
        _delete(repo, list(rows))
        _write(repo, {_key(new, k.rpartition("/")[2]): v for k, v in rows.items()})


# Sync


def pull_plan(local: Collection, remote: Collection) -> dict[str, Tag]:
    """The remote tags to copy; `TagConflictError` (nothing changed) if a name differs."""
    return _missing(
        collection_tags(local),
        collection_tags(remote),
        lambda tag: tag.revision.digests.child,
        lambda mine, tag: (
            f"Tag {tag.name!r} of collection {local.label!r} points at "
            f"{mine.revision.path} here and at {tag.revision.path} in the remote"
        ),
    )


def _missing(ours: list, theirs: list, target: Any, conflict: Any) -> dict:
    """Tags of `theirs` that `ours` lacks, by name; a name whose `target` differs
    raises `TagConflictError` with the message `conflict(mine, theirs)`."""
    mine = {tag.name: tag for tag in ours}
    wanted = {}
    for tag in theirs:
        own = mine.get(tag.name)
        if own is None:
            wanted[tag.name] = tag
        elif target(own) != target(tag):
            raise TagConflictError(conflict(own, tag))
    return wanted


def apply_pull(local: Collection, wanted: dict[str, Tag]) -> None:
    """Copy the tagged revisions into the local tag archive, then the tags."""
    for tag in wanted.values():
        _keep(local, tag.revision)
    rows = {
        _key(local.label, tag.name): {
            "revision": tag.revision.path,
            "author": tag.author,
            "message": tag.message,
            "epoch": tag.epoch,
        }
        for tag in wanted.values()
    }
    _write(local.repo, rows)


def repo_pull_plan(local: Repo, remote: Repo) -> dict[str, RepoTag]:
    """The remote repository tags to copy (`TagConflictError` as `pull_plan`)."""
    return _missing(
        repo_tags(local),
        repo_tags(remote),
        lambda tag: {label: path[-40:] for label, path in tag.revisions.items()},
        lambda mine, tag: (
            f"Repository tag {tag.name!r} names {mine.revisions} here and "
            f"{tag.revisions} in the remote"
        ),
    )


def apply_repo_pull(local: Repo, wanted: dict[str, RepoTag]) -> None:
    rows = {
        f"/{tag.name}": {
            "revisions": tag.revisions,
            "author": tag.author,
            "message": tag.message,
            "epoch": tag.epoch,
        }
        for tag in wanted.values()
    }
    _write(local, rows)


# Resolving `at=`


def resolve_at(collection: Collection, at: Any) -> Revision | None:
    """The revision `at` names (None: the leaf, or nothing for an empty history).

    `at` is a `Revision`; a tag name; a revision file name, child id, or a unique
    prefix (at least 7 hex digits) of a child digest; or a `datetime` (naive: local
    time), a `numpy.datetime64` (UTC) or an epoch in seconds, meaning the state at that
    instant, inclusive.
    """
    changelog = collection.changelog
    if at is None:
        return changelog.leaf()
    if isinstance(at, Revision):
        return at
    if isinstance(at, numpy.datetime64):  # naive, so UTC like the index values
        at = float(at.astype("M8[ms]").astype("i8")) / 1000
    if isinstance(at, datetime):
        return changelog.leaf(before=_just_after(at.timestamp()))
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return changelog.leaf(before=_just_after(float(at)))
    if not isinstance(at, str):
        raise TypeError(
            "at must be a tag name, a Revision, a revision id, a datetime or an epoch, "
            f"not {type(at).__name__}"
        )
    if _name.match(at):
        value = _collection_values(collection, _rows(collection.repo)).get(at)
        if value is not None:
            return _tag(collection, at, value).revision
    return _by_id(collection, at)


def _just_after(seconds: float) -> str:
    """The hextime one millisecond after `seconds`: `before=` of an inclusive instant."""
    return format(int(hextime(seconds), 16) + 1, "x").rjust(11, "0")


def _by_id(collection: Collection, at: str) -> Revision:
    changelog = collection.changelog
    if "." in at:  # a revision file name, ``<parent>.<child>``
        try:
            return Revision.from_path(changelog, at)
        except ValueError:
            pass
    log = changelog.log()
    if _side.match(at):
        found = [rev for rev in log if rev.child == at]
    elif len(at) >= MIN_PREFIX and _hex.match(at):
        found = [rev for rev in log if rev.digests.child.startswith(at)]
    else:
        raise RevisionNotFoundError(
            f"No tag or revision {at!r} in collection {collection.label!r} (a revision "
            f"prefix needs at least {MIN_PREFIX} hex digits)"
        )
    digests = {rev.digests.child for rev in found}
    if not found:
        raise RevisionNotFoundError(f"No revision {at!r} in collection {collection.label!r}")
    if len(digests) > 1:
        raise RevisionNotFoundError(
            f"Revision prefix {at!r} is ambiguous in collection {collection.label!r}: "
            + ", ".join(sorted(d[: len(at) + 4] for d in digests))
        )
    return found[-1]
