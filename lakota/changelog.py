"""The changelog: the revision files of one collection and the rules to walk them.

Each revision is a file named ``<parent>.<child>`` where both sides are
``<hextime>-<sha1 of the commit payload>``; the file holds the child's payload.
Revisions form a DAG rooted at `phi`. Concurrent writers fork it; `merge` joins it.
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from .errors import CorruptedDataError, UnreadableRevisionError
from .revinfo import read_info
from .utils import hexdigest, hextime, logger, pooled_map

if TYPE_CHECKING:
    from .commit import Commit
    from .pod import POD

__all__ = ["Changelog", "Revision", "phi", "zero_hash", "zero_hextime"]

zero_hextime = "0" * 11
zero_hash = "0" * 40
phi = f"{zero_hextime}-{zero_hash}"
_side = r"[0-9a-f]{11}-[0-9a-f]{40}"
_revision_name = re.compile(rf"^({_side})\.({_side})$")
_any_revision_name = re.compile(r"^([0-9a-f]+-[0-9a-f]+)\.([0-9a-f]+-[0-9a-f]+)$")
_read_retries = (0.1, 0.2, 0.3, 0.4)
_max_jitter = 0.01  # seconds, for `Changelog.commit(_jitter=True)`


class RevDigest(NamedTuple):
    parent: str
    child: str


class Revision:
    """One revision file: the edge from `parent` to `child`."""

    def __init__(self, changelog: Changelog, parent: str, child: str) -> None:
        self.changelog = changelog
        self.parent = parent
        self.child = child
        self.is_leaf = False
        self._payload: bytes | None = None

    @classmethod
    def from_path(cls, changelog: Changelog, path: str) -> Revision:
        """The revision named by a file name or by a path ending with one (as `walk` yields)."""
        match = _any_revision_name.match(path.rsplit("/", 1)[-1])
        if match is None:
            raise ValueError(f"Not a revision file name: {path!r}")
        return cls(changelog, *match.groups())

    @property
    def path(self) -> str:
        return f"{self.parent}.{self.child}"

    @property
    def epoch(self) -> str:
        """The child's hextime (when this revision was written)."""
        return self.child.partition("-")[0]

    @property
    def digests(self) -> RevDigest:
        """The payload digests of the parent and of the child."""
        return RevDigest(self.parent.partition("-")[2], self.child.partition("-")[2])

    def read(self) -> bytes:
        """The commit payload, checked against the digest in the file name."""
        if self._payload is None:
            self._payload = self._read_verified()
        return self._payload

    def _read_verified(self) -> bytes:
        expected = self.digests.child
        for delay in (*_read_retries, None):
            payload = self.changelog.pod.read(self.path)
            if hexdigest(payload) == expected:
                return payload
            if delay is None:
                break
            time.sleep(delay)
        raise UnreadableRevisionError(
            f"Unable to read revision {self.location}: content does not match its digest"
        )

    def commit(self, collection) -> Commit:
        from .commit import Commit

        payload = self.read()
        try:
            return Commit.decode(collection.schema, payload)
        except CorruptedDataError as exc:
            raise CorruptedDataError(f"Revision {self.location}: {exc}") from exc

    # Who and why (see lakota.revinfo); empty for revisions written without metadata

    @property
    def info(self) -> dict:
        """``{"author", "message", "meta"}`` recorded in the payload."""
        return read_info(self.read())

    @property
    def author(self) -> str:
        return self.info["author"]

    @property
    def message(self) -> str:
        return self.info["message"]

    @property
    def meta(self) -> dict:
        return self.info["meta"]

    @property
    def tags(self) -> list[str]:
        """Names of the tags pointing at this revision (see `Collection.tag`)."""
        lookup = self.changelog.tag_lookup
        return lookup(self) if lookup is not None else []

    @property
    def date(self) -> datetime:
        """When this revision was written (local time, from its epoch)."""
        return datetime.fromtimestamp(int(self.epoch, 16) / 1000)

    @property
    def location(self) -> str:
        """Where the revision file is, for messages."""
        return f"{self.changelog.pod.path / self.path}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Revision) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"<Revision {self.path}{' *' if self.is_leaf else ''}>"


