"""`UpstreamCache` on the local disk: a spool folder next to the history database.

The images OpenAI returned for a job are written here the moment they are decoded, before anything is saved
for the user, and removed once the job is settled. So a save that fails (a full disk, a read-only or vanished
output folder, a locked database) or a server that dies while saving loses nothing that was paid for: the next
attempt of the job, or `get_job_result`, saves the kept images without a new OpenAI call.

Layout: `{folder}/{job_id}/image_{n}` and then `answer.json` (usage, resolved settings, notes), which is
renamed into place last and so marks the set complete; `preview.<format>` is the latest partial image, which the
job's status links to while the image is being made. The files survive the server process (they are not
fsync'ed: a power cut can lose the newest, as it can the newest history rows). When even the spool cannot be
written (its disk is full too), the answer is kept in memory for as long as the server runs, with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import threading
from pathlib import Path

from gpt_image_mcp.core.imageinfo import sniff
from gpt_image_mcp.core.upstream import UpstreamResult

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
MANIFEST = "answer.json"


class SpoolUpstreamCache:
    """Kept answers under `folder`, one sub-folder per job (local mode has one user; the id is unique)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._memory: dict[str, UpstreamResult] = {}  # answers the disk would not take, until the server stops
        self._lock = threading.Lock()

    def _job_folder(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise ValueError(f"job id {job_id!r} cannot name a spool folder")
        return self.folder / job_id

    def save(self, user: str, job_id: str, result: UpstreamResult) -> None:
        folder = self._job_folder(job_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for index, data in enumerate(result.images):
                (folder / f"image_{index}").write_bytes(data)
            partial = folder / f"{MANIFEST}.partial"
            partial.write_text(json.dumps(result.manifest()))
            partial.replace(folder / MANIFEST)
        except OSError as error:
            log.warning("job %s: the spool %s cannot take the answer (%s); kept in memory", job_id, folder, error)
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                self._memory[job_id] = result

    def load(self, user: str, job_id: str) -> UpstreamResult | None:
        with self._lock:
            if job_id in self._memory:
                return self._memory[job_id]
        folder = self._job_folder(job_id)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
            images = [(folder / f"image_{index}").read_bytes() for index in range(int(manifest["count"]))]
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("job %s: the kept answer in %s is unreadable (%s); asking OpenAI again", job_id, folder, error)
            return None
        return UpstreamResult.from_manifest(manifest, images)

    def keep_preview(self, user: str, job_id: str, data: bytes) -> str:
        """The latest partial image as `preview.<format>`, swapped in whole; its file:// link."""
        folder = self._job_folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        image_format = sniff(data).format
        path = folder / f"preview.{'jpg' if image_format == 'jpeg' else image_format}"
        partial = path.with_name(f"{path.name}.partial")
        partial.write_bytes(data)
        partial.replace(path)
        return path.as_uri()

    def read_preview(self, user: str, job_id: str) -> bytes | None:
        try:
            folder = self._job_folder(job_id)
        except ValueError:
            return None
        for path in folder.glob("preview.*"):
            if path.suffix != ".partial":
                with contextlib.suppress(FileNotFoundError):  # settled, or swapped for the next one, meanwhile
                    return path.read_bytes()
        return None

    def discard(self, user: str, job_id: str) -> None:
        """The manifest goes first: a removal cut short never leaves a set that looks complete."""
        with self._lock:
            self._memory.pop(job_id, None)
        folder = self._job_folder(job_id)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):  # never kept on disk
            (folder / MANIFEST).unlink()
        shutil.rmtree(folder, ignore_errors=True)
