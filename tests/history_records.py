"""A history record for the history store tests (a module, not conftest, so test files can import it)."""

from __future__ import annotations

from gpt_image_mcp.core.storage import HistoryImage, HistoryRecord


def record(
    uuid: str,
    *,
    user: str = "alice",
    prompt: str = "a red fox",
    tool_name: str = "generate_image",
    created_at: str = "2025-01-01T00:00:00+00:00",
) -> HistoryRecord:
    return HistoryRecord(
        uuid=uuid,
        user=user,
        tool_name=tool_name,
        prompt=prompt,
        model="gpt-image-2",
        parameters={"size": "1024x1024", "quality": "high", "n": 1, "output_compression": None, "ratio": 0.1},
        param_hash="abc123",
        created_at=created_at,
        images=[
            HistoryImage(
                key="fox.png",
                location="s3://b/users/alice/fox.png",
                format="png",
                width=1024,
                height=1024,
                size_bytes=2048,
            )
        ],
        usage={"input_tokens": 10, "output_tokens": 4160},
        cost={"total_usd": 0.167, "breakdown": {"output": 0.1664, "input": 1e-05}},
    )
