"""The image use case, independent of transport and storage: validate, call OpenAI, save, record.

Handlers (MCP tools, job workers) call `ImageService`; it talks to storage only through the
interfaces in `storage`, so the same code runs on a laptop and on Lambda.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from gpt_image_mcp.core import metadata
from gpt_image_mcp.core.catalog import Catalog
from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.decoding import BrokenImageError, decode_fully
from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError, StorageError, UpstreamError
from gpt_image_mcp.core.imageinfo import MIME_TYPES, ImageInfo, sniff
from gpt_image_mcp.core.planning import (
    MAX_INPUT_BYTES,
    ImagePlan,
    InputImage,
    Streaming,
    ToolName,
    as_list,
    decode_base64,
    input_image,
    plan_edit,
    plan_generate,
    resolve_model,
)
from gpt_image_mcp.core.pricing import Cost, Usage, estimate_output_tokens, price
from gpt_image_mcp.core.requests import EditImageArgs, ImageToolArgs, TransformImageArgs
from gpt_image_mcp.core.results import CostInfo, ImageFile, ImageToolResult, MetadataCheck, UsageInfo
from gpt_image_mcp.core.sandbox import numbered_keys, with_format_extension
from gpt_image_mcp.core.stages import Preview, Progress, Stages
from gpt_image_mcp.core.storage import HistoryImage, HistoryRecord, HistoryStore, ImageStore, StoredImage
from gpt_image_mcp.core.thumbnails import make_thumbnail, thumbnail_of
from gpt_image_mcp.core.upstream import ImagesClient, UpstreamResult

log = logging.getLogger(__name__)
DECODERS = os.cpu_count() or 2  # images of one answer decoded side by side (Pillow decodes without the GIL)

Checkpoint = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class ImageOutcome:
    """What a tool handler needs to build its reply."""

    result: ImageToolResult
    thumbnails: list[bytes] = field(default_factory=list)  # JPEG previews, one per image, when asked
    inline: list[tuple[bytes, str]] = field(default_factory=list)  # (bytes, mime) when return_base64 fits


def param_hash(parameters: dict[str, Any]) -> str:
    """Stable fingerprint of a call's parameters, embedded in files and stored in history."""
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def default_output_name(prompt: str, now: dt.datetime) -> str:
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    slug = "-".join(words[:6])[:40].strip("-") or "image"
    return f"{slug}-{now.strftime('%Y%m%d-%H%M%S')}.png"


