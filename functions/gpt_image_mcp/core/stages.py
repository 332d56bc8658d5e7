"""The worded progress of an image call: validated → sent to OpenAI → each partial image → received → saved.

A call can take minutes, so the caller hears each step as it happens (MCP progress notifications; a job's status
message, which tasks show too). The fractions only ever grow, whatever order the steps are reported in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gpt_image_mcp.core.events import Partial
from gpt_image_mcp.core.planning import ImagePlan
from gpt_image_mcp.core.upstream import UpstreamResult

Progress = Callable[[float, str], Awaitable[None]]
Preview = Callable[[Partial], Awaitable[str | None]]  # keeps a partial image where the caller can see it: its link

VALIDATED, SENT, RECEIVED, SAVED = 0.05, 0.1, 0.8, 0.95
PREVIEW_MARK = "; preview: "  # a partial image's step ends with this and its link
_PARTIALS_SPAN = RECEIVED - SENT - 0.1  # the partial images share this, above SENT


def _images(count: int) -> str:
    return f"{count} image{'s' if count != 1 else ''}"


class Stages:
    """Reports the steps of one call to `progress` (none when it is None), each once and in increasing order."""

    def __init__(self, plan: ImagePlan, progress: Progress | None, preview: Preview | None = None) -> None:
        self.plan = plan
        self._progress = progress
        self._preview = preview
        self._reached = 0.0

    async def _step(self, fraction: float, message: str) -> None:
        if self._progress is not None and fraction > self._reached:
            self._reached = fraction
            await self._progress(fraction, message)

    async def validated(self) -> None:
        params = self.plan.params
        await self._step(
            VALIDATED,
            f"Validated: {_images(int(params['n']))} with {self.plan.spec.name}, size {params['size']}, "
            f"quality {params['quality']}",
        )

    async def sent(self) -> None:
        count = int(self.plan.params["n"])
        waiting = "the image" if count == 1 else f"the {count} images"
        await self._step(SENT, f"Sent to OpenAI ({self.plan.spec.name}); waiting for {waiting}")

    async def partial(self, partial: Partial) -> None:
        planned = max(self.plan.partial_images, partial.index + 1)
        link = await self._preview(partial) if self._preview is not None else None
        where = f"{PREVIEW_MARK}{link}" if link else ""
        number = partial.index + 1
        await self._step(SENT + _PARTIALS_SPAN * number / planned, f"Partial image {number} of {planned}{where}")

    async def received(self, upstream: UpstreamResult, *, earlier: bool = False) -> None:
        size = sum(len(image) for image in upstream.images) / (1024 * 1024)
        what = "Using the images OpenAI returned to an earlier attempt" if earlier else "Received from OpenAI"
        await self._step(RECEIVED, f"{what}: {_images(len(upstream.images))}, {size:.1f} MB")

    async def saved(self, count: int) -> None:
        await self._step(SAVED, f"Saved {_images(count)}")


def shows_preview(message: str) -> bool:
    """Whether a step's message (a job's status) announces a kept partial image."""
    return PREVIEW_MARK in message
