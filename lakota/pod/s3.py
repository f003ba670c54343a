"""Amazon S3 (and S3-compatible services: MinIO, Ceph...) storage: `S3POD`, on boto3.

Keys are the POD paths under an optional key prefix; S3 has no folders, so a folder
exists while at least one key lies under it, and the root of a POD always exists.
Credentials follow boto3's usual chain (environment, ``~/.aws``, instance roles...)
unless `key`/`secret`/`token` or a `profile` are given. They never appear in reprs,
logs or error messages.

Throttling (503 SlowDown), 5xx answers and dropped connections are retried with
exponential backoff by botocore's "standard" retry mode; a download cut in the middle
of its body is retried here. S3 requests are idempotent, and `write` without `force`
uses a conditional put (``If-None-Match: *``) so that a retried or concurrent upload
never replaces an existing file.
"""

from __future__ import annotations

import copy
import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)

from lakota.errors import StorageError
from lakota.pod.base import POD, Parts, PathLike, path_error, redact_uri, split_path
from lakota.utils import chunky, logger, pooled_map, settings

# Attempts per request (the first one included) for botocore's standard retry mode.
MAX_ATTEMPTS = 8
# Attempts to download a body again when the connection drops while reading it.
READ_ATTEMPTS = 4
# Conditional puts answered 409 (another conditional put of the key is in flight).
CONFLICT_ATTEMPTS = 6
LIST_PAGE_SIZE = 1000  # keys per ListObjectsV2 page (the most S3 returns)
DELETE_BATCH = 1000  # the most keys one DeleteObjects request accepts

_MISSING = {"NoSuchKey", "404", "NotFound"}
_DENIED = {
    "AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled",
}
_ALREADY_EXISTS = {"PreconditionFailed", "412"}
_CONFLICT = {"ConditionalRequestConflict", "409"}
_UNSUPPORTED = {"NotImplemented", "501"}
_CONDITIONAL_ANSWERS = frozenset(_ALREADY_EXISTS | _CONFLICT | _UNSUPPORTED)
_BROKEN_BODY = (
    ResponseStreamingError, IncompleteReadError, ReadTimeoutError, FlexibleChecksumError
)
_CUSTOM_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_data_loader: Any = None  # shared by every S3POD's botocore session, see _botocore_session


