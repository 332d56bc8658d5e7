"""Tenant isolation: user B, with its own key, cannot read, list, link or reuse anything of user A's."""

from __future__ import annotations

import pytest
from remote_support import mcp_client, refused, succeeds

from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape

pytestmark = pytest.mark.anyio


async def test_user_b_gets_nothing_of_user_a(shape: RemoteShape, emulator: EmulatorServer) -> None:
    alice, bob = shape.create_key("alice@example.com"), shape.create_key("bob@example.com")
    async with mcp_client(shape, alice, "auto") as a:
        made = await succeeds(a, "generate_image", {"prompt": "alice's secret", "quality": "low",
                                                    "output_path": "private/secret.png"})  # fmt: skip
    secret = made.structured_content or {}
    history_id, image = secret["history_id"], secret["images"][0]
    full_key = image["location"].split("/", 3)[3]  # users/<alice>/private/secret.png
    assert full_key.startswith("users/") and full_key.endswith(image["path"])
    emulator.reset()

    async with mcp_client(shape, bob, "auto") as b:
        assert "No history record" in await refused(b, "get_history_by_uuid", {"uuid": history_id})
        history = await succeeds(b, "list_history", {})
        assert (history.structured_content or {})["total"] == 0

        for path, why in (
            (image["path"], "was not found in"),  # the same key means bob's own folder
            (full_key, "is outside your folder"),
            (image["location"], "is outside your folder"),
            (f"../{full_key.split('/')[1]}/{image['path']}", "may not leave the allowed folder"),
        ):
            assert why in await refused(b, "edit_image", {"prompt": "steal", "reference_image_path": path})
            assert why in await refused(b, "get_metadata_from_image", {"image_path": path})

        assert "not found" in await refused(b, "list_generated_images", {"directory": "private"})
        assert "outside your folder" in await refused(
            b, "list_generated_images", {"directory": "/".join(full_key.split("/")[:2])}
        )
        everything = await succeeds(b, "list_generated_images", {})
        assert (everything.structured_content or {})["images"] == []
        own = await succeeds(b, "generate_image", {"prompt": "bob's own", "quality": "low"})
        listed = await succeeds(b, "list_generated_images", {})
        paths = [item["path"] for item in (listed.structured_content or {})["images"]]
        assert paths == [(own.structured_content or {})["images"][0]["path"]]
    assert len(emulator.requests) == 1  # only bob's own generation reached OpenAI
