"""The S3 image store against moto over HTTP: per-user folders, the local path rules, free names claimed atomically,
presigned links that really download, and presigned uploads limited by type and size."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aws_support import Names

from gpt_image_mcp.aws.s3_store import S3ImageStore
from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError, SandboxError

ALICE = "0b7e9c1e-1111-4a4a-8c8c-0123456789ab"
BOB = "h-" + "b" * 64
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
EXPIRY = 900


@pytest.fixture
def store(s3: Any, aws: Names) -> S3ImageStore:
    return S3ImageStore(s3, aws.bucket, EXPIRY)


def download(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), dict(response.headers)


def post_form(url: str, fields: dict[str, str], data: bytes, filename: str = "upload.png") -> int:
    """A browser-style multipart POST (the file last, as S3 requires); returns the HTTP status."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, data=b"".join(parts), method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def object_keys(s3: Any, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


# save


def test_save_puts_the_object_under_the_users_prefix_and_links_to_it(store: S3ImageStore, s3: Any, aws: Names) -> None:
    stored = store.save(ALICE, "sunset.png", PNG, "image/png")
    assert (stored.key, stored.size_bytes) == ("sunset.png", len(PNG))
    assert stored.location == f"s3://{aws.bucket}/users/{ALICE}/sunset.png"
    head = s3.head_object(Bucket=aws.bucket, Key=f"users/{ALICE}/sunset.png")
    assert (head["ContentType"], head["ServerSideEncryption"]) == ("image/png", "AES256")
    body, headers = download(stored.link)
    assert body == PNG
    assert headers["Content-Disposition"] == "inline; filename*=UTF-8''sunset.png"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(stored.link).query)
    assert query["X-Amz-Expires"] == [str(EXPIRY)]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_unsigned_get_of_a_saved_image_is_refused(store: S3ImageStore) -> None:
    stored = store.save(ALICE, "a.png", PNG, "image/png")
    with pytest.raises(urllib.error.HTTPError) as caught:
        download(stored.link.split("?", 1)[0])
    assert caught.value.code == 403


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("x/y/z.png", "x/y/z.png"),
        ("sub\\dir\\a.png", "sub/dir/a.png"),
        ("./a.png", "a.png"),
        (f"users/{ALICE}/own/a.png", "own/a.png"),
        (f"/users/{ALICE}/own/a.png", "own/a.png"),
        (f"s3://gim-images-test/users/{ALICE}/own/a.png", "own/a.png"),
    ],
)
def test_save_accepts_relative_keys_and_the_full_form_of_the_own_folder(
    store: S3ImageStore, s3: Any, aws: Names, raw: str, key: str
) -> None:
    assert store.save(ALICE, raw, PNG, "image/png").key == key
    assert object_keys(s3, aws.bucket) == [f"users/{ALICE}/{key}"]


def test_save_never_overwrites_it_picks_the_next_free_name(store: S3ImageStore, s3: Any, aws: Names) -> None:
    first = store.save(ALICE, "a.png", b"first", "image/png")
    second = store.save(ALICE, "a.png", b"second", "image/png")
    third = store.save(ALICE, "a.png", b"third", "image/png")
    assert [first.key, second.key, third.key] == ["a.png", "a-2.png", "a-3.png"]
    assert store.read_output(ALICE, "a.png", 100) == b"first"
    assert store.read_output(ALICE, "a-2.png", 100) == b"second"


