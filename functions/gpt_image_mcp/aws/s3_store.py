"""`ImageStore` on S3: each user's images live under `users/{user}/` in one private bucket.

`core.sandbox` decides which keys are well formed, exactly as locally; this module maps them under the user's prefix.
A caller may also name a key by its full form, `users/{user}/...` or `s3://{bucket}/users/{user}/...`, when that is
their own folder; any other user's folder or another bucket is refused. Links are presigned GET URLs.

A name is claimed atomically with a conditional PUT (`If-None-Match: *`), so a saved image is never overwritten,
even by concurrent saves of the same name. Presigned uploads (POST) cannot carry that condition; see
`presigned_upload`.

Note for links: a presigned URL stops working when the credentials that signed it expire. In Lambda those are the
role's session credentials (valid for a few hours), so a link may die before `link_expiry_seconds` when that is long.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypedDict
from urllib.parse import quote

from gpt_image_mcp.aws.identity import validate_user_id
from gpt_image_mcp.aws.limits import LINK_EXPIRY_MAX
from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError, SandboxError
from gpt_image_mcp.core.sandbox import (
    MAX_CANDIDATES,
    candidate_names,
    normalize_directory,
    normalize_key,
    with_format_extension,
)
from gpt_image_mcp.core.sizes import human_size
from gpt_image_mcp.core.storage import ListedImage, StoredImage

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
UPLOAD_CONTENT_TYPES: dict[str, str] = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp"}
MAX_S3_KEY_BYTES = 1024
MAX_PRESIGN_SECONDS = LINK_EXPIRY_MAX
# 412: the name exists. 409: another conditional write of the same name is in flight; either way try the next name.
_NAME_TAKEN = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class PresignedUpload(TypedDict):
    """A browser-style POST upload: send `fields` plus the file (form field `file`, last) to `url`."""

    url: str
    fields: dict[str, str]
    key: str  # relative to the user's folder: what to pass later as reference_image_path
    location: str
    content_type: str
    max_bytes: int
    expires_in: int


def _error_code(error: Exception) -> tuple[str, int]:
    response: dict[str, Any] = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


class S3ImageStore:
    """Images of every user in `bucket`, each under `users/{user}/`; links live `link_expiry_seconds`."""

    list_page_size = 1000  # objects per ListObjectsV2 request (S3's maximum); tests lower it to exercise paging

    def __init__(
        self,
        s3_client: Any,
        bucket: str,
        link_expiry_seconds: int = 3600,
        *,
        server_side_encryption: str | None = "AES256",
    ) -> None:
        self._s3 = s3_client
        self.bucket = bucket
        self.link_expiry_seconds = link_expiry_seconds
        self._sse = server_side_encryption

    # ImageStore

    def save(self, user: str, key: str, data: bytes, content_type: str) -> StoredImage:
        """Claim the first free name among `candidate_names` with a conditional PUT; never overwrite."""
        from botocore.exceptions import ClientError

        relative = self.check_key(user, key)
        taken: set[str] | None = None
        for name in candidate_names(relative):
            if taken is not None and name in taken:
                continue
            full = self._full_key(user, name, key, "output_path")
            try:
                self._s3.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=data,
                    ContentType=content_type,
                    IfNoneMatch="*",
                    **self._sse_args(),
                )
            except ClientError as error:
                if _error_code(error)[0] not in _NAME_TAKEN:
                    raise
                if taken is None:  # one listing instead of uploading the bytes again for every taken name
                    taken = self._existing_names(user, relative)
                continue
            return StoredImage(
                key=name, location=self._location(user, name), link=self._presign(full), size_bytes=len(data)
            )
        raise InvalidArgumentError(
            f"output_path {key!r}: {relative!r} and its {MAX_CANDIDATES - 1} numbered variants are taken in "
            f"{self._folder(user)}; choose another name."
        )

    def check_key(self, user: str, key: str, expected_bytes: int = 0) -> str:
        """The relative key `save` would start from; raises `SandboxError` before any paid work is done.
        A bucket has no folder to fill, so `expected_bytes` asks nothing of it."""
        relative = self._relative(user, key, "output_path")
        self._full_key(user, relative, key, "output_path")
        return relative

    def delete(self, user: str, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self._full_key(user, key, key, "key"))

    def read_input(self, user: str, path: str, max_bytes: int) -> bytes:
        return self._read(user, path, max_bytes, "input path")

    def read_output(self, user: str, path: str, max_bytes: int) -> bytes:
        return self._read(user, path, max_bytes, "image_path")

    def list_images(self, user: str, directory: str | None, limit: int) -> list[ListedImage]:
        """Every object under the folder is listed (1000 per request) to sort newest first; cost grows with it."""
        root = self._root(user)
        relative = self._relative(user, directory, "directory", directory=True)
        prefix = root + (relative + "/" if relative else "")
        found: list[tuple[datetime, str, int]] = []
        seen_any = False
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}
        ):
            for item in page.get("Contents", []):
                seen_any = True
                full: str = item["Key"]
                if PurePosixPath(full).suffix.lower() in IMAGE_SUFFIXES:
                    found.append((item["LastModified"], full[len(root) :], int(item["Size"])))
        if relative and not seen_any:
            raise NotFoundError(f"directory {directory!r} was not found in {self._folder(user)}.")
        return [
            ListedImage(
                key=key,
                location=self._location(user, key),
                link=self._presign(root + key),
                size_bytes=size,
                modified=modified.astimezone(UTC).isoformat(timespec="seconds"),
            )
            for modified, key, size in heapq.nlargest(max(limit, 0), found)
        ]

    def link_for(self, user: str, key: str) -> str:
        relative = self._relative(user, key, "key")
        full = self._full_key(user, relative, key, "key")
        self._head(full, key, "key", user)
        return self._presign(full)

    # uploads

    def presigned_upload(self, user: str, key: str, content_type: str, max_bytes: int, expires: int) -> PresignedUpload:
        """A presigned POST that only accepts `content_type` and 1..`max_bytes` bytes, at a currently free name.

        The key's extension is made to match the content type ('photo.jpg' as image/png becomes 'photo.png').
        S3 cannot make a POST conditional, so the free name is checked when the link is made: a save of the same
        name between then and the upload would be overwritten by it (both are the same user's own files).
        """
        image_format = UPLOAD_CONTENT_TYPES.get(content_type)
        if image_format is None:
            raise InvalidArgumentError(
                f"content_type {content_type!r} is not accepted; use one of {', '.join(UPLOAD_CONTENT_TYPES)}."
            )
        if max_bytes < 1:
            raise InvalidArgumentError(f"max_bytes must be at least 1, not {max_bytes}.")
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise InvalidArgumentError(f"expires must be 1-{MAX_PRESIGN_SECONDS} seconds, not {expires}.")
        relative = with_format_extension(self._relative(user, key, "key"), image_format)
        taken = self._existing_names(user, relative)
        name = next((candidate for candidate in candidate_names(relative) if candidate not in taken), None)
        if name is None:
            raise InvalidArgumentError(f"key {key!r}: every name like {relative!r} is taken; choose another name.")
        full = self._full_key(user, name, key, "key")
        fields = {"Content-Type": content_type}
        conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]]
        if self._sse:
            fields["x-amz-server-side-encryption"] = self._sse
            conditions.append({"x-amz-server-side-encryption": self._sse})
        post = self._s3.generate_presigned_post(
            Bucket=self.bucket, Key=full, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
        return PresignedUpload(
            url=post["url"],
            fields=dict(post["fields"]),
            key=name,
            location=self._location(user, name),
            content_type=content_type,
            max_bytes=max_bytes,
            expires_in=expires,
        )

    # helpers

    def _root(self, user: str) -> str:
        return f"users/{validate_user_id(user)}/"

    def _folder(self, user: str) -> str:
        return f"s3://{self.bucket}/{self._root(user)}"

    def _location(self, user: str, key: str) -> str:
        return f"s3://{self.bucket}/{self._root(user)}{key}"

    def _sse_args(self) -> dict[str, str]:
        return {"ServerSideEncryption": self._sse} if self._sse else {}

    def _relative(self, user: str, raw: str | None, what: str, *, directory: bool = False) -> str:
        """The key relative to the user's folder; full forms naming the user's own folder are accepted."""
        root = self._root(user)
        text = raw
        if isinstance(raw, str):
            slashed = raw.replace("\\", "/")
            full: str | None = None
            if slashed.startswith("s3://"):
                bucket, _, full = slashed[len("s3://") :].partition("/")
                if bucket != self.bucket:
                    raise SandboxError(
                        f"{what} {raw!r} is not in this server's bucket; give a key inside your folder "
                        f"{self._folder(user)}, such as 'folder/image.png'."
                    )
            elif slashed.startswith(("users/", "/users/")) or slashed in ("users", "/users"):
                full = slashed.removeprefix("/")
            if full is not None:
                if full.rstrip("/") + "/" == root:
                    if not directory:
                        raise SandboxError(f"{what} {raw!r} names your folder itself; add a file name.")
                    return ""
                if not full.startswith(root):
                    raise SandboxError(
                        f"{what} {raw!r} is outside your folder {self._folder(user)}; "
                        "give a key inside it, such as 'folder/image.png'."
                    )
                text = full[len(root) :]
        if directory:
            return normalize_directory(text, what=what)
        return normalize_key(text if text is not None else "", what=what)

    def _full_key(self, user: str, relative: str, raw: str, what: str) -> str:
        full = self._root(user) + relative
        if len(full.encode("utf-8")) > MAX_S3_KEY_BYTES:
            raise SandboxError(f"{what} {raw!r} is too long for S3 (keys are at most {MAX_S3_KEY_BYTES} bytes).")
        return full

    def _existing_names(self, user: str, relative: str) -> set[str]:
        """Relative keys that start like `relative`'s stem (its candidate names included)."""
        root = self._root(user)
        path = PurePosixPath(relative)
        stem_prefix = root + str(path.with_name(path.stem))
        names: set[str] = set()
        for page in self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=stem_prefix, PaginationConfig={"PageSize": self.list_page_size}
        ):
            names.update(item["Key"][len(root) :] for item in page.get("Contents", []))
        return names

    def _head(self, full: str, raw: str, what: str, user: str) -> dict[str, Any]:
        """HEAD the object; a missing key is `NotFoundError`.

        403 counts as missing: without an unconditional s3:ListBucket grant (the template grants it only with an
        `s3:prefix` condition, which HEAD does not carry), S3 answers 403 rather than 404 for a key that is not there.
        """
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self._s3.head_object(Bucket=self.bucket, Key=full)
        except ClientError as error:
            code, status = _error_code(error)
            if code in _MISSING or status in (403, 404):
                raise NotFoundError(f"{what} {raw!r} was not found in {self._folder(user)}.") from None
            raise
        return head

    def _read(self, user: str, path: str, max_bytes: int, what: str) -> bytes:
        """HEAD first to refuse a large object without downloading it, then read at most `max_bytes` + 1."""
        from botocore.exceptions import ClientError

        relative = self._relative(user, path, what)
        full = self._full_key(user, relative, path, what)
        size = int(self._head(full, path, what, user).get("ContentLength", 0))
        if size > max_bytes:
            raise InvalidArgumentError(f"{what} {path!r} is {human_size(size)}; the limit is {human_size(max_bytes)}.")
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=full)
        except ClientError as error:
            code, status = _error_code(error)
            if code in _MISSING or status in (403, 404):
                raise NotFoundError(f"{what} {path!r} was not found in {self._folder(user)}.") from None
            raise
        body = response["Body"]
        try:
            data: bytes = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:  # replaced by a larger upload after the HEAD
            raise InvalidArgumentError(f"{what} {path!r} is over the limit of {human_size(max_bytes)}.")
        return data

    def _presign(self, full: str) -> str:
        name = PurePosixPath(full).name
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": full,
                "ResponseContentDisposition": f"inline; filename*=UTF-8''{quote(name, safe='')}",
            },
            ExpiresIn=self.link_expiry_seconds,
        )
        return url