class Changelog:
    """The revision files of one collection folder."""

    def __init__(self, pod: POD) -> None:
        self.pod = pod
        self._log: list[Revision] | None = None
        self._names: set[str] = set()
        self._stale = True
        self._token: object | None = None
        self.tag_lookup: Callable[[Revision], list[str]] | None = None  # set by Collection

    def __iter__(self) -> Iterator[str]:
        return iter(self.pod.ls(missing_ok=True))

    def refresh(self) -> None:
        """Mark the cached log stale: the next read lists the folder again."""
        self._stale = True

    def _update(self) -> None:
        """List the folder; extend the cached log when the only news is a child of the leaf.

        The listing is skipped when the storage tells that the folder did not change.
        """
        token = self.pod.change_token()
        if token is not None and token == self._token and self._log is not None:
            self._stale = False
            return
        self._token = token
        names = {name.rsplit("/", 1)[-1] for name in self}
        added = names - self._names
        if self._log is not None and not (self._names - names):
            if not added or self._extend(added):
                self._names, self._stale = names, False
                return
        self._log = self._walk(self._revisions(names))
        self._names, self._stale = names, False

    def _extend(self, added: set[str]) -> bool:
        """Append a single new revision whose parent is the last revision of the log."""
        if len(added) != 1 or not self._log:
            return False
        match = _revision_name.match(next(iter(added)))
        last = self._log[-1]
        if match is None or match.group(1) != last.child or not last.is_leaf:
            return False
        self._log[-1] = _copy(last, is_leaf=False)
        new = Revision(self, *match.groups())
        new.is_leaf = True
        self._log.append(new)
        return True

    # Walking

    def log(self, before: str | datetime | None = None) -> list[Revision]:
        """Revisions in depth-first order (oldest root first, oldest child first).

        With `before`, only the revisions written strictly before that time are kept,
        and leaves are recomputed among them: the log as it was at that time.
        """
        self._ensure_log()
        if before is None:
            return list(self._log)
        cutoff = _as_hextime(before)
        return self._walk([r for r in self._log if r.epoch < cutoff])

    def _ensure_log(self) -> None:
        """Bring the cached log up to date when it may be stale."""
        if self._stale or self._log is None:
            self._update()

    def _revisions(self, names: set[str]) -> list[Revision]:
        revisions = []
        for name in sorted(names):
            match = _revision_name.match(name)
            if match is None:
                logger.debug("Ignore stray file %s in %s", name, self.pod.path)
                continue
            parent, child = match.groups()
            if parent != child:
                revisions.append(Revision(self, parent, child))
        return revisions

    def _walk(self, revisions: list[Revision]) -> list[Revision]:
        children = defaultdict(list)
        child_names = set()
        for rev in sorted(revisions, key=lambda r: r.path):
            children[rev.parent].append(rev)
            child_names.add(rev.child)
        roots = [p for p in children if p not in child_names]
        result: list[Revision] = []
        visited: set[str] = set()
        stack = [rev for root in reversed(roots) for rev in reversed(children[root])]
        while stack:
            rev = stack.pop()
            result.append(_copy(rev, is_leaf=not children.get(rev.child)))
            if rev.child in visited:
                continue
            visited.add(rev.child)
            stack.extend(reversed(children.get(rev.child, [])))
        return result

    def leaf(self, before: str | datetime | None = None) -> Revision | None:
        """The revision reads and writes start from: the last leaf in log order."""
        if before is None:
            self._ensure_log()
            revisions = self._log
        else:
            revisions = self.log(before)
        for rev in reversed(revisions):
            if rev.is_leaf:
                return rev
        return None

    def leafs(self) -> list[Revision]:
        """Every revision without a child, in log order."""
        return [rev for rev in self.log() if rev.is_leaf]

    def heads(self) -> list[Revision]:
        """Leaves whose content is not already in the history of a later leaf.

        A merge writes the same payload under each head it joins; later writes continue
        from one copy, so the other copies are leaves that hold nothing new.
        """
        log = self.log()
        leafs = [rev for rev in log if rev.is_leaf]
        by_child = defaultdict(list)
        for rev in log:
            by_child[rev.child].append(rev)
        heads: list[Revision] = []
        for leaf in leafs:
            digest = leaf.digests.child
            if digest in {h.digests.child for h in heads}:
                continue
            others = [o for o in leafs if o.digests.child != digest]
            if any(digest in _ancestor_digests(o, by_child) for o in others):
                continue
            heads.append(leaf)
        return heads

    # Writing

    def commit(
        self, payload: bytes, parents: list[str] | None = None, _jitter: bool = False
    ) -> list[Revision]:
        """Write `payload` as the child of every parent (default: the leaf, or phi).

        `_jitter` is a test hook: sleep a random moment first, to shuffle concurrent writers.
        """
        if _jitter:
            time.sleep(random.uniform(0, _max_jitter))
        if parents is None:
            leaf = self.leaf()
            parents = [leaf.child if leaf else phi]
        key = hexdigest(payload)
        token_before = self.pod.change_token()
        revisions, used = [], set()
        for parent in parents:
            if parent[12:] == key:
                continue
            stamp = _next_hextime(parent, used)
            used.add(stamp)
            rev = Revision(self, parent, f"{stamp}-{key}")
            self.pod.write(rev.path, payload)
            rev._payload = payload
            revisions.append(rev)
        self._record_own(revisions, token_before)
        return revisions

    def _record_own(self, revisions: list[Revision], token_before: object | None) -> None:
        """Add a revision this object just wrote on its leaf to the cached log.

        Only when the storage tells that nobody changed the folder since this object
        last looked (`POD.change_token`): the next write then needs no listing. A
        concurrent writer slipping in between would only make a fork, which `merge`
        joins.
        """
        token = self.pod.change_token()
        if (
            token is not None
            and token_before == self._token
            and len(revisions) == 1
            and not self._stale
            and self._extend({revisions[0].path})
        ):
            self._names.add(revisions[0].path)
            self._token = token
        else:
            self.refresh()

    def pull(self, remote: Changelog, shallow: bool = False) -> list[str]:
        """Copy the remote revisions (only its leaves if `shallow`) missing here."""
        local = {rev.digests for rev in self.log()}
        wanted = remote.leafs() if shallow else remote.log()
        missing = list({rev.path: rev for rev in wanted if rev.digests not in local}.values())

        def copy(rev: Revision) -> str:
            self.pod.write(rev.path, rev.read())
            return rev.path

        copied = pooled_map(copy, missing)
        self.refresh()
        return copied

    def __repr__(self) -> str:
        return f"<Changelog {self.pod!r}>"


def _copy(rev: Revision, is_leaf: bool) -> Revision:
    clone = Revision(rev.changelog, rev.parent, rev.child)
    clone.is_leaf = is_leaf
    clone._payload = rev._payload
    return clone


def _ancestor_digests(rev: Revision, by_child: dict[str, list[Revision]]) -> set[str]:
    """Child digests of `rev`'s strict ancestors."""
    found, stack, seen = set(), [rev.parent], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        found.add(node[12:])
        stack.extend(r.parent for r in by_child.get(node, []))
    return found


def _next_hextime(parent: str, used: set[str]) -> str:
    """Now, but always after the parent and distinct from stamps already used."""
    stamp = max(int(hextime(), 16), int(parent[:11], 16) + 1)
    while (text := format(stamp, "x").rjust(11, "0")) in used:
        stamp += 1
    return text


def _as_hextime(before: str | datetime) -> str:
    if isinstance(before, datetime):
        return hextime(before.timestamp())
    if isinstance(before, str):
        return before
    raise TypeError(f"before must be a hextime string or a datetime, not {type(before).__name__}")