def test_concurrent_saves_of_one_name_claim_distinct_names(store: S3ImageStore) -> None:
    payloads = [f"image {index}".encode() for index in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        stored = list(pool.map(lambda data: store.save(ALICE, "same.png", data, "image/png"), payloads))
    keys = [item.key for item in stored]
    assert sorted(keys) == sorted(["same.png", *(f"same-{index}.png" for index in range(2, 9))])
    for item, data in zip(stored, payloads, strict=True):
        assert store.read_output(ALICE, item.key, 100) == data


def test_check_key_validates_without_writing(store: S3ImageStore, s3: Any, aws: Names) -> None:
    assert store.check_key(ALICE, f"s3://{aws.bucket}/users/{ALICE}/a/b.png") == "a/b.png"
    with pytest.raises(SandboxError):
        store.check_key(ALICE, "../b.png")
    assert object_keys(s3, aws.bucket) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("../x.png", "output_path '../x.png' contains '..'; paths may not leave the allowed folder."),
        ("a/../../x.png", "output_path 'a/../../x.png' contains '..'; paths may not leave the allowed folder."),
        ("x\x00.png", "output_path contains a NUL byte, which no file name may contain."),
        ("x\r.png", "output_path 'x\\r.png' contains control characters; use printable characters only."),
        (
            "C:\\Users\\x.png",
            "output_path 'C:\\\\Users\\\\x.png' is a Windows drive or network path; this server stores files under "
            "its own root: give a path relative to it, such as 'folder/image.png'.",
        ),
        (
            "\\\\server\\share\\x.png",
            "output_path '\\\\\\\\server\\\\share\\\\x.png' is a Windows drive or network path; this server stores "
            "files under its own root: give a path relative to it, such as 'folder/image.png'.",
        ),
        ("/etc/x.png", "output_path '/etc/x.png' is absolute; give a path relative to your folder."),
        ("", "output_path is empty; give a file name such as 'sunset.png'."),
        ("x" * 300 + ".png", "output_path has a name longer than 255 bytes: '" + "x" * 40 + "'..."),
        (
            f"users/{ALICE}/",
            f"output_path 'users/{ALICE}/' names your folder itself; add a file name.",
        ),
        (
            f"users/{BOB}/x.png",
            f"output_path 'users/{BOB}/x.png' is outside your folder s3://gim-images-test/users/{ALICE}/; "
            "give a key inside it, such as 'folder/image.png'.",
        ),
        (
            "s3://other-bucket/users/x.png",
            "output_path 's3://other-bucket/users/x.png' is not in this server's bucket; give a key inside your "
            f"folder s3://gim-images-test/users/{ALICE}/, such as 'folder/image.png'.",
        ),
        (
            f"users/{ALICE}/../{BOB}/x.png",
            f"output_path '../{BOB}/x.png' contains '..'; paths may not leave the allowed folder.",
        ),
    ],
)
def test_save_refuses_keys_that_leave_the_folder_or_cannot_exist(
    store: S3ImageStore, s3: Any, aws: Names, raw: str, message: str
) -> None:
    with pytest.raises(SandboxError) as caught:
        store.save(ALICE, raw, PNG, "image/png")
    assert caught.value.message == message
    assert object_keys(s3, aws.bucket) == []


def test_save_refuses_a_key_longer_than_s3_allows(store: S3ImageStore) -> None:
    raw = "/".join(["d" * 200] * 5) + ".png"  # 1009 characters: fine as a path, too long under the prefix
    with pytest.raises(SandboxError, match="too long for S3"):
        store.save(ALICE, raw, PNG, "image/png")


@pytest.mark.parametrize("user", ["", "a/b", "..", "a..b", ".", " a", "a\nb", "x" * 129, "a\\b"])
def test_unsafe_user_ids_are_refused(store: S3ImageStore, user: str) -> None:
    with pytest.raises(SandboxError, match="cannot name a storage folder"):
        store.save(user, "a.png", PNG, "image/png")
    with pytest.raises(SandboxError, match="cannot name a storage folder"):
        store.list_images(user, None, 10)


# per-user isolation


@pytest.fixture
def alice_image(store: S3ImageStore) -> str:
    return store.save(ALICE, "private/a.png", PNG, "image/png").key


@pytest.mark.parametrize(
    "form", ["{key}", "users/{alice}/{key}", "/users/{alice}/{key}", "s3://{bucket}/users/{alice}/{key}"]
)
def test_another_user_cannot_read_or_link_an_image(
    store: S3ImageStore, aws: Names, alice_image: str, form: str
) -> None:
    raw = form.format(key=alice_image, alice=ALICE, bucket=aws.bucket)
    expected = NotFoundError if form == "{key}" else SandboxError  # a plain key names Bob's own (missing) file
    for call in (
        lambda: store.read_input(BOB, raw, 10_000),
        lambda: store.read_output(BOB, raw, 10_000),
        lambda: store.link_for(BOB, raw),
    ):
        with pytest.raises(expected):
            call()
    assert store.read_input(ALICE, raw, 10_000) == PNG  # the same string works for its owner


