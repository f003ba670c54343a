"""Repository check (an ``fsck``): every revision, and every data file a revision refers
to, is present and true to its digest.

```python
report = repo.check()          # or `lakota check` on the command line
report.ok                      # False when something is wrong
for problem in report.problems:
    print(problem.kind, problem.path, problem.message)
```

Problems make a repository unreadable in part: a revision file that does not match its
digest or does not decode (``revision``), a referenced data file that is absent
(``missing``), a data file that does not decode or does not match its digest
(``corrupted``), a registry row that does not describe a collection (``registry``).
Notes are harmless: unmerged branches, collections without revisions, stray files, data
files that GC will reclaim or restore.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .changelog import Changelog, Revision
from .commit import load_column
from .errors import CorruptedDataError, LakotaError, MissingDataError
from .schema import EMPTY_DIGEST, Codec
from .utils import digest_path, pooled_map

if TYPE_CHECKING:
    from .collection import Collection
    from .repo import Repo

__all__ = ["CheckReport", "Problem", "check_repo", "orphan_files"]

_collection_folder = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{36}$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong: its kind, the storage path at fault and a readable message."""

    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class CheckReport:
    """What `check_repo` found; `ok` is true when there is no problem (notes are fine)."""

    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    revisions: int = 0
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        found = f"{len(self.problems)} problem(s)" if self.problems else "OK"
        return f"Checked {self.revisions} revisions and {self.files} data files: {found}"

    def __str__(self) -> str:
        lines = [str(p) for p in self.problems] + [f"note: {n}" for n in self.notes]
        return "\n".join([*lines, self.summary()])


@dataclass
class _Reference:
    """A data file to verify: the codec of a column that uses it, and who uses it."""

    digest: str
    codec: Codec
    user: str
    length: int  # values in the commit row: bounds decoding


def check_repo(repo: Repo) -> CheckReport:
    """Read and verify every revision of the registry and of every collection (on every
    branch), then every data file they refer to."""
    report = CheckReport()
    references: dict[tuple, _Reference] = {}
    repo.refresh()
    _check_changelog(repo.registry, report, references)
    for clct in _collections(repo, report):
        _check_changelog(clct, report, references)
    _check_files(repo, references, report)
    return report


def _collections(repo: Repo, report: CheckReport) -> Iterator[Collection]:
    """The collections of every registry branch, once each; bad rows become problems."""
    seen = set()
    try:
        rows = list(repo.registered())
    except (LakotaError, OSError) as exc:
        report.problems.append(Problem("registry", str(repo.registry.changelog.pod.path), str(exc)))
        return
    for namespace, label, meta in rows:
        try:
            clct = repo.reify(label, meta)
            if not _collection_folder.match(clct.path):
                raise ValueError(f"folder {clct.path!r} is not a collection folder")
        except (LakotaError, KeyError, TypeError, ValueError) as exc:
            message = f"Registry row {label!r} (namespace {namespace!r}) is invalid: {exc}"
            report.problems.append(Problem("registry", f"{namespace}/{label}", message))
            continue
        if clct.path not in seen:
            seen.add(clct.path)
            yield clct


def _check_changelog(clct: Collection, report: CheckReport, references: dict) -> None:
    """Read every revision of `clct`; remember the data files their commits refer to."""
    changelog = clct.changelog
    names = list(changelog)
    stray = [name for name in names if not _is_revision(changelog, name)]
    if stray:
        report.notes.append(f"{clct.label}: stray file(s) ignored: {', '.join(sorted(stray))}")
    if not names and clct is not clct.repo.registry:
        report.notes.append(f"Collection {clct.label!r} has no revision yet ({clct.path})")
    log = list({rev.path: rev for rev in changelog.log()}.values())
    for rev in log:
        report.revisions += 1
        try:
            commit = rev.commit(clct)
        except (CorruptedDataError, FileNotFoundError) as exc:
            report.problems.append(Problem("revision", rev.location, str(exc)))
            continue
        for name in clct.schema:
            codec = clct.schema[name].codec
            for digest, length in zip(commit.digest[name].tolist(), commit.length.tolist()):
                if digest in commit.embedded or digest == EMPTY_DIGEST:
                    continue
                key = (digest, codec.dt.str, codec.codec_names)
                user = f"column {name!r} of {clct.label!r} in {rev.location}"
                references.setdefault(key, _Reference(digest, codec, user, length))
    heads = changelog.heads()
    if len(heads) > 1:
        report.notes.append(f"{clct.label}: {len(heads)} unmerged branches (run merge)")


def _is_revision(changelog: Changelog, name: str) -> bool:
    try:
        Revision.from_path(changelog, name)
    except ValueError:
        return False
    return True


def _check_files(repo: Repo, references: dict, report: CheckReport) -> None:
    """Decode and verify every referenced data file; count the unreferenced ones."""
    refs = list(references.values())
    report.problems.extend(p for p in pooled_map(lambda ref: _verify(repo, ref), refs) if p)
    report.files = len({ref.digest for ref in refs})
    used = {ref.digest for ref in refs}
    stored = repo.data_files()
    orphans = orphan_files(stored, used)
    restorable = [name for name in stored if "." in name and name not in orphans]
    if orphans:
        report.notes.append(f"{len(orphans)} unreferenced data file(s): gc reclaims them")
    if restorable:
        report.notes.append(f"{len(restorable)} soft-deleted data file(s) in use: gc restores them")


def orphan_files(stored: list[str], used: set[str]) -> list[str]:
    """Data file names (`Repo.data_files`) that no revision needs: unreferenced ones, and
    soft-deleted copies of a file that is also there under its own name."""
    plain = {name for name in stored if "." not in name}
    return [
        name
        for name in stored
        if name.partition(".")[0] not in used or ("." in name and name.partition(".")[0] in plain)
    ]


def _verify(repo: Repo, ref: _Reference) -> Problem | None:
    try:
        load_column(repo.pod, ref.digest, {}, ref.codec, verify=True, length=ref.length)
    except MissingDataError as exc:
        return Problem("missing", digest_path(ref.digest), f"{exc} (used by {ref.user})")
    except CorruptedDataError as exc:
        return Problem("corrupted", digest_path(ref.digest), f"{exc} (used by {ref.user})")
    return None
