"""Repositories: a storage root holding a registry of collections and their shared data files.

```python
repo = Repo("file:///tmp/prices")            # or Repo(), "memory://", "s3:///bucket", a list
temperature = repo.create_collection(Schema(timestamp="timestamp*", value="float"), "temp")
repo.ls()                                     # ['temp']
repo / "temp"                                 # the collection, like pathlib
nb_hard_deleted, nb_soft_deleted = repo.gc()  # reclaim unreferenced data files
```

Garbage collection runs in two phases: a data file no revision references is first
renamed with a ``.<hextime>`` suffix (soft delete), and deleted by a later run once that
suffix is older than `settings.timeout`. Reads find soft-deleted files, and a file that
becomes referenced again is restored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from . import refs
from .changelog import zero_hash
from .collection import Collection
from .errors import CollectionExistsError, CollectionNotFoundError, InvalidLabelError
from .frame import Frame
from .pod import POD
from .schema import Schema
from .utils import (
    encodable,
    hashed_path,
    hexdigest,
    logger,
    pooled_map,
    settings,
)

if TYPE_CHECKING:
    from .check import CheckReport

__all__ = ["Repo"]

_data_file = re.compile(r"^[0-9a-f]{40}(\.[0-9a-f]{11})?$")


class Repo:
    """A storage location holding collections (see the module docstring)."""

    schema = Schema.kv(label="str*", meta="O")

    def __init__(self, uri: str | list[str] | None = None, pod: POD | None = None) -> None:
        self.pod = pod if pod is not None else POD.from_uri(uri)
        folder, name = hashed_path(zero_hash)
        self.registry = Collection("registry", self.schema, f"{folder}/{name}", self)

    # Collections

    def ls(self) -> list[str]:
        """Labels of the collections, sorted."""
        return [clct.label for clct in self.search()]

    def __iter__(self) -> Iterator[Collection]:
        return self.search()

    def search(
        self, label: str | None = None, namespace: str = "collection"
    ) -> Iterator[Collection]:
        """Every collection of the namespace (or only `label`)."""
        frame = self._registry_rows(namespace, label)
        for pos, name in enumerate(frame["label"].tolist()):
            yield self.reify(name, frame["meta"][pos])

    def _registry_rows(self, namespace: str, label: str | None = None):
        series = self.registry.series(namespace)
        if label is None:
            return series.frame()
        return series.frame(start=label, stop=label, closed="BOTH")

    def collection(
        self, label: str, from_frm: Any = None, namespace: str = "collection"
    ) -> Collection | None:
        """The collection `label`, or None if the registry does not have it."""
        if from_frm is not None:
            frame = from_frm.islice((label,), (label,), closed="BOTH")
        else:
            frame = self._registry_rows(namespace, label)
        if frame.empty:
            return None
        return self.reify(label, frame["meta"][-1])

    def __truediv__(self, label: str) -> Collection | None:
        return self.collection(label)

    def __contains__(self, label: str) -> bool:
        return self.collection(label) is not None

    def reify(self, label: str, meta: dict) -> Collection:
        """Build a Collection object from a registry row."""
        return Collection(label, Schema.loads(meta["schema"]), meta["path"], self)

    def create_collection(
        self,
        schema: Schema,
        *labels: str,
        raise_if_exists: bool = True,
        namespace: str = "collection",
    ) -> Collection | list[Collection]:
        """Register one or more collections with `schema` (one registry revision).

        Returns the collection for a single label, else a list in argument order.
        """
        if not isinstance(schema, Schema):
            raise TypeError(f"schema must be a lakota.Schema, not {type(schema).__name__}")
        if not labels:
            raise ValueError("create_collection needs at least one label")
        labels = tuple(_clean_label(label) for label in labels)
        rows = self._registry_rows(namespace)
        metas = dict(zip(rows["label"].tolist(), rows["meta"].tolist()))
        new = {}
        for label in dict.fromkeys(labels):
            if label in metas:
                if raise_if_exists:
                    raise CollectionExistsError(f"Collection with label {label!r} already exists")
                continue
            folder, name = hashed_path(hexdigest(uuid4().bytes))
            new[label] = {"path": f"{folder}/{name}", "schema": schema.dumps()}
        if new:
            rows = {"label": list(new), "meta": list(new.values())}
            self.registry.series(namespace).write(rows)
        metas.update(new)  # not read back: the leaf may be another writer's branch now
        found = [self.reify(label, metas[label]) for label in labels]
        return found[0] if len(found) == 1 else found

    def delete(self, *labels: str, namespace: str = "collection") -> None:
        """Unregister collections and remove their revision files (data is left to `gc`)."""
        doomed = [c for c in (self.collection(lbl, namespace=namespace) for lbl in labels) if c]
        if not doomed:
            return
        self.registry.series(namespace).delete(*[c.label for c in doomed])
        for clct in doomed:
            if namespace == "collection":
                refs.drop_collection(self, clct)
            clct.changelog.pod.rm(".", recursive=True, missing_ok=True)

    def rename(self, from_label: str, to_label: str, namespace: str = "collection") -> None:
        """Give a collection a new label; it keeps its folder and history."""
        to_label = _clean_label(to_label)
        rows = self._registry_rows(namespace)
        labels = rows["label"].tolist()
        if from_label not in labels:
            raise CollectionNotFoundError(f"Collection {from_label!r} does not exist")
        if to_label in labels:
            raise CollectionExistsError(f"Collection {to_label!r} already exists")
        meta = rows["meta"][labels.index(from_label)]
        series = self.registry.series(namespace)
        with self.registry.multi():
            series.delete(from_label)
            series.write({"label": [to_label], "meta": [meta]})
        if namespace == "collection":
            refs.rename_collection(self, from_label, to_label)

    def archive(self, collection: Collection) -> Collection:
        """The collection's twin in the ``archive`` namespace (created if missing)."""
        found = self.collection(collection.label, namespace="archive")
        if found is not None:
            return found
        return self.create_collection(collection.schema, collection.label, namespace="archive")

    def refresh(self) -> None:
        """See registry changes made by other writers since this object last looked."""
        self.registry.refresh()

    # Tags

    def tag(self, name: str, message: str | None = None, force: bool = False) -> refs.RepoTag:
        """Tag every collection at its leaf under `name`, in one step (a snapshot)."""
        return refs.tag_repo(self, name, message, force)

    def tags(self) -> list[refs.RepoTag]:
        """``RepoTag(name, revisions, author, message, epoch)`` of every repository tag."""
        return refs.repo_tags(self)

    def untag(self, name: str) -> None:
        """Remove a repository tag and the collection tags it made."""
        refs.untag_repo(self, name)

    # Sync

    def push(self, remote: Repo, *labels: str, shallow: bool = False) -> None:
        """Send collections (default: all) to `remote`."""
        if not isinstance(remote, Repo):
            raise TypeError(f"push needs a Repo, not {type(remote).__name__}")
        remote.pull(self, *labels, shallow=shallow)

    def pull(self, remote: Repo, *labels: str, shallow: bool = False) -> None:
        """Fetch collections (default: all) from `remote`, data first, then revisions."""
        if not isinstance(remote, Repo):
            raise TypeError(f"pull needs a Repo, not {type(remote).__name__}")
        remote.refresh()
        remote_clcts = {clct.label: clct for clct in remote.search()}
        unknown = [label for label in labels if label not in remote_clcts]
        if unknown:
            raise CollectionNotFoundError(f"Collection(s) not found in remote: {unknown}")
        labels = labels or tuple(remote_clcts)
        self.refresh()
        # Check before the registry pull, which would let the remote rows hide ours
        local = {clct.label: clct for clct in self.search()}
        for label in labels:
            ours, theirs = local.get(label), remote_clcts[label]
            if ours is not None and ours.schema != theirs.schema:
                raise ValueError(
                    f"Unable to sync collection {label!r}: incompatible schemas "
                    f"({ours.schema!r} here, {theirs.schema!r} in remote)"
                )
            if ours is not None:
                refs.pull_plan(ours, theirs)  # a tag conflict raises before any change
        repo_tags = refs.repo_pull_plan(self, remote)
        self.registry.pull(remote.registry, shallow=shallow)
        self.refresh()
        local = {clct.label: clct for clct in self.search()}
        for label in labels:
            logger.info("Sync collection: %s", label)
            theirs = remote_clcts[label]
            ours = local.get(label) or self.create_collection(theirs.schema, label)
            ours.pull(theirs, shallow=shallow)
        refs.apply_repo_pull(self, repo_tags)

    def merge(self) -> list:
        """Merge the registry (after concurrent creations or deletions).

        When processes created the same label at the same time, each got its own folder
        and the merged registry keeps one: the history of the others is pulled into it
        and merged, so that their writes are not lost.
        """
        twins = self._twins()
        revisions = self.registry.merge()
        self.refresh()
        for (namespace, label), metas in twins.items():
            kept = self.collection(label, namespace=namespace)
            if kept is not None:
                self._fold(kept, metas)
        return revisions

    def _twins(self) -> dict[tuple[str, str], list[dict]]:
        """Registry rows (of every branch) giving one label several folders."""
        found: dict[tuple[str, str], dict[str, dict]] = {}
        for namespace, label, meta in self.registered():
            if isinstance(meta, dict) and isinstance(meta.get("path"), str):  # see `check`
                found.setdefault((namespace, label), {})[meta["path"]] = meta
        return {key: list(metas.values()) for key, metas in found.items() if len(metas) > 1}

    def _fold(self, kept: Collection, metas: list[dict]) -> None:
        """Pull the history of `kept`'s twin folders into it, then merge."""
        for meta in metas:
            twin = self.reify(kept.label, meta)
            if twin.path == kept.path:
                continue
            if twin.schema != kept.schema:
                logger.warning(
                    "Collection %r was created twice with different schemas; folder %s is "
                    "left as it is", kept.label, twin.path,
                )
                continue
            kept.pull(twin)
            twin.changelog.pod.rm(".", recursive=True, missing_ok=True)
        kept.merge()

    # Garbage collection

    def gc(self, dry_run: bool = False) -> Any:
        """Soft-delete unreferenced data files, hard-delete old soft-deleted ones.

        Returns ``(hard_deleted, soft_deleted)``, or with `dry_run` a `GCPlan` of what
        would be done (files to soft-delete, to delete, to restore, and bytes), changing
        nothing. The listing happens before the revisions are read, so data written by a
        running writer is at most soft-deleted, and restored by the next run once a
        revision refers to it. Temporary files left by interrupted writes go once older
        than `settings.timeout`. Tagged revisions live on in their tag archive, and so
        does their data.
        """
        from .retention import gc, gc_plan

        logger.info("Start GC")
        plan = gc_plan(self, measure=dry_run)
        if dry_run:
            return plan
        hard, soft = gc(self, plan)
        purged = self.pod.purge_temporary(settings.timeout)
        logger.info(
            "End of GC (hard deletions: %s, soft deletions: %s, temporary files: %s)",
            hard, soft, purged,
        )
        return hard, soft

    def data_files(self) -> list[str]:
        """Names of the stored data files: digests, with a ``.<hextime>`` if soft-deleted."""
        listed = pooled_map(self._data_files, self.pod.ls(missing_ok=True))
        return [name for found in listed for name in found]

    def _data_files(self, folder: str) -> list[str]:
        """Data file names (digest, maybe with a soft-delete suffix) under a top folder."""
        if len(folder) != 2:
            return []
        names = (folder + path.replace("/", "") for path in self.pod.cd(folder).walk(max_depth=2))
        return [name for name in names if _data_file.match(name)]

    def _active_digests(self) -> set[str]:
        self.refresh()
        active = set(self.registry.digests())
        folders = {}
        for _, label, meta in self.registered():
            if meta["path"] not in folders:
                folders[meta["path"]] = self.reify(label, meta)
        for clct in folders.values():
            active.update(clct.digests())
        return active

    def registered(self) -> Iterator[tuple[str, str, Any]]:
        """``(namespace, label, meta)`` of the rows of every registry branch's leaf.

        Collections created on a branch that is not merged yet are hidden from `ls`,
        but GC and `check` must still see them.
        """
        leaves = {leaf.digests.child: leaf for leaf in self.registry.changelog.leafs()}
        for leaf in leaves.values():
            commit = leaf.commit(self.registry)
            for namespace in commit.labels():
                rows = Frame.from_segments(self.schema, commit.segments(namespace, self.pod))
                for label, meta in zip(rows["label"].tolist(), rows["meta"].tolist()):
                    yield namespace, label, meta

    def check(self) -> CheckReport:
        """Verify every revision and every data file they reference (see `lakota.check`)."""
        from .check import check_repo

        return check_repo(self)

    # Import / export

    def import_collections(self, src: Any, collections: list[str] | None = None) -> None:
        """Load collections from a folder written by `export_collections` (URI or POD)."""
        from .io import import_collections

        import_collections(self, src, collections)

    def export_collections(
        self, dest: Any, collections: list[str] | None = None, file_type: str = "csv"
    ) -> None:
        """Write collections as ``<collection>/<series>.csv|parquet`` plus ``_schema.json``."""
        from .io import export_collections

        export_collections(self, dest, collections, file_type)

    def __repr__(self) -> str:
        return f"<Repo {self.pod!r}>"


def _clean_label(label: Any) -> str:
    if not isinstance(label, str):
        raise TypeError(f"Collection label must be a string, not {type(label).__name__}")
    cleaned = label.strip()
    if not cleaned or "\x00" in cleaned or not encodable(cleaned):
        raise InvalidLabelError(f"Invalid label: {label!r}")
    return cleaned