class S3POD(POD):
    """A POD on the keys of an S3 bucket, below an optional key prefix.

    `path` is ``bucket`` or ``bucket/prefix``. `netloc` (``host:port``, from
    ``s3://host:port/bucket``, plain http) or `endpoint_url` (``https://host:port``
    from ``s3+https://host:port/bucket``, or any URL) select an S3-compatible service;
    otherwise boto3 finds the endpoint (AWS, or ``AWS_ENDPOINT_URL_S3`` /
    ``AWS_ENDPOINT_URL``). `verify` is True, False or a CA bundle path for https;
    None (the default) means `settings.verify_ssl`. `client` reuses an existing boto3
    S3 client as is.
    """

    protocol = "s3"

    def __init__(
        self,
        path: PathLike,
        netloc: str | None = None,
        profile: str | None = None,
        verify: bool | str | None = None,
        client: Any = None,
        key: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        parts = split_path(os.fspath(path).strip("/"))
        if not parts:
            raise ValueError("An S3POD needs a bucket name")
        if netloc and endpoint_url:
            raise ValueError(
                f"Give the endpoint once: s3://{netloc}/... or endpoint_url=, not both"
            )
        if netloc:
            if "@" in netloc:
                raise ValueError("Give credentials as key= and secret=, not in the endpoint")
            endpoint_url = f"http://{netloc}"
        self.bucket, self.prefix = parts[0], parts[1:]
        self.path = PurePosixPath(*parts)
        self.endpoint_url = endpoint_url
        # How to build the client again in another process (see __getstate__).
        self._client_args = (
            None if client is not None else (endpoint_url, profile, verify, key, secret, token)
        )
        self.client = client if client is not None else _make_client(*self._client_args)
        # Shared by every sub-POD: whether the service honours If-None-Match on puts.
        self._features = {"conditional_put": True}

    def __getstate__(self) -> dict:
        """Pickle without the boto3 client (dask workers build their own)."""
        if self._client_args is None:
            raise TypeError("An S3POD built on a given boto3 client cannot be pickled")
        return {**self.__dict__, "client": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.client = _make_client(*self._client_args)

    def __copy__(self) -> S3POD:
        """A shallow copy sharing the client (pickling builds a new one, copying must not)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={redact_uri(self.endpoint_url)!r}" if self.endpoint_url else ""
        return f"S3POD({str(self.path)!r}{endpoint})"

    # --- helpers ---------------------------------------------------------------------

    def _key(self, parts: Parts) -> str:
        return "/".join(self.prefix + parts)

    def _folder(self, parts: Parts) -> str:
        """The key prefix of the keys below a folder (``""`` for the bucket root)."""
        key = self._key(parts)
        return f"{key}/" if key else ""

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextmanager
    def _errors(
        self, operation: str, key: str, passthrough: frozenset[str] = frozenset()
    ) -> Iterator[None]:
        """Turn boto3 failures into lakota errors naming the operation and the object.

        Client errors whose code is in `passthrough` are left for the caller to handle.
        """
        try:
            yield
        except ClientError as exc:
            if _code(exc) in passthrough:
                raise
            raise self._client_error(exc, operation, key) from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StorageError(
                f"No usable AWS credentials for S3 {operation} of {self._url(key)}: configure "
                "boto3 (environment variables, ~/.aws files, a role) or give key= and secret= "
                "in the s3:// URI"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {operation} of {self._url(key)} failed: {exc}") from exc

    def _client_error(self, exc: ClientError, operation: str, key: str) -> OSError:
        code = _code(exc)
        if code in _MISSING:
            return path_error(errno.ENOENT, self._url(key))
        if code == "NoSuchBucket":
            return StorageError(
                f"S3 bucket {self.bucket!r} does not exist (S3 {operation} of {self._url(key)})"
            )
        if code in _DENIED:
            return StorageError(
                f"Access denied ({code}) for S3 {operation} of {self._url(key)} in bucket "
                f"{self.bucket!r}: check the credentials and the bucket policy"
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return StorageError(f"S3 {operation} of {self._url(key)} failed: {code} {message}".rstrip())

    def _head(self, key: str, operation: str = "isfile") -> bool:
        """True if the object exists (a HEAD request: nothing is downloaded)."""
        try:
            with self._errors(operation, key):
                self.client.head_object(Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return False
        return True

    def _pages(self, prefix: str, operation: str, **options: Any) -> Iterator[dict]:
        """ListObjectsV2 pages of the keys starting with `prefix` (any number of keys)."""
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(operation, prefix):
            yield from paginator.paginate(
                Bucket=self.bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": LIST_PAGE_SIZE},
                **options,
            )

    def _keys_under(self, parts: Parts, operation: str) -> list[str]:
        return [
            item["Key"]
            for page in self._pages(self._folder(parts), operation)
            for item in page.get("Contents", ())
        ]

    def _has_keys_under(self, parts: Parts, operation: str) -> bool:
        prefix = self._folder(parts)
        with self._errors(operation, prefix):
            found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return found.get("KeyCount", 0) > 0

    def _delete(self, keys: list[str], operation: str) -> None:
        """Delete keys with batched DeleteObjects requests, run on the shared pool."""

        def delete_batch(batch: list[str]) -> None:
            with self._errors(operation, batch[0]):
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            failed = answer.get("Errors", [])
            if failed:
                first = failed[0]
                raise StorageError(
                    f"S3 {operation} could not delete {len(failed)} object(s), first "
                    f"{self._url(first.get('Key', '?'))}: {first.get('Code')} "
                    f"{first.get('Message', '')}".rstrip()
                )

        pooled_map(delete_batch, list(chunky(keys, DELETE_BATCH)))

    def _copy(self, source: str, target: str) -> None:
        with self._errors("mv", source):
            self.client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
            )

    def _put(self, key: str, data: bytes, **conditions: str) -> None:
        with self._errors("write", key):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **conditions)

    def _put_new(self, key: str, data: bytes) -> bool:
        """Upload unless the key exists, atomically where the service supports it."""
        attempt = 1
        while self._features["conditional_put"]:
            try:
                with self._errors("write", key, passthrough=_CONDITIONAL_ANSWERS):
                    self.client.put_object(
                        Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*"
                    )
                return True
            except ClientError as exc:
                code = _code(exc)
                if code in _ALREADY_EXISTS:
                    return False
                if code in _UNSUPPORTED:
                    logger.debug("%r: no conditional puts on this service, using HEAD + PUT", self)
                    self._features["conditional_put"] = False
                elif attempt >= CONFLICT_ATTEMPTS:
                    raise self._client_error(exc, "write", key) from exc
                else:  # another conditional put of this key is in flight: wait for it
                    time.sleep(0.05 * 2**attempt)
                    attempt += 1
        self._put(key, data)
        return True

    # --- POD hooks -------------------------------------------------------------------

    def _cd(self, parts: Parts) -> S3POD:
        sub = copy.copy(self)  # shares the client, its connection pool and retry quota
        sub.prefix = self.prefix + parts
        sub.path = PurePosixPath(self.bucket, *sub.prefix)
        return sub

    def _scan(self, parts: Parts) -> list[tuple[str, bool]]:
        prefix = self._folder(parts)
        entries: set[tuple[str, bool]] = set()
        for page in self._pages(prefix, "ls", Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                entries.add((common["Prefix"][len(prefix) :].rstrip("/"), True))
            for item in page.get("Contents", ()):
                entries.add((item["Key"][len(prefix) :], False))
        # "" comes from "folder/" marker objects (made by some consoles) and from "a//b"
        return sorted(entry for entry in entries if entry[0])

    def _ls(self, parts: Parts) -> list[str]:
        """S3 has no folders: a missing prefix lists as empty (as in lakota 0.7.1)."""
        names = sorted({name for name, _ in self._scan(parts)})
        if names or not parts or not self._head(self._key(parts), "ls"):
            return names
        raise path_error(errno.ENOTDIR, self._url(self._key(parts)))

    def _walk_files(self, max_depth: int | None) -> Iterator[str]:
        """One flat listing of every key below the root, instead of a listing per folder."""
        prefix = self._folder(())
        for page in self._pages(prefix, "walk"):
            for item in page.get("Contents", ()):
                relpath = item["Key"][len(prefix) :]
                names = relpath.split("/")
                if "" in names:  # not a file path: a folder marker or "a//b"
                    continue
                if max_depth is None or len(names) <= max_depth:
                    yield relpath

    def _read(self, parts: Parts) -> bytes:
        key = self._key(parts)
        try:
            return self._download(key)
        except FileNotFoundError:
            if parts and self._has_keys_under(parts, "read"):
                raise path_error(errno.EISDIR, self._url(key)) from None
            raise

    def _download(self, key: str) -> bytes:
        """GET an object; a body cut while being read is downloaded again."""
        attempt = 1
        while True:
            with self._errors("read", key):
                answer = self.client.get_object(Bucket=self.bucket, Key=key)
                try:
                    return answer["Body"].read()
                except _BROKEN_BODY:
                    if attempt >= READ_ATTEMPTS:
                        raise
            logger.debug("%r: download of %s cut, trying again", self, key)
            attempt += 1

    def _write(self, parts: Parts, data: bytes, force: bool) -> int | None:
        key = self._key(parts)
        if not parts:
            raise path_error(errno.EISDIR, self._url(key))
        if force:
            self._put(key, data)
        elif self._head(key, "write") or not self._put_new(key, data):
            return None
        return len(data)

    def _isdir(self, parts: Parts) -> bool:
        return not parts or self._has_keys_under(parts, "isdir")

    def _isfile(self, parts: Parts) -> bool:
        return bool(parts) and self._head(self._key(parts))

    def _rm(self, parts: Parts, recursive: bool) -> None:
        key = self._key(parts)
        if parts and self._head(key, "rm"):
            with self._errors("rm", key):
                self.client.delete_object(Bucket=self.bucket, Key=key)
            return
        if not recursive:
            if self._has_keys_under(parts, "rm"):
                raise path_error(errno.ENOTEMPTY, self._url(key))
            if parts:
                raise path_error(errno.ENOENT, self._url(key))
            return
        keys = self._keys_under(parts, "rm")
        if not keys and parts:
            raise path_error(errno.ENOENT, self._url(key))
        self._delete(keys, "rm")

    def _mv(self, src: Parts, dst: Parts) -> None:
        source, target = self._key(src), self._key(dst)
        if dst[: len(src)] == src:
            if src == dst and (self._isfile(src) or self._isdir(src)):
                return
            raise path_error(errno.EINVAL, self._url(target))
        try:
            self._copy(source, target)
        except FileNotFoundError:
            keys = self._keys_under(src, "mv")
            if not keys:
                raise
        else:
            with self._errors("mv", source):
                self.client.delete_object(Bucket=self.bucket, Key=source)
            return
        start = len(source) + 1
        pooled_map(lambda key: self._copy(key, f"{target}/{key[start:]}"), keys)
        self._delete(keys, "mv")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _make_client(
    endpoint_url: str | None,
    profile: str | None,
    verify: bool | str | None,
    key: str | None,
    secret: str | None,
    token: str | None,
) -> Any:
    """A boto3 S3 client with retries and a connection pool sized for the shared pool.
    `verify` None means `settings.verify_ssl`, read now (when the client is made)."""
    if verify is None:
        verify = settings.verify_ssl
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        "max_pool_connections": max(10, settings.max_threads + 2),
    }
    if endpoint_url or _configured_endpoint():
        # S3-compatible services rarely resolve bucket.host names: address by path.
        options["s3"] = {"addressing_style": "path"}
    try:
        session = boto3.session.Session(
            botocore_session=_botocore_session(),
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            profile_name=profile,
        )
        return session.client(
            "s3", endpoint_url=endpoint_url, verify=verify, config=Config(**options)
        )
    except ProfileNotFound:
        raise ValueError(f"Unknown AWS profile {profile!r} (see ~/.aws/config)") from None


def _botocore_session() -> botocore.session.Session:
    """A new botocore session reusing the parsed service models of the previous ones.

    Loading the S3 model and endpoint rules costs a few hundred milliseconds per
    session; every S3POD still gets its own session (credentials, profile, retry quota).
    """
    global _data_loader
    session = botocore.session.get_session()
    if _data_loader is None:
        _data_loader = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _data_loader)
    return session


def _configured_endpoint() -> bool:
    return any(os.environ.get(name) for name in _CUSTOM_ENDPOINT_VARIABLES)

