"""The local image store: every write lands inside the output folder under a free name, every read inside the input
folder, and each refusal tells the user what to do instead."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError, SandboxError, StorageError
from local_sandbox.fs_store import FileSystemImageStore

USER = "local"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # includes \n and \r: written as is, never translated
MB = 1024 * 1024


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(output, input, outside): the store may touch the first two and never the third."""
    base = tmp_path.resolve()
    inputs, outside = base / "in", base / "outside"
    inputs.mkdir()
    outside.mkdir()
    return base / "out", inputs, outside


@pytest.fixture
def store(roots: tuple[Path, Path, Path]) -> FileSystemImageStore:
    output, inputs, _outside = roots
    return FileSystemImageStore(output, inputs)


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# save


def test_save_relative_path_creates_the_output_folder(store: FileSystemImageStore) -> None:
    stored = store.save(USER, "a.png", PNG, "image/png")
    path = store.output_dir / "a.png"
    assert (stored.key, stored.location, stored.link, stored.size_bytes) == ("a.png", str(path), path.as_uri(), 264)
    assert path.read_bytes() == PNG
    assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()


def test_save_creates_nested_folders(store: FileSystemImageStore) -> None:
    stored = store.save(USER, "x/y/z.png", PNG, "image/png")
    assert stored.key == "x/y/z.png"
    assert (store.output_dir / "x" / "y" / "z.png").read_bytes() == PNG


def test_save_backslash_relative_path_becomes_folders(store: FileSystemImageStore) -> None:
    stored = store.save(USER, "sub\\dir\\a.png", PNG, "image/png")
    assert stored.key == "sub/dir/a.png"
    assert files_under(store.output_dir) == ["sub/dir/a.png"]


def test_save_absolute_path_inside_the_output_folder(store: FileSystemImageStore) -> None:
    stored = store.save(USER, str(store.output_dir / "sub" / "a.png"), PNG, "image/png")
    assert stored.key == "sub/a.png"
    assert stored.location == str(store.output_dir / "sub" / "a.png")


def test_save_expands_home(store: FileSystemImageStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(store.output_dir.parent))
    assert store.save(USER, "~/out/a.png", PNG, "image/png").key == "a.png"
    with pytest.raises(SandboxError) as caught:
        store.save(USER, "~/b.png", PNG, "image/png")
    assert caught.value.message == (
        f"output_path '{store.output_dir.parent}/b.png' is outside the allowed folder {store.output_dir}; "
        "use a path inside it."
    )


def test_save_tilde_name_is_an_ordinary_file_name(store: FileSystemImageStore) -> None:
    assert store.save(USER, "~draft.png", PNG, "image/png").key == "~draft.png"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "/etc/cron.d/x.png",
            "output_path '/etc/cron.d/x.png' is outside the allowed folder {out}; use a path inside it.",
        ),
        ("../x.png", "output_path '../x.png' contains '..'; paths may not leave the allowed folder."),
        ("a/../../x.png", "output_path 'a/../../x.png' contains '..'; paths may not leave the allowed folder."),
        ("x\x00.png", "output_path contains a NUL byte, which no file name may contain."),
        ("x\r.png", "output_path 'x\\r.png' contains control characters; use printable characters only."),
        (
            "C:\\Users\\x.png",
            "output_path 'C:\\\\Users\\\\x.png' is a Windows drive or network path; this server stores files under "
            "{out}: give a path relative to it, such as 'folder/image.png'.",
        ),
        (
            "\\\\server\\share\\x.png",
            "output_path '\\\\\\\\server\\\\share\\\\x.png' is a Windows drive or network path; this server stores "
            "files under {out}: give a path relative to it, such as 'folder/image.png'.",
        ),
        ("x" * 300 + ".png", "output_path has a name longer than 255 bytes: '" + "x" * 40 + "'..."),
        ("d/" * 600 + "x.png", "output_path is 1205 characters long; the limit is 1024."),
    ],
)
def test_save_refuses_paths_that_leave_the_folder_or_cannot_exist(
    store: FileSystemImageStore, roots: tuple[Path, Path, Path], raw: str, message: str
) -> None:
    with pytest.raises(SandboxError) as caught:
        store.save(USER, raw, PNG, "image/png")
    assert caught.value.message == message.format(out=store.output_dir)
    assert files_under(roots[0].parent) == []


