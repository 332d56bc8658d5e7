"""Path rules shared by every image store: turn a caller's path into a safe relative key.

A key is a POSIX path relative to the user's root, with no `..`, no empty or `.` parts, no control
characters and bounded lengths. Stores add what only they can check (symlinks on a filesystem).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from gpt_image_mcp.core.errors import SandboxError

MAX_COMPONENT_BYTES = 255
MAX_KEY_CHARS = 1024
MAX_CANDIDATES = 999
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FORMAT_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
_KNOWN_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}


def normalize_key(raw: str, *, base: str | None = None, what: str = "path") -> str:
    """Validate `raw` and return it as a key relative to `base`.

    `base` is the absolute root as the caller sees it (a folder locally); an absolute `raw` is accepted
    only when it lies inside it. Backslashes count as separators so Windows-style relative paths work.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise SandboxError(f"{what} is empty; give a file name such as 'sunset.png'.")
    if "\x00" in raw:
        raise SandboxError(f"{what} contains a NUL byte, which no file name may contain.")
    if _CONTROL.search(raw):
        raise SandboxError(f"{what} {raw!r} contains control characters; use printable characters only.")
    if _WINDOWS_DRIVE.match(raw) or raw.startswith(("\\\\", "//")):
        raise SandboxError(
            f"{what} {raw!r} is a Windows drive or network path; this server stores files under "
            f"{base or 'its own root'}: give a path relative to it, such as 'folder/image.png'."
        )
    if len(raw) > MAX_KEY_CHARS:
        raise SandboxError(f"{what} is {len(raw)} characters long; the limit is {MAX_KEY_CHARS}.")
    text = raw.replace("\\", "/")
    path = PurePosixPath(text)
    if path.is_absolute():
        if base is None:
            raise SandboxError(f"{what} {raw!r} is absolute; give a path relative to your folder.")
        root = PurePosixPath(base)
        if not path.is_relative_to(root) or ".." in path.parts:
            raise SandboxError(f"{what} {raw!r} is outside the allowed folder {base}; use a path inside it.")
        path = path.relative_to(root)
    parts = [part for part in path.parts if part not in ("", ".")]
    if ".." in parts:
        raise SandboxError(f"{what} {raw!r} contains '..'; paths may not leave the allowed folder.")
    if not parts:
        raise SandboxError(f"{what} {raw!r} names the folder itself; add a file name.")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise SandboxError(f"{what} has a name longer than {MAX_COMPONENT_BYTES} bytes: {part[:40]!r}...")
    return "/".join(parts)


def normalize_directory(raw: str | None, *, base: str | None = None, what: str = "directory") -> str:
    """Like `normalize_key`, but '' / '.' / the base itself mean the root (returned as '')."""
    if raw is None or raw.strip() in ("", ".", "./"):
        return ""
    if base is not None and raw.replace("\\", "/").rstrip("/") == base.rstrip("/"):
        return ""
    return normalize_key(raw, base=base, what=what)


def with_format_extension(key: str, output_format: str) -> str:
    """Give `key` the extension that matches the bytes: 'a.png' saved as jpeg becomes 'a.jpg'."""
    path = PurePosixPath(key)
    extension = _FORMAT_EXTENSIONS[output_format]
    stem = path.stem if path.suffix.lower() in _KNOWN_EXTENSIONS else path.name
    return str(path.with_name(stem + extension))


def numbered_keys(key: str, count: int) -> list[str]:
    """'name.png' for one image; 'name_1.png' ... 'name_N.png' for several (as the reference does)."""
    if count == 1:
        return [key]
    path = PurePosixPath(key)
    return [str(path.with_name(f"{path.stem}_{index}{path.suffix}")) for index in range(1, count + 1)]


def candidate_names(key: str) -> Iterator[str]:
    """`key`, then 'name-2.png', 'name-3.png', ... up to MAX_CANDIDATES names, for when a name is taken."""
    yield key
    path = PurePosixPath(key)
    stem, suffix = path.stem, path.suffix
    for index in range(2, MAX_CANDIDATES + 1):
        yield str(path.with_name(f"{stem}-{index}{suffix}"))