def test_another_user_cannot_list_a_folder(store: S3ImageStore, aws: Names, alice_image: str) -> None:
    assert store.list_images(BOB, None, 10) == []
    for raw in (f"users/{ALICE}", f"users/{ALICE}/private", f"s3://{aws.bucket}/users/{ALICE}/", "../" + ALICE):
        with pytest.raises(SandboxError):
            store.list_images(BOB, raw, 10)
    with pytest.raises(NotFoundError):
        store.list_images(BOB, "private", 10)
    assert [item.key for item in store.list_images(ALICE, f"users/{ALICE}", 10)] == [alice_image]


def test_bob_saving_alices_name_lands_in_bobs_folder(
    store: S3ImageStore, s3: Any, aws: Names, alice_image: str
) -> None:
    assert store.save(BOB, alice_image, b"bob", "image/png").key == alice_image
    assert store.read_output(ALICE, alice_image, 10_000) == PNG
    assert object_keys(s3, aws.bucket) == [f"users/{ALICE}/{alice_image}", f"users/{BOB}/{alice_image}"]


# read


def test_read_returns_the_bytes_and_refuses_large_or_missing_objects(store: S3ImageStore) -> None:
    store.save(ALICE, "in/photo.png", PNG, "image/png")
    assert store.read_input(ALICE, "in/photo.png", len(PNG)) == PNG
    with pytest.raises(InvalidArgumentError) as caught:
        store.read_input(ALICE, "in/photo.png", 100)
    assert caught.value.message == "input path 'in/photo.png' is 264 bytes; the limit is 100 bytes."
    with pytest.raises(NotFoundError) as missing:
        store.read_output(ALICE, "in/nope.png", 100)
    assert missing.value.message == f"image_path 'in/nope.png' was not found in s3://gim-images-test/users/{ALICE}/."
    with pytest.raises(SandboxError, match=r"contains '\.\.'"):
        store.read_input(ALICE, "../x.png", 100)


def test_read_refuses_a_large_object_in_megabytes(store: S3ImageStore) -> None:
    store.save(ALICE, "big.png", b"\0" * (3 * 1024 * 1024), "image/png")
    with pytest.raises(InvalidArgumentError) as caught:
        store.read_output(ALICE, "big.png", 2 * 1024 * 1024)
    assert caught.value.message == "image_path 'big.png' is 3 MB; the limit is 2 MB."


# list and link


def test_list_images_newest_first_images_only_with_fresh_links(store: S3ImageStore, s3: Any, aws: Names) -> None:
    store.save(ALICE, "old.png", b"old", "image/png")
    s3.put_object(Bucket=aws.bucket, Key=f"users/{ALICE}/notes.txt", Body=b"text")
    time.sleep(1.1)  # S3 listings have one-second timestamps
    store.save(ALICE, "sub/new.JPG", b"new", "image/jpeg")
    listed = store.list_images(ALICE, None, 10)
    assert [item.key for item in listed] == ["sub/new.JPG", "old.png"]
    assert listed[0].location == f"s3://{aws.bucket}/users/{ALICE}/sub/new.JPG"
    assert (listed[0].size_bytes, listed[0].modified.endswith("+00:00")) == (3, True)
    assert download(listed[0].link)[0] == b"new"
    assert [item.key for item in store.list_images(ALICE, None, 1)] == ["sub/new.JPG"]
    assert [item.key for item in store.list_images(ALICE, "sub", 10)] == ["sub/new.JPG"]
    assert [item.key for item in store.list_images(ALICE, "./", 10)] == ["sub/new.JPG", "old.png"]
    assert store.list_images(ALICE, None, 0) == []