def test_save_refuses_a_symlinked_folder_leading_out(
    store: FileSystemImageStore, roots: tuple[Path, Path, Path]
) -> None:
    _output, _inputs, outside = roots
    store.output_dir.mkdir()
    (store.output_dir / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SandboxError) as caught:
        store.save(USER, "link/sub/a.png", PNG, "image/png")
    assert caught.value.message == (
        f"output_path 'link/sub/a.png' goes through a symlink that leads outside {store.output_dir} (to {outside}); "
        "symlinks may not leave the allowed folder."
    )
    assert list(outside.iterdir()) == []


def test_save_refuses_a_symlinked_file_name_leading_out(
    store: FileSystemImageStore, roots: tuple[Path, Path, Path]
) -> None:
    """A (dangling) symlink at the wanted name is taken, not written through: the next free name is used."""
    _output, _inputs, outside = roots
    store.output_dir.mkdir()
    (store.output_dir / "a.png").symlink_to(outside / "planted.png")
    assert store.save(USER, "a.png", PNG, "image/png").key == "a-2.png"
    assert list(outside.iterdir()) == []


def test_save_through_a_symlink_inside_the_folder(store: FileSystemImageStore) -> None:
    (store.output_dir / "real").mkdir(parents=True)
    (store.output_dir / "alias").symlink_to(store.output_dir / "real", target_is_directory=True)
    stored = store.save(USER, "alias/a.png", PNG, "image/png")
    assert stored.key == "alias/a.png"
    assert (store.output_dir / "real" / "a.png").read_bytes() == PNG


def test_save_never_overwrites(store: FileSystemImageStore) -> None:
    first = store.save(USER, "d/a.png", b"first", "image/png")
    second = store.save(USER, "d/a.png", b"second", "image/png")
    third = store.save(USER, "d/a.png", b"third", "image/png")
    assert [first.key, second.key, third.key] == ["d/a.png", "d/a-2.png", "d/a-3.png"]
    assert (store.output_dir / "d" / "a.png").read_bytes() == b"first"


def test_save_refuses_a_file_where_a_folder_is_needed(store: FileSystemImageStore) -> None:
    store.save(USER, "a.png", PNG, "image/png")
    with pytest.raises(InvalidArgumentError) as caught:
        store.save(USER, "a.png/b.png", PNG, "image/png")
    assert caught.value.message == (
        f"output_path 'a.png/b.png': {store.output_dir / 'a.png'} exists and is not a folder; choose another path."
    )


def test_save_removes_a_partial_file_when_writing_fails(store: FileSystemImageStore) -> None:
    with pytest.raises(TypeError):
        store.save(USER, "a.png", "not bytes", "image/png")  # type: ignore[arg-type]
    assert files_under(store.output_dir) == []


def test_concurrent_saves_of_one_key_get_distinct_files(store: FileSystemImageStore) -> None:
    barrier = threading.Barrier(8)

    def save(index: int) -> str:
        barrier.wait()
        return store.save(USER, "same/name.png", f"image {index}".encode(), "image/png").key

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(save, range(8)))
    assert sorted(keys) == sorted(["same/name.png"] + [f"same/name-{n}.png" for n in range(2, 9)])
    assert sorted((store.output_dir / key).read_bytes() for key in keys) == sorted(
        f"image {index}".encode() for index in range(8)
    )


# check_key: what a save would fail on, found before any paid work


def test_check_key_finds_a_symlinked_folder_leading_out_before_anything_exists_below_it(
    store: FileSystemImageStore, roots: tuple[Path, Path, Path]
) -> None:
    output, _inputs, outside = roots
    output.mkdir()
    (output / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SandboxError, match=r"^output_path 'link/new/a.png' goes through a symlink that leads outside"):
        store.check_key(USER, "link/new/a.png")


def test_check_key_finds_a_file_where_a_folder_is_needed(store: FileSystemImageStore) -> None:
    store.save(USER, "a.png", PNG, "image/png")
    with pytest.raises(InvalidArgumentError, match=r"exists and is not a folder; choose another path\.$"):
        store.check_key(USER, "a.png/b/c.png")


