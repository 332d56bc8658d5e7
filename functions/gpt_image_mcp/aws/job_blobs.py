"""Side data of jobs in S3, next to the user's images: `users/{user}/.jobs/...`.

Two things do not belong in a DynamoDB job item:

* arguments too big for an item (DynamoDB caps items at 400 KB; a reference image as base64 is easily more):
  `users/{user}/.jobs/{job_id}.json`, written by the MCP function, read by the worker and by `get_job_result`;
* the images OpenAI returned, kept from right after the call until the job is settled (`S3UpstreamCache`):
  `users/{user}/.jobs/{job_id}/upstream`, so a worker that dies while saving is followed by a re-run that does not
  pay OpenAI a second time.

Both live under the user's own prefix, so the functions' existing `users/*` grants cover them and the bucket's
lifecycle rule expires whatever is left behind. None of these keys has an image extension: `list_generated_images`
does not show them, and a user cannot write them (saves and uploads always end in .png/.jpeg/.webp).

Import direction: aws.job_blobs -> aws.identity, core.upstream; boto3 is only passed in.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from gpt_image_mcp.aws.identity import validate_user_id
from gpt_image_mcp.core.upstream import UpstreamResult

log = logging.getLogger(__name__)

JOBS_FOLDER = ".jobs"
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def checked_job_id(job_id: str) -> str:
    """`job_id` when it is safe inside an S3 key (the server makes UUIDs); ValueError otherwise."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"job id {job_id!r} cannot be part of a storage key")
    return job_id


def _code(error: Exception) -> str:
    response: dict[str, Any] = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3JobBlobs:
    """Objects under `users/{user}/.jobs/` in the images bucket."""

    def __init__(self, s3_client: Any, bucket: str, *, server_side_encryption: str | None = "AES256") -> None:
        self._s3 = s3_client
        self.bucket = bucket
        self._sse = server_side_encryption

    def key(self, user: str, name: str) -> str:
        return f"users/{validate_user_id(user)}/{JOBS_FOLDER}/{name}"

    def put(self, user: str, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        key = self.key(user, name)
        extra = {"ServerSideEncryption": self._sse} if self._sse else {}
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra)
        return key

    def link(self, user: str, name: str, expires_in: int) -> str:
        """A presigned GET link to the object."""
        params = {"Bucket": self.bucket, "Key": self.key(user, name)}
        url: str = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    def get(self, user: str, name: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=self.key(user, name))
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def delete(self, user: str, names: Iterable[str]) -> None:
        """Delete in the order given (a batch deletes in order too); missing objects are not an error."""
        keys = [{"Key": self.key(user, name)} for name in names]
        for start in range(0, len(keys), 1000):
            response = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
            )
            errors = response.get("Errors") or []
            if errors:
                codes = ", ".join(sorted({str(e.get("Code")) for e in errors}))
                raise RuntimeError(f"{len(errors)} job object(s) were not deleted ({codes})")


class S3UpstreamCache:
    """`core.jobs.UpstreamCache` on S3: one object per job, `{job_id}/upstream`, written whole or not at all.

    The object is the answer's manifest as one line of JSON (with each image's length), a newline, then the image
    bytes one after another. One PUT keeps an answer, one GET reads it back (only on a re-run), one DELETE drops it
    with the job's latest partial image (`{job_id}/preview`) when the job is settled (that needs `s3:DeleteObject`;
    without it the objects stay until the bucket's lifecycle rule expires them).
    """

    def __init__(self, blobs: S3JobBlobs, *, link_expiry_seconds: int = 3600) -> None:
        self.blobs = blobs
        self.link_expiry_seconds = link_expiry_seconds

    @staticmethod
    def _name(job_id: str) -> str:
        return f"{checked_job_id(job_id)}/upstream"

    @staticmethod
    def _preview(job_id: str) -> str:
        return f"{checked_job_id(job_id)}/preview"

    def keep_preview(self, user: str, job_id: str, data: bytes) -> str:
        """The latest partial image (one PUT, replacing the last) and a presigned link to it."""
        from gpt_image_mcp.core.imageinfo import MIME_TYPES, sniff

        self.blobs.put(user, self._preview(job_id), data, MIME_TYPES[sniff(data).format])
        return self.blobs.link(user, self._preview(job_id), self.link_expiry_seconds)

    def read_preview(self, user: str, job_id: str) -> bytes | None:
        return self.blobs.get(user, self._preview(job_id))

    def save(self, user: str, job_id: str, result: UpstreamResult) -> None:
        manifest = {**result.manifest(), "sizes": [len(image) for image in result.images]}
        header = json.dumps(manifest, separators=(",", ":")).encode()
        self.blobs.put(user, self._name(job_id), b"".join([header, b"\n", *result.images]))

    def load(self, user: str, job_id: str) -> UpstreamResult | None:
        data = self.blobs.get(user, self._name(job_id))
        if data is None:
            return None
        header, _, body = data.partition(b"\n")
        try:
            manifest = json.loads(header)
            sizes = [int(size) for size in manifest["sizes"]]
        except (ValueError, KeyError, TypeError):
            log.warning("job %s: unreadable kept upstream answer; calling OpenAI again", job_id)
            return None
        if sum(sizes) != len(body) or len(sizes) != int(manifest.get("count", len(sizes))):
            log.warning("job %s: the kept upstream answer is incomplete; calling OpenAI again", job_id)
            return None
        images, start = [], 0
        for size in sizes:
            images.append(body[start : start + size])
            start += size
        return UpstreamResult.from_manifest(manifest, images)

    def discard(self, user: str, job_id: str) -> None:
        """The kept answer and the latest partial image, in one request."""
        self.blobs.delete(user, [self._name(job_id), self._preview(job_id)])
