"""`ImageStore` on the local filesystem: one user, images under an output folder, inputs under an input folder.

`core.sandbox` decides which keys are well formed; this module adds what only a filesystem can check: that no
symlink leads out of the folder, and that a name is claimed atomically so no existing file is ever overwritten.
"""

from __future__ import annotations

import errno
import heapq
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path, PurePath

from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError, SandboxError, StorageError
from gpt_image_mcp.core.sandbox import MAX_CANDIDATES, candidate_names, normalize_directory, normalize_key
from gpt_image_mcp.core.sizes import human_size
from gpt_image_mcp.core.storage import ListedImage, StoredImage

# O_NOFOLLOW / O_CLOEXEC do not exist on Windows, where O_BINARY keeps os.write from translating newlines.
_PORTABLE_FLAGS: int = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _PORTABLE_FLAGS
# O_NONBLOCK: opening a FIFO planted as an input must not hang the server; regular files ignore it.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _PORTABLE_FLAGS
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def native_relative(raw: str, root: str, path_type: type[PurePath] = PurePath) -> str:
    """An absolute path in the platform's own form (Windows: `C:\\Users\\me\\Pictures\\a.png`) inside `root`
    becomes relative to it, so the shared POSIX rules can check it; anything else is returned unchanged (a Windows
    path outside the root, or any Windows path on POSIX, is then refused by `normalize_key` with its message)."""
    path, base = path_type(raw), path_type(root)
    if not path.is_absolute() or path_type(raw.replace("\\", "/")).as_posix().startswith("/"):
        return raw  # not absolute, or a POSIX absolute path: the shared rules handle it
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return raw


def _local(raw: str, root: Path) -> str:
    """The caller's path with `~` expanded and a native absolute path inside `root` made relative."""
    return native_relative(_expand_home(raw), str(root))


def _expand_home(raw: str) -> str:
    """`~/x.png` means the home folder, as in a shell; `~name` is left alone (it may be a file name)."""
    if raw == "~" or raw.startswith(("~/", "~\\")):
        return str(Path.home() / raw[2:])
    return raw


def _not_a_folder(raw: str, path: Path) -> InvalidArgumentError:
    return InvalidArgumentError(f"output_path {raw!r}: {path} exists and is not a folder; choose another path.")


ELSEWHERE = "or set OPENAI_IMAGE_OUTPUT_DIR to a folder on another disk"