class ImageService:
    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        client: ImagesClient,
        images: ImageStore,
        history: HistoryStore,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.client = client
        self.images = images
        self.history = history
        self.clock = clock

    # -- planning -------------------------------------------------------------------------------

    async def plan(self, user: str, tool: ToolName, args: ImageToolArgs) -> ImagePlan:
        """Validate everything without calling OpenAI: the arguments against the model, the inputs (read and
        sniffed), and whatever a save could fail on later (the output path through existing folders, a folder
        that cannot be written, too little room for the images), so nothing is paid for that cannot be saved."""
        plan = await self._plan(user, tool, args)
        key = args.output_path or default_output_name(args.prompt, self.clock())
        try:
            await anyio.to_thread.run_sync(self.images.check_key, user, key, plan.expected_bytes)
        except StorageError as error:
            raise StorageError(f"{error.message} Nothing was sent to OpenAI.") from error
        return plan

    async def _plan(self, user: str, tool: ToolName, args: ImageToolArgs) -> ImagePlan:
        spec, warnings = resolve_model(args, self.settings.default_model, self.catalog, self.clock().date())
        partials = self.settings.partial_images if args.partial_images is None else args.partial_images
        streaming = Streaming(enabled=self.settings.stream, partial_images=partials)
        if tool == "generate_image":
            return plan_generate(args, spec, self.catalog, warnings, streaming)
        assert isinstance(args, TransformImageArgs)
        images = await self._inputs(
            user, as_list(args.reference_image_path), as_list(args.reference_image_base64), "reference_image"
        )
        mask = None
        if isinstance(args, EditImageArgs):
            masks = await self._inputs(
                user, as_list(args.mask_image_path), as_list(args.mask_image_base64), "mask_image"
            )
            if len(masks) > 1:
                raise InvalidArgumentError("Give either mask_image_path or mask_image_base64, not both.")
            mask = masks[0] if masks else None
        return plan_edit(tool, args, spec, self.catalog, warnings, images, mask, streaming)

    async def _inputs(self, user: str, paths: list[str], blobs: list[str], name: str) -> list[InputImage]:
        loaded = []
        for index, path in enumerate(paths):
            if not isinstance(path, str) or not path.strip():
                raise InvalidArgumentError(f"{name}_path[{index}] is empty.")
            data = await anyio.to_thread.run_sync(self.images.read_input, user, path, MAX_INPUT_BYTES)
            loaded.append(input_image(path, data))
        for index, blob in enumerate(blobs):
            label = f"{name}_base64" + (f"[{index}]" if len(blobs) > 1 else "")
            loaded.append(input_image(label, decode_base64(blob, label)))
        return loaded

    # -- the call -------------------------------------------------------------------------------

    async def run(
        self,
        user: str,
        tool: ToolName,
        args: ImageToolArgs,
        *,
        progress: Progress | None = None,
        preview: Preview | None = None,
        before_save: Checkpoint | None = None,
        safety_identifier: str | None = None,
        history_id: str | None = None,
        upstream: UpstreamResult | None = None,
        after_upstream: Callable[[UpstreamResult], Awaitable[None]] | None = None,
    ) -> ImageOutcome:
        """Plan, call OpenAI, decode every image, save, reporting each step to `progress` (a partial image through
        `preview` first, which may keep it and give a link). A job passes a fixed `history_id` (a re-run adds no
        second record), the `upstream` result an earlier attempt already paid for (nothing is sent then), and
        `after_upstream` to keep a fresh result before anything is saved."""
        plan = await self.plan(user, tool, args)
        stages = Stages(plan, progress, preview)
        await stages.validated()
        if upstream is None:
            await stages.sent()
            try:
                upstream = await self.client.run(plan, safety_identifier=safety_identifier, on_partial=stages.partial)
            except UpstreamError as error:
                if not plan.spec.known:  # keep the catalog hint: the model name is the likely culprit
                    error.message = f"{error.message} {plan.warnings[0]}" if plan.warnings else error.message
                    error.args = (error.message,)
                raise
            await stages.received(upstream)
            upstream, previews = await self.decoded(upstream, self._wants_previews(args))
            if after_upstream:
                await after_upstream(upstream)
        else:
            await stages.received(upstream, earlier=True)
            previews = None
        if before_save:
            await before_save()
        outcome = await self.save(user, args, plan, upstream, history_id=history_id, previews=previews)
        await stages.saved(len(outcome.result.images))
        return outcome

    async def decoded(
        self, upstream: UpstreamResult, previews: bool = False
    ) -> tuple[UpstreamResult, list[bytes] | None]:
        """The answer with every image decoded to its last pixel (in worker threads, as many side by side as there
        are processors), and, when `previews`, each good image's preview made from those pixels: an image is decoded
        once. A broken image is left out with a note saying which; when none decodes, an `UpstreamError` names
        OpenAI's answer."""
        problems: list[str | None] = [None] * len(upstream.images)
        thumbnails: list[bytes | None] = [None] * len(upstream.images)
        limiter = anyio.CapacityLimiter(DECODERS)

        def check(index: int) -> None:
            try:
                decoded = decode_fully(upstream.images[index])
            except BrokenImageError as error:
                problems[index] = str(error)
                return
            if previews:
                thumbnails[index] = thumbnail_of(
                    decoded.image, self.settings.thumbnail_size, self.settings.thumbnail_quality
                )

        async def checked(index: int) -> None:
            await anyio.to_thread.run_sync(check, index, limiter=limiter)

        async with anyio.create_task_group() as group:
            for index in range(len(upstream.images)):
                group.start_soon(checked, index)
        made = [thumbnail for thumbnail in thumbnails if thumbnail is not None] if previews else None
        broken = [index for index, problem in enumerate(problems) if problem is not None]
        if not broken:
            return upstream, made
        count, ref = len(upstream.images), f" (request id {upstream.request_id})" if upstream.request_id else ""
        which = [f"image {index + 1} of {count} does not decode ({problems[index]})" for index in broken]
        if len(broken) == count:
            raise UpstreamError(
                f"OpenAI's answer was broken: {'; '.join(which)}{ref}. Nothing was saved. OpenAI may have billed the "
                "request; it was not sent again, since a new request is billed again.",
                category="broken_image",
                request_id=upstream.request_id,
            )
        notes = [f"OpenAI's answer was broken: {problem}; it was not saved{ref}." for problem in which]
        good = [image for index, image in enumerate(upstream.images) if index not in broken]
        return dataclasses.replace(upstream, images=good, notes=[*upstream.notes, *notes]), made

    async def save(
        self,
        user: str,
        args: ImageToolArgs,
        plan: ImagePlan,
        upstream: UpstreamResult,
        *,
        history_id: str | None = None,
        previews: list[bytes] | None = None,
    ) -> ImageOutcome:
        """Write every image and then the history record, or none of them: a failure removes what this call wrote.
        `previews` are the images' thumbnails when already made (from the pixels decoded to check them)."""
        now = self.clock()
        history_id = history_id or str(uuid.uuid4())
        record_hash = param_hash(plan.record)
        created = now.isoformat(timespec="seconds")
        infos = [sniff(data) for data in upstream.images]
        size = f"{infos[0].width}x{infos[0].height}"
        quality = str(upstream.echoed.get("quality") or plan.params["quality"])
        warnings = [*plan.warnings, *upstream.notes, *_size_warnings(str(plan.params["size"]), infos)]
        warnings += _extension_warnings(args.output_path, infos[0].format)
        keep = args.return_base64 or (previews is None and self._wants_previews(args))  # the saved bytes are needed
        stored = await anyio.to_thread.run_sync(
            self._persist, user, args, plan, upstream.images, history_id, record_hash, created, size, quality, now, keep
        )
        usage = Usage.from_api(upstream.usage)
        cost = self._cost(plan, usage, stored, quality, upstream)
        if usage is not None and upstream.partial_images:
            usage = usage.with_partial_images(upstream.partial_images)
        files = [file for file, _ in stored]
        usage_info = UsageInfo(**_usage_dict(usage)) if usage else None
        record = HistoryRecord(
            uuid=history_id,
            user=user,
            tool_name=plan.tool,
            prompt=args.prompt,
            model=plan.spec.name,
            parameters=plan.record,
            param_hash=record_hash,
            created_at=created,
            images=[
                HistoryImage(
                    key=f.path, location=f.location, format=f.format, width=f.width, height=f.height, size_bytes=f.bytes
                )
                for f in files
            ],
            usage=usage_info.model_dump() if usage_info else None,
            cost=cost.model_dump() if cost else None,
        )
        try:
            await anyio.to_thread.run_sync(self.history.add, record)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._remove, user, [file for file, _ in stored])
            raise
        result = ImageToolResult(
            history_id=history_id,
            tool=plan.tool,
            model=plan.spec.name,
            prompt=args.prompt,
            size=size,
            quality=quality,
            output_format=files[0].format,
            images=files,
            usage=usage_info,
            cost=cost,
            warnings=warnings,
        )
        outcome = ImageOutcome(result=result)
        await self._attach(outcome, args, stored, previews)
        return outcome

    async def fresh_links(self, user: str, keys: Sequence[str]) -> list[str | None]:
        """A link made now for each key: a presigned link expires (1 h by default) long before a job or a history
        record does. None for a file that is no longer there."""

        def make() -> list[str | None]:
            links: list[str | None] = []
            for key in keys:
                try:
                    links.append(self.images.link_for(user, key))
                except NotFoundError:
                    links.append(None)
            return links

        return await anyio.to_thread.run_sync(make)

    async def reopen(self, user: str, result: ImageToolResult, args: ImageToolArgs) -> ImageOutcome:
        """The outcome of an earlier call (a finished job): links made now, thumbnails and inline data read back from
        its files."""
        links = await self.fresh_links(user, [file.path for file in result.images])
        gone = [file.path for file, link in zip(result.images, links, strict=True) if link is None]
        images = [
            file if link is None else file.model_copy(update={"link": link})
            for file, link in zip(result.images, links, strict=True)
        ]
        warnings = [f"No longer in your folder, so their links do not work: {', '.join(gone)}."] if gone else []
        result = result.model_copy(update={"images": images, "warnings": [*result.warnings, *warnings]})
        outcome = ImageOutcome(result=result)
        if not (self._wants_previews(args) or args.return_base64):
            return outcome
        try:
            stored = [
                (file, await anyio.to_thread.run_sync(self.images.read_output, user, file.path, MAX_INPUT_BYTES))
                for file in result.images
            ]
        except (NotFoundError, InvalidArgumentError) as error:
            result.warnings.append(f"No preview: {error.message}")
            return outcome
        await self._attach(outcome, args, stored)
        return outcome

    def _wants_previews(self, args: ImageToolArgs) -> bool:
        return self.settings.thumbnail if args.include_thumbnail is None else args.include_thumbnail

    async def _attach(
        self,
        outcome: ImageOutcome,
        args: ImageToolArgs,
        stored: list[tuple[ImageFile, bytes]],
        previews: list[bytes] | None = None,
    ) -> None:
        """Thumbnails (made here unless given) and inline base64, as the caller asked."""
        if self._wants_previews(args):
            if previews is None:
                previews = await anyio.to_thread.run_sync(self._thumbnails, [data for _, data in stored])
            outcome.thumbnails = previews
        if args.return_base64:
            self._inline(outcome, stored)

    def _persist(
        self,
        user: str,
        args: ImageToolArgs,
        plan: ImagePlan,
        images: list[bytes],
        history_id: str,
        record_hash: str,
        created: str,
        size: str,
        quality: str,
        now: dt.datetime,
        keep: bool,
    ) -> list[tuple[ImageFile, bytes]]:
        """Embed metadata and store each image (runs in a worker thread); all of them, or none. The bytes as saved
        come back only when `keep` (to inline them, or make previews from them): else one image's copy at a time."""
        first = sniff(images[0])
        base = args.output_path or default_output_name(args.prompt, now)
        keys = numbered_keys(with_format_extension(base, first.format), len(images))
        saved: list[tuple[ImageFile, bytes]] = []
        try:
            for key, data in zip(keys, images, strict=True):
                info = sniff(data)
                if self.settings.metadata_level != "off":
                    fields = metadata.build_fields(
                        self.settings.metadata_level,
                        tool=plan.tool,
                        prompt=args.prompt,
                        model=plan.spec.name,
                        created=created,
                        size=size,
                        quality=quality,
                        output_format=info.format,
                        history_uuid=history_id,
                        param_hash=record_hash,
                        parameters=plan.record,
                    )
                    data = metadata.embed(data, fields)
                mime = MIME_TYPES[info.format]
                stored: StoredImage = self.images.save(user, with_format_extension(key, info.format), data, mime)
                file = ImageFile(
                    path=stored.key,
                    location=stored.location,
                    link=stored.link,
                    width=info.width,
                    height=info.height,
                    bytes=stored.size_bytes,
                    format=info.format,
                    mime_type=mime,
                )
                saved.append((file, data if keep else b""))
        except BaseException:
            self._remove(user, [file for file, _ in saved])
            raise
        return saved

    def _remove(self, user: str, files: list[ImageFile]) -> None:
        """Take back the files of a call that could not be completed; a file that will not go is only logged."""
        for file in files:
            try:
                self.images.delete(user, file.path)
            except Exception:
                log.warning("could not remove %s after a failed save", file.location, exc_info=True)

    def _cost(
        self,
        plan: ImagePlan,
        usage: Usage | None,
        stored: list[tuple[ImageFile, bytes]],
        quality: str,
        upstream: UpstreamResult,
    ) -> CostInfo | None:
        """The cost of the images and of the partial previews; estimated (`core.pricing`) when the answer had no
        usage, as a proxy may leave it out."""
        spec = plan.spec
        estimated = usage is None
        if usage is None:
            first = stored[0][0]
            per_image = estimate_output_tokens(self.catalog, spec, first.width, first.height, quality)
            if per_image is None:
                return None
            count = len(upstream.images)
            usage = Usage(output_tokens=per_image * count, total_tokens=per_image * count)
            inputs = plan.input_usage()
            if inputs is not None:
                usage = usage.plus(inputs)
        cost: Cost | None = price(spec, usage.with_partial_images(upstream.partial_images), estimated=estimated)
        if cost is None:
            return None
        return CostInfo(
            text_input=cost.text_input_usd,
            image_input=cost.image_input_usd,
            image_output=cost.image_output_usd,
            total=cost.total_usd,
            estimated=cost.estimated,
            partial_images=cost.partial_images_usd,
        )

    def _thumbnails(self, images: list[bytes]) -> list[bytes]:
        return [make_thumbnail(data, self.settings.thumbnail_size, self.settings.thumbnail_quality) for data in images]

    def _inline(self, outcome: ImageOutcome, stored: list[tuple[ImageFile, bytes]]) -> None:
        encoded = sum((len(data) + 2) // 3 * 4 for _, data in stored)
        cap = self.settings.max_base64_bytes
        if encoded > cap:
            warning = (
                f"return_base64 refused: the image data is {encoded:,} bytes as base64, over the "
                f"{cap:,}-byte cap (OPENAI_IMAGE_MAX_BASE64_BYTES; many clients reject results over "
                "1 MB). The files are saved: use their links, a smaller size, jpeg/webp, or include_thumbnail."
            )
            if warning not in outcome.result.warnings:  # a reopened job result already carries it
                outcome.result.warnings.append(warning)
            return
        outcome.inline = [(data, file.mime_type) for file, data in stored]

    # -- reading back ---------------------------------------------------------------------------

    async def check_metadata(self, user: str, path: str | None, image_base64: str | None) -> MetadataCheck:
        """Read a file's embedded metadata and compare it with the history record it names."""
        if bool(path) == bool(image_base64):
            raise InvalidArgumentError("Give exactly one of image_path or image_base64.")
        if path:
            data = await anyio.to_thread.run_sync(self.images.read_output, user, path, MAX_INPUT_BYTES)
        else:
            data = decode_base64(image_base64 or "", "image_base64")
        info = sniff(data)
        fields = metadata.read(data)
        history_id = fields.get("MCP-History-UUID")

        def check(status: str, detail: str, history: str | None = history_id) -> MetadataCheck:
            return MetadataCheck(
                path=path,
                format=info.format,
                width=info.width,
                height=info.height,
                metadata=fields,
                history_id=history,
                status=status,
                detail=detail,
            )

        if not fields:
            return check("no_metadata", "The file carries no metadata from this server.", None)
        record = await anyio.to_thread.run_sync(self.history.get, user, history_id) if history_id else None
        if record is None:
            return check("no_history", "The metadata names a history record that this history does not hold.")
        problems = []
        if fields.get("MCP-Param-Hash") != record.param_hash or param_hash(record.parameters) != record.param_hash:
            problems.append("parameter hash")
        if "MCP-Prompt" in fields and fields["MCP-Prompt"] != record.prompt:
            problems.append("prompt")
        if fields.get("MCP-Model", record.model) != record.model:
            problems.append("model")
        if problems:
            return check("mismatch", f"Differs from history record {history_id}: {', '.join(problems)}.")
        return check("verified", f"Matches history record {history_id} (parameter hash, prompt and model).")

    async def get_history(self, user: str, history_id: str) -> HistoryRecord:
        record = await anyio.to_thread.run_sync(self.history.get, user, history_id.strip())
        if record is None:
            raise NotFoundError(f"No history record with id '{history_id}'. list_history shows the ids you have.")
        return record


def _size_warnings(asked: str, infos: list[ImageInfo]) -> list[str]:
    """A note when OpenAI's images are not the size the call asked for (the result reports what they are)."""
    sizes = sorted({f"{info.width}x{info.height}" for info in infos})
    if asked == "auto" or sizes == [asked]:
        return []
    return [f"OpenAI returned {' and '.join(sizes)} instead of the {asked} that was asked for."]


def _extension_warnings(output_path: str | None, image_format: str) -> list[str]:
    """A note when the output_path's extension was changed to match the image's format (cat.png as jpeg: cat.jpg)."""
    if not output_path:
        return []
    matched = with_format_extension(output_path, image_format)
    if matched == output_path:
        return []
    return [f"output_path {output_path!r} was saved as {matched!r}: the extension follows the {image_format} format."]


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_text_tokens": usage.input_text_tokens,
        "input_image_tokens": usage.input_image_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "partial_image_tokens": usage.partial_image_tokens,
    }