def test_check_key_refuses_when_the_folder_has_no_room(store: FileSystemImageStore) -> None:
    store.output_dir.mkdir()
    with pytest.raises(StorageError) as caught:
        store.check_key(USER, "big.png", expected_bytes=2**62)
    message = caught.value.message
    assert message.startswith(f"The disk holding {store.output_dir} is full (it has ")
    assert message.endswith(
        "this call's images may need up to 4398046511104 MB). Free some space there, or set OPENAI_IMAGE_OUTPUT_DIR "
        "to a folder on another disk."
    )


def test_check_key_before_the_output_folder_exists_checks_where_it_will_be_made(
    store: FileSystemImageStore,
) -> None:
    assert store.check_key(USER, "a/b.png", expected_bytes=1) == "a/b.png"
    assert not store.output_dir.exists()  # a check writes nothing


def test_delete_takes_back_a_saved_file(store: FileSystemImageStore) -> None:
    stored = store.save(USER, "d/a.png", PNG, "image/png")
    store.delete(USER, stored.key)
    assert files_under(store.output_dir) == []


# read_input


def test_read_input(store: FileSystemImageStore) -> None:
    (store.input_dir / "refs").mkdir()
    (store.input_dir / "refs" / "cat.png").write_bytes(PNG)
    assert store.read_input(USER, "refs/cat.png", 50 * MB) == PNG
    assert store.read_input(USER, str(store.input_dir / "refs" / "cat.png"), 50 * MB) == PNG
    assert store.read_input(USER, "refs\\cat.png", 50 * MB) == PNG


def test_read_input_missing_file(store: FileSystemImageStore) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.read_input(USER, "refs/cat.png", 50 * MB)
    assert caught.value.message == f"input path 'refs/cat.png' was not found in {store.input_dir}."


def test_read_input_directory(store: FileSystemImageStore) -> None:
    (store.input_dir / "refs").mkdir()
    with pytest.raises(InvalidArgumentError) as caught:
        store.read_input(USER, "refs", 50 * MB)
    assert caught.value.message == "input path 'refs' is a folder; name an image file inside it."


def test_read_input_fifo_is_refused_without_blocking(store: FileSystemImageStore) -> None:
    os.mkfifo(store.input_dir / "pipe.png")
    with pytest.raises(InvalidArgumentError) as caught:
        store.read_input(USER, "pipe.png", 50 * MB)
    assert caught.value.message == "input path 'pipe.png' is not a regular file; name an image file."


def test_read_input_too_large(store: FileSystemImageStore) -> None:
    with (store.input_dir / "big.png").open("wb") as handle:
        handle.truncate(int(61.2 * MB))  # sparse: no 61 MB written to disk
    with pytest.raises(InvalidArgumentError) as caught:
        store.read_input(USER, "big.png", 50 * MB)
    assert caught.value.message == "input path 'big.png' is 61.2 MB; the limit is 50 MB."


INPUT_HINT = (
    " Input images are read from OPENAI_IMAGE_INPUT_DIR ({}): put the file there or set OPENAI_IMAGE_INPUT_DIR to its "
    "folder, or send the image as reference_image_base64 (mask_image_base64 for a mask)."
)


def test_read_input_outside_the_input_folder(store: FileSystemImageStore, roots: tuple[Path, Path, Path]) -> None:
    _output, _inputs, outside = roots
    (outside / "secret.png").write_bytes(PNG)
    with pytest.raises(SandboxError) as caught:
        store.read_input(USER, str(outside / "secret.png"), 50 * MB)
    assert caught.value.message == (
        f"input path '{outside}/secret.png' is outside the allowed folder {store.input_dir}; use a path inside it."
        f"{INPUT_HINT.format(store.input_dir)}"
    )
    with pytest.raises(SandboxError, match=r"contains '\.\.'"):
        store.read_input(USER, "../outside/secret.png", 50 * MB)