def write_problem(code: int | None, folder: Path, detail: str = "") -> str:
    """What keeps `folder` from taking files, by errno, in words a person can act on."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk holding {folder} is full{detail}. Free some space there, {ELSEWHERE}."
    if code == errno.EROFS:
        return f"{folder} is on a read-only file system. Remount it read-write, {ELSEWHERE}."
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"This server (user id {os.geteuid() if hasattr(os, 'geteuid') else '?'}) may not write in {folder}. "
            f"Give it write permission there, {ELSEWHERE}."
        )
    reason = os.strerror(code) if code else "unknown error"
    return f"Could not write in {folder}: {reason} ({errno.errorcode.get(code or 0, code)})."


def check_room(folder: Path, expected_bytes: int) -> None:
    """Refuse now what a save into `folder` would fail on: a read-only disk, no permission, too little space."""
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY) if hasattr(os, "statvfs") else False
        raise StorageError(write_problem(errno.EROFS if read_only else errno.EACCES, folder))
    free = shutil.disk_usage(folder).free
    if free < expected_bytes:
        detail = f" (it has {human_size(free)} free; this call's images may need up to {human_size(expected_bytes)})"
        raise StorageError(write_problem(errno.ENOSPC, folder, detail))


class FileSystemImageStore:
    """Writes under `output_dir` and reads inputs from `input_dir`; both absolute and already resolved."""

    def __init__(self, output_dir: Path, input_dir: Path) -> None:
        self.output_dir = output_dir
        self.input_dir = input_dir

    def save(self, user: str, key: str, data: bytes, content_type: str) -> StoredImage:
        """Claim the first free name among `candidate_names` with O_EXCL, so concurrent saves never collide.
        A disk that is full, read-only or forbidden raises StorageError naming the folder; no partial file stays."""
        relative = self._relative(key)
        folder = self.output_dir
        try:
            folder = self._make_parents(relative, key)
            for name in candidate_names(relative):
                path = folder / Path(name).name
                try:
                    fd = os.open(path, _CREATE_FLAGS, 0o644)
                except FileExistsError:
                    continue
                try:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(data)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
                location = self.output_dir / name
                return StoredImage(key=name, location=str(location), link=location.as_uri(), size_bytes=len(data))
        except OSError as error:
            raise StorageError(write_problem(error.errno, folder)) from error
        raise InvalidArgumentError(
            f"output_path {key!r}: {relative!r} and its {MAX_CANDIDATES - 1} numbered variants are taken in "
            f"{self.output_dir}; choose another name."
        )

    def check_key(self, user: str, key: str, expected_bytes: int = 0) -> str:
        """The path rules, then what the filesystem can tell before a save: the existing folders along the path
        (through symlinks) stay inside the output folder and are folders, and the deepest can take the bytes."""
        relative = self._relative(key)
        check_room(self._existing_folder(relative, key), expected_bytes)
        return relative

    def delete(self, user: str, key: str) -> None:
        relative = normalize_key(key, base=str(self.output_dir), what="key")
        (self._resolve_inside(self.output_dir, relative, key, "key")).unlink(missing_ok=True)

    def _relative(self, key: str) -> str:
        return normalize_key(_local(key, self.output_dir), base=str(self.output_dir), what="output_path")

    def read_input(self, user: str, path: str, max_bytes: int) -> bytes:
        try:
            return self._read(self.input_dir, path, max_bytes, "input path")
        except SandboxError as error:
            if "outside" not in error.message:  # only a place outside the folder: say where inputs may come from
                raise
            raise SandboxError(
                f"{error.message} Input images are read from OPENAI_IMAGE_INPUT_DIR ({self.input_dir}): put the "
                "file there or set OPENAI_IMAGE_INPUT_DIR to its folder, or send the image as "
                "reference_image_base64 (mask_image_base64 for a mask)."
            ) from None

    def read_output(self, user: str, path: str, max_bytes: int) -> bytes:
        return self._read(self.output_dir, path, max_bytes, "image_path")

    def _read(self, root: Path, path: str, max_bytes: int, what: str) -> bytes:
        """Open the resolved path without following a final symlink, so a swap after the check cannot escape."""
        relative = normalize_key(_local(path, root), base=str(root), what=what)
        real = self._resolve_inside(root, relative, path, what)
        if real.is_dir():
            raise InvalidArgumentError(f"{what} {path!r} is a folder; name an image file inside it.")
        try:
            fd = os.open(real, _READ_FLAGS)
        except FileNotFoundError:
            raise NotFoundError(f"{what} {path!r} was not found in {root}.") from None
        except OSError as error:
            if error.errno == errno.ELOOP:  # a symlink loop, or the file was swapped for a symlink after the check
                raise SandboxError(f"{what} {path!r} is a symlink that cannot be followed safely.") from None
            raise InvalidArgumentError(f"{what} {path!r} could not be read: {error.strerror}.") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InvalidArgumentError(f"{what} {path!r} is not a regular file; name an image file.")
            if info.st_size > max_bytes:
                raise InvalidArgumentError(
                    f"{what} {path!r} is {human_size(info.st_size)}; the limit is {human_size(max_bytes)}."
                )
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:  # the file grew after fstat
            raise InvalidArgumentError(f"{what} {path!r} is over the limit of {human_size(max_bytes)}.")
        return data

    def list_images(self, user: str, directory: str | None, limit: int) -> list[ListedImage]:
        """Walk without descending into symlinked folders: they could loop or list the same file twice."""
        root = self.output_dir
        raw = None if directory is None else _local(directory, self.output_dir)
        relative = normalize_directory(raw, base=str(root), what="directory")
        if not relative and not root.exists():
            return []  # nothing has been saved yet
        start = self._resolve_inside(root, relative, directory or "", "directory") if relative else root
        if not start.exists():
            raise NotFoundError(f"directory {directory!r} was not found in {root}.")
        if not start.is_dir():
            raise InvalidArgumentError(f"directory {directory!r} is a file, not a folder.")
        found: list[tuple[int, str, int]] = []
        for folder, _subfolders, files in os.walk(start):
            for name in files:
                path = Path(folder) / name
                if path.suffix.lower() not in _IMAGE_SUFFIXES:
                    continue
                if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
                    continue
                try:
                    info = path.stat()
                except OSError:  # removed during the walk, or a dangling symlink
                    continue
                if stat.S_ISREG(info.st_mode):
                    key = (Path(relative) / path.relative_to(start)).as_posix()
                    found.append((info.st_mtime_ns, key, info.st_size))
        return [
            ListedImage(
                key=key,
                location=str(root / key),
                link=(root / key).as_uri(),
                size_bytes=size,
                modified=datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(timespec="seconds"),
            )
            for mtime_ns, key, size in heapq.nlargest(max(limit, 0), found)
        ]

    def link_for(self, user: str, key: str) -> str:
        relative: str = normalize_key(_local(key, self.output_dir), base=str(self.output_dir), what="key")
        real = self._resolve_inside(self.output_dir, relative, key, "key")
        if not real.is_file():
            raise NotFoundError(f"key {key!r} was not found in {self.output_dir}.")
        return (self.output_dir / relative).as_uri()

    @staticmethod
    def _resolve_inside(root: Path, relative: str, raw: str, what: str) -> Path:
        """The real path of `root/relative`; refused when a symlink along it leads outside `root`."""
        real = Path(os.path.realpath(root / relative))  # not Path.resolve: it raises on a symlink loop in 3.11
        if not real.is_relative_to(root):
            raise SandboxError(
                f"{what} {raw!r} goes through a symlink that leads outside {root} (to {real}); "
                "symlinks may not leave the allowed folder."
            )
        return real

    def _existing_folder(self, relative: str, raw: str) -> Path:
        """The deepest folder of `relative` that exists now (the output folder's nearest existing parent when even
        it is missing): where a save would create the rest, and so what must be writable."""
        root = self.output_dir
        if not root.is_dir():
            if root.exists():
                raise StorageError(f"The output folder {root} is a file; set OPENAI_IMAGE_OUTPUT_DIR to a folder.")
            return next(parent for parent in root.parents if parent.is_dir())
        current = root
        for part in Path(relative).parts[:-1]:
            step = current / part
            if not os.path.lexists(step):
                break
            real = self._resolve_inside(root, step.relative_to(root).as_posix(), raw, "output_path")
            if not real.is_dir():
                raise _not_a_folder(raw, step)
            current = real
        return current

    def _make_parents(self, relative: str, raw: str) -> Path:
        """Create the folders of `relative` one by one, checking each existing one before going through it."""
        root = self.output_dir
        root.mkdir(parents=True, exist_ok=True)
        current = root
        for part in Path(relative).parts[:-1]:
            current = current / part
            real = self._resolve_inside(root, current.relative_to(root).as_posix(), raw, "output_path")
            try:
                real.mkdir(exist_ok=True)
            except FileExistsError:  # exist_ok only covers folders: this is a file
                raise _not_a_folder(raw, current) from None
            current = real
        return current