def test_list_images_and_free_names_page_through_listings(store: S3ImageStore, s3: Any, aws: Names) -> None:
    store.list_page_size = 2
    for index in range(5):
        s3.put_object(Bucket=aws.bucket, Key=f"users/{ALICE}/many/{index}.png", Body=b"x")
    listed = store.list_images(ALICE, "many", 10)
    assert [item.key for item in listed] == [f"many/{index}.png" for index in (4, 3, 2, 1, 0)]  # same second: by key
    for name in ("a.png", "a-2.png", "a-3.png", "a-4.png"):
        s3.put_object(Bucket=aws.bucket, Key=f"users/{ALICE}/{name}", Body=b"x")
    assert store.save(ALICE, "a.png", PNG, "image/png").key == "a-5.png"
    assert store.presigned_upload(ALICE, "a.png", "image/png", 10, 60)["key"] == "a-6.png"


def test_link_for_an_existing_key_and_refusal_for_a_missing_one(store: S3ImageStore) -> None:
    store.save(ALICE, "a.png", PNG, "image/png")
    assert download(store.link_for(ALICE, "a.png"))[0] == PNG
    with pytest.raises(NotFoundError) as caught:
        store.link_for(ALICE, "b.png")
    assert caught.value.message == f"key 'b.png' was not found in s3://gim-images-test/users/{ALICE}/."


# presigned uploads


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return decoded


def test_presigned_upload_within_the_limit_lands_in_the_users_folder(store: S3ImageStore, aws: Names) -> None:
    upload = store.presigned_upload(ALICE, "uploads/photo.jpg", "image/png", 1000, 300)
    assert upload["key"] == "uploads/photo.png"  # the extension follows the content type
    assert upload["location"] == f"s3://{aws.bucket}/users/{ALICE}/uploads/photo.png"
    assert upload["fields"]["key"] == f"users/{ALICE}/uploads/photo.png"
    assert post_form(upload["url"], upload["fields"], PNG) == 204
    assert store.read_input(ALICE, upload["key"], 1000) == PNG


def test_presigned_upload_policy_limits_size_type_and_key(store: S3ImageStore, aws: Names) -> None:
    """S3 enforces these conditions; moto 5.2 does not check POST policies (an oversized POST returns 204 there),
    so the size limit is asserted on the signed policy, not on moto's answer."""
    upload = store.presigned_upload(ALICE, "u.webp", "image/webp", 5000, 120)
    conditions = policy_of(upload["fields"])["conditions"]
    assert ["content-length-range", 1, 5000] in conditions
    assert {"Content-Type": "image/webp"} in conditions
    assert {"key": f"users/{ALICE}/u.webp"} in conditions
    assert {"bucket": aws.bucket} in conditions
    assert {"x-amz-server-side-encryption": "AES256"} in conditions
    assert upload["fields"]["Content-Type"] == "image/webp"
    assert upload["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"


def test_presigned_upload_picks_a_free_name(store: S3ImageStore) -> None:
    store.save(ALICE, "photo.png", PNG, "image/png")
    assert store.presigned_upload(ALICE, "photo.png", "image/png", 1000, 60)["key"] == "photo-2.png"


@pytest.mark.parametrize(
    ("key", "content_type", "max_bytes", "expires", "error", "message"),
    [
        ("a.gif", "image/gif", 10, 60, InvalidArgumentError, "content_type 'image/gif' is not accepted"),
        ("a.png", "image/png", 0, 60, InvalidArgumentError, "max_bytes must be at least 1"),
        ("a.png", "image/png", 10, 700_000, InvalidArgumentError, "expires must be 1-604800 seconds"),
        ("../a.png", "image/png", 10, 60, SandboxError, "contains '..'"),
        (f"users/{BOB}/a.png", "image/png", 10, 60, SandboxError, "is outside your folder"),
    ],
)
def test_presigned_upload_refusals(
    store: S3ImageStore, key: str, content_type: str, max_bytes: int, expires: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        store.presigned_upload(ALICE, key, content_type, max_bytes, expires)