@pytest.mark.parametrize("link", ["folder", "file"])
def test_read_input_refuses_a_symlink_leading_out(
    store: FileSystemImageStore, roots: tuple[Path, Path, Path], link: str
) -> None:
    _output, _inputs, outside = roots
    (outside / "secret.png").write_bytes(PNG)
    if link == "folder":
        (store.input_dir / "link").symlink_to(outside, target_is_directory=True)
        raw = "link/secret.png"
    else:
        (store.input_dir / "secret.png").symlink_to(outside / "secret.png")
        raw = "secret.png"
    with pytest.raises(SandboxError) as caught:
        store.read_input(USER, raw, 50 * MB)
    assert caught.value.message == (
        f"input path {raw!r} goes through a symlink that leads outside {store.input_dir} (to {outside}/secret.png); "
        f"symlinks may not leave the allowed folder.{INPUT_HINT.format(store.input_dir)}"
    )


def test_read_input_through_a_symlink_inside_the_folder(store: FileSystemImageStore) -> None:
    (store.input_dir / "cat.png").write_bytes(PNG)
    (store.input_dir / "alias.png").symlink_to(store.input_dir / "cat.png")
    assert store.read_input(USER, "alias.png", 50 * MB) == PNG


# read_output


def test_read_output_reads_what_was_saved(store: FileSystemImageStore) -> None:
    stored = store.save(USER, "d/a.png", PNG, "image/png")
    assert store.read_output(USER, stored.key, 50 * MB) == PNG
    assert store.read_output(USER, stored.location, 50 * MB) == PNG


def test_read_output_applies_the_same_rules(store: FileSystemImageStore, roots: tuple[Path, Path, Path]) -> None:
    _output, inputs, outside = roots
    (inputs / "ref.png").write_bytes(PNG)
    store.output_dir.mkdir()
    with pytest.raises(NotFoundError) as missing:
        store.read_output(USER, "ref.png", 50 * MB)
    assert missing.value.message == f"image_path 'ref.png' was not found in {store.output_dir}."
    with pytest.raises(SandboxError) as absolute:
        store.read_output(USER, str(inputs / "ref.png"), 50 * MB)
    assert absolute.value.message == (
        f"image_path '{inputs}/ref.png' is outside the allowed folder {store.output_dir}; use a path inside it."
    )
    (store.output_dir / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SandboxError, match=r"image_path 'link/x\.png' goes through a symlink that leads outside"):
        store.read_output(USER, "link/x.png", 50 * MB)
    store.save(USER, "big.png", bytes(2 * MB + 1), "image/png")
    with pytest.raises(InvalidArgumentError) as large:
        store.read_output(USER, "big.png", 2 * MB)
    assert large.value.message == "image_path 'big.png' is 2.0 MB; the limit is 2 MB."


# list_images


def _image(path: Path, mtime: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PNG)
    os.utime(path, (mtime, mtime))


def test_list_images_newest_first_recursive_images_only(store: FileSystemImageStore) -> None:
    out = store.output_dir
    _image(out / "old.png", 1_700_000_000)
    _image(out / "sub" / "deep" / "new.JPG", 1_700_000_300)
    _image(out / "sub" / "mid.webp", 1_700_000_200)
    _image(out / "b.jpeg", 1_700_000_100)
    _image(out / "notes.txt", 1_800_000_000)
    (out / "folder.png").mkdir()
    listed = store.list_images(USER, None, 10)
    assert [image.key for image in listed] == ["sub/deep/new.JPG", "sub/mid.webp", "b.jpeg", "old.png"]
    first = listed[0]
    assert first.location == str(out / "sub" / "deep" / "new.JPG")
    assert first.link == (out / "sub" / "deep" / "new.JPG").as_uri()
    assert first.size_bytes == len(PNG)
    assert first.modified == "2023-11-14T22:18:20+00:00"
    assert datetime.fromisoformat(first.modified).timestamp() == 1_700_000_300
    assert [image.key for image in store.list_images(USER, "sub", 10)] == ["sub/deep/new.JPG", "sub/mid.webp"]
    assert [image.key for image in store.list_images(USER, str(out / "sub"), 1)] == ["sub/deep/new.JPG"]
    assert [image.key for image in store.list_images(USER, ".", 2)] == ["sub/deep/new.JPG", "sub/mid.webp"]


def test_list_images_before_the_first_save(store: FileSystemImageStore) -> None:
    assert store.list_images(USER, None, 10) == []


def test_list_images_missing_directory(store: FileSystemImageStore) -> None:
    store.output_dir.mkdir()
    with pytest.raises(NotFoundError) as caught:
        store.list_images(USER, "nope", 10)
    assert caught.value.message == f"directory 'nope' was not found in {store.output_dir}."


