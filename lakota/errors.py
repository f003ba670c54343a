"""The exceptions lakota raises.

Every error derives from `LakotaError`; each specific error also derives from the
builtin that callers would naturally catch (`ValueError`, `KeyError`,
`FileNotFoundError`...), so existing ``except`` clauses keep working.
"""


class LakotaError(Exception):
    """Base class of every error raised on purpose by lakota."""


class SchemaError(LakotaError, ValueError):
    """A schema definition, or data that does not fit a schema."""


class FrameError(LakotaError, ValueError):
    """A frame that cannot be built or written: unsorted, ragged, badly typed."""


class EmptyFrameError(FrameError, IndexError):
    """An empty frame where rows are needed (for example to infer write bounds)."""


class ExpressionError(LakotaError, ValueError):
    """An s-expression that cannot be parsed or evaluated."""


class InvalidLabelError(LakotaError, ValueError):
    """A collection or series label that cannot be used."""


class CollectionExistsError(LakotaError, ValueError):
    """A collection is created or renamed onto a label that is already taken."""


class CollectionNotFoundError(LakotaError, KeyError, ValueError):
    """A collection label that the registry does not know.

    Also a `ValueError`: lakota 0.7.1 raised one there (`Repo.rename`, `pull`...).
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnsafePathError(LakotaError, ValueError):
    """A storage path that would leave the root of its POD."""


class MissingDataError(LakotaError, FileNotFoundError):
    """A file that a revision references is not in the storage."""


class CorruptedDataError(LakotaError, ValueError):
    """A stored file whose content does not match its digest."""


class UnreadableRevisionError(CorruptedDataError, RuntimeError):
    """A revision file that still does not match its digest after the read retries.

    Also a `RuntimeError`, which lakota 0.7.1 raised there.
    """


class StorageError(LakotaError, OSError):
    """A storage backend failed in a way that is not a missing file."""


class ProtocolError(StorageError):
    """A server answered something that does not follow the HTTP protocol of lakota."""


class TagExistsError(LakotaError, ValueError):
    """A tag name that is already taken (pass ``force=True`` to move it)."""


class TagNotFoundError(LakotaError, KeyError):
    """A tag name that is not defined."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TagConflictError(LakotaError, ValueError):
    """Push or pull found one tag name on two different revisions."""


class RevisionNotFoundError(LakotaError, KeyError):
    """An `at=` or `since=` that names no revision of the collection."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
