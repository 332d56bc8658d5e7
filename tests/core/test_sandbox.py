"""The path rules every image store shares: what a caller may name, and what they are told when they may not."""

from __future__ import annotations

import pytest

from gpt_image_mcp.core.errors import SandboxError
from gpt_image_mcp.core.sandbox import (
    MAX_KEY_CHARS,
    candidate_names,
    normalize_directory,
    normalize_key,
    numbered_keys,
    with_format_extension,
)

BASE = "/srv/images"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("a.png", "a.png"),
        ("dir/sub/a.png", "dir/sub/a.png"),
        ("./a.png", "a.png"),
        ("a//b.png", "a/b.png"),
        ("sub\\dir\\a.png", "sub/dir/a.png"),
        (f"{BASE}/x/a.png", "x/a.png"),
        ("x" * 255, "x" * 255),
    ],
)
def test_normalize_key_accepts(raw: str, key: str) -> None:
    assert normalize_key(raw, base=BASE) == key


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "output_path is empty; give a file name such as 'sunset.png'."),
        ("   ", "output_path is empty; give a file name such as 'sunset.png'."),
        ("a\x00.png", "output_path contains a NUL byte, which no file name may contain."),
        ("a\nb.png", "output_path 'a\\nb.png' contains control characters; use printable characters only."),
        ("a\x7f.png", "output_path 'a\\x7f.png' contains control characters; use printable characters only."),
        ("../a.png", "output_path '../a.png' contains '..'; paths may not leave the allowed folder."),
        ("a/../../b.png", "output_path 'a/../../b.png' contains '..'; paths may not leave the allowed folder."),
        ("..\\a.png", "output_path '..\\\\a.png' contains '..'; paths may not leave the allowed folder."),
        ("/etc/passwd", f"output_path '/etc/passwd' is outside the allowed folder {BASE}; use a path inside it."),
        (
            f"{BASE}-other/a.png",
            f"output_path '{BASE}-other/a.png' is outside the allowed folder {BASE}; use a path inside it.",
        ),
        (f"{BASE}/../a.png", f"output_path '{BASE}/../a.png' is outside the allowed folder {BASE}"),
        (BASE, f"output_path '{BASE}' names the folder itself; add a file name."),
        ("C:\\Users\\x.png", "output_path 'C:\\\\Users\\\\x.png' is a Windows drive or network path"),
        ("c:/x.png", "output_path 'c:/x.png' is a Windows drive or network path"),
        ("\\\\server\\share\\x.png", "is a Windows drive or network path; this server stores files under /srv/images"),
        ("//server/share/x.png", "output_path '//server/share/x.png' is a Windows drive or network path"),
        ("x" * 300 + ".png", "output_path has a name longer than 255 bytes: 'xxxxxxxxxx"),
        ("é" * 128 + ".png", "output_path has a name longer than 255 bytes"),  # 256 bytes in UTF-8
        ("a/" * 600 + "b.png", f"output_path is 1205 characters long; the limit is {MAX_KEY_CHARS}."),
    ],
)
def test_normalize_key_refuses_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(SandboxError) as caught:
        normalize_key(raw, base=BASE, what="output_path")
    assert message in caught.value.message


def test_normalize_key_refuses_absolute_paths_without_a_base() -> None:
    with pytest.raises(SandboxError, match="is absolute; give a path relative to your folder"):
        normalize_key("/users/x/a.png")


def test_windows_path_message_suggests_a_relative_path() -> None:
    with pytest.raises(SandboxError) as caught:
        normalize_key("C:\\Users\\x.png", base=BASE, what="output_path")
    assert caught.value.message.endswith(
        f"stores files under {BASE}: give a path relative to it, such as 'folder/image.png'."
    )


@pytest.mark.parametrize("raw", [None, "", " ", ".", "./", BASE, f"{BASE}/"])
def test_normalize_directory_root(raw: str | None) -> None:
    assert normalize_directory(raw, base=BASE) == ""


def test_normalize_directory_applies_the_key_rules() -> None:
    assert normalize_directory("sub\\x", base=BASE) == "sub/x"
    with pytest.raises(SandboxError, match=r"directory '\.\./up' contains '\.\.'"):
        normalize_directory("../up", base=BASE)


@pytest.mark.parametrize(
    ("key", "output_format", "expected"),
    [
        ("a.png", "png", "a.png"),
        ("a.png", "jpeg", "a.jpg"),
        ("a.jpeg", "jpeg", "a.jpg"),
        ("d/A.PNG", "webp", "d/A.webp"),
        ("a", "png", "a.png"),
        ("a.tar", "webp", "a.tar.webp"),  # an unknown suffix is part of the name
    ],
)
def test_with_format_extension(key: str, output_format: str, expected: str) -> None:
    assert with_format_extension(key, output_format) == expected


def test_numbered_keys() -> None:
    assert numbered_keys("d/a.png", 1) == ["d/a.png"]
    assert numbered_keys("d/a.png", 3) == ["d/a_1.png", "d/a_2.png", "d/a_3.png"]


def test_candidate_names_start_with_the_key_and_are_bounded() -> None:
    names = list(candidate_names("d/a.png"))
    assert names[:3] == ["d/a.png", "d/a-2.png", "d/a-3.png"]
    assert names[-1] == "d/a-999.png"
    assert len(names) == len(set(names)) == 999