def test_list_images_directory_is_a_file(store: FileSystemImageStore) -> None:
    store.save(USER, "a.png", PNG, "image/png")
    with pytest.raises(InvalidArgumentError) as caught:
        store.list_images(USER, "a.png", 10)
    assert caught.value.message == "directory 'a.png' is a file, not a folder."


def test_list_images_refuses_paths_outside(store: FileSystemImageStore, roots: tuple[Path, Path, Path]) -> None:
    _output, _inputs, outside = roots
    store.output_dir.mkdir()
    (store.output_dir / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SandboxError) as caught:
        store.list_images(USER, "link", 10)
    assert caught.value.message == (
        f"directory 'link' goes through a symlink that leads outside {store.output_dir} (to {outside}); "
        "symlinks may not leave the allowed folder."
    )
    with pytest.raises(SandboxError, match=r"directory '\.\./outside' contains '\.\.'"):
        store.list_images(USER, "../outside", 10)
    with pytest.raises(SandboxError, match="is outside the allowed folder"):
        store.list_images(USER, str(outside), 10)


def test_list_images_skips_symlinks_leading_out(store: FileSystemImageStore, roots: tuple[Path, Path, Path]) -> None:
    _output, _inputs, outside = roots
    _image(outside / "secret.png", 1_700_000_000)
    _image(store.output_dir / "real" / "mine.png", 1_700_000_000)
    (store.output_dir / "leak.png").symlink_to(outside / "secret.png")
    (store.output_dir / "leakdir").symlink_to(outside, target_is_directory=True)
    (store.output_dir / "alias.png").symlink_to(store.output_dir / "real" / "mine.png")
    (store.output_dir / "aliasdir").symlink_to(store.output_dir / "real", target_is_directory=True)
    keys = sorted(image.key for image in store.list_images(USER, None, 10))
    assert keys == ["alias.png", "real/mine.png"]
    assert [image.key for image in store.list_images(USER, "aliasdir", 10)] == ["aliasdir/mine.png"]


# link_for


def test_link_for(store: FileSystemImageStore, roots: tuple[Path, Path, Path]) -> None:
    stored = store.save(USER, "d/a b.png", PNG, "image/png")
    assert store.link_for(USER, stored.key) == stored.link == (store.output_dir / "d" / "a b.png").as_uri()
    assert stored.link.endswith("/out/d/a%20b.png")
    with pytest.raises(NotFoundError) as caught:
        store.link_for(USER, "d/missing.png")
    assert caught.value.message == f"key 'd/missing.png' was not found in {store.output_dir}."
    (store.output_dir / "link").symlink_to(roots[2], target_is_directory=True)
    with pytest.raises(SandboxError, match="goes through a symlink that leads outside"):
        store.link_for(USER, "link/x.png")


def test_read_input_symlink_loop(store: FileSystemImageStore) -> None:
    (store.input_dir / "loop.png").symlink_to(store.input_dir / "loop.png")
    with pytest.raises(SandboxError) as caught:
        store.read_input(USER, "loop.png", 50 * MB)
    assert caught.value.message == "input path 'loop.png' is a symlink that cannot be followed safely."


def test_native_windows_absolute_paths_inside_the_root_become_relative() -> None:
    from pathlib import PurePosixPath, PureWindowsPath

    from local_sandbox.fs_store import native_relative

    root = r"C:\Users\me\Pictures\ai"
    assert native_relative(r"C:\Users\me\Pictures\ai\posters\a.png", root, PureWindowsPath) == "posters/a.png"
    assert native_relative(r"c:\users\me\pictures\AI\a.png", root, PureWindowsPath) == "a.png"  # case-insensitive
    # outside the root, relative, or on POSIX: unchanged, for the shared rules to refuse or resolve
    assert native_relative(r"C:\Users\me\Other\a.png", root, PureWindowsPath) == r"C:\Users\me\Other\a.png"
    assert native_relative(r"sub\a.png", root, PureWindowsPath) == r"sub\a.png"
    assert native_relative(r"C:\x\a.png", "/home/me/out", PurePosixPath) == r"C:\x\a.png"
    assert native_relative("/home/me/out/a.png", "/home/me/out", PurePosixPath) == "/home/me/out/a.png"
