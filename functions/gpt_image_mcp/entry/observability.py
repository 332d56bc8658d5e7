"""Structured JSON logs and CloudWatch metrics for the Lambda functions (AWS Lambda Powertools).

Logs: one Powertools `Logger`; the package's, the MCP SDK's and Mangum's loggers write through its handler, so every
line is JSON and carries the API Gateway request id as `correlation_id`. Nothing here logs headers or bodies, so
neither the Authorization header nor base64 image data reaches the logs.

Metrics (only with a namespace, `POWERTOOLS_METRICS_NAMESPACE` in the function's settings): `ImagesGenerated`
(Count) and `EstimatedCostUSD` per `model` dimension, taken from image tool results by `ImageResultHook` (an MCP
server middleware) and flushed once per invocation, one EMF record per model.

The service name of logs and metrics is fixed (`SERVICE`, like the MCP server's name); Powertools still reads its own
`POWERTOOLS_LOG_LEVEL`. Nothing here reads the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

SERVICE = "gpt-image-mcp"
ROUTED_LOGGERS = ("gpt_image_mcp", "mcp", "mangum", "httpx2", "openai")
IMAGE_TOOLS = frozenset({"generate_image", "edit_image", "transform_image"})


def make_logger() -> Logger:
    """The function's JSON logger (its own handler writes; the root's must not repeat it)."""
    logger = Logger(service=SERVICE)
    logging.getLogger(SERVICE).propagate = False
    return logger


def make_metrics(namespace: str) -> Metrics | None:
    """Powertools metrics in `namespace`; None (nothing recorded) without one."""
    if not namespace:
        return None
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=namespace, service=SERVICE)


def route_library_logs(logger: Logger) -> None:
    """Send the package's, the SDK's and the HTTP clients' logs through `logger`'s JSON handler (process-wide)."""
    handler = logger.registered_handler
    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers = [handler]
        routed.propagate = False
        if name != "gpt_image_mcp":
            routed.setLevel(max(logger.log_level, logging.WARNING))  # the SDK is chatty at INFO
        else:
            routed.setLevel(logger.log_level)


class ImageMetrics:
    """Counts images and cost per model during an invocation; `flush` writes them as EMF."""

    def __init__(self, namespace: str = "") -> None:
        self._metrics = make_metrics(namespace)
        self._pending: dict[str, tuple[int, float]] = {}

    @property
    def enabled(self) -> bool:
        return self._metrics is not None

    def record(self, model: str, images: int, cost_usd: float | None) -> None:
        count, cost = self._pending.get(model, (0, 0.0))
        self._pending[model] = (count + images, cost + (cost_usd or 0.0))

    def flush(self) -> None:
        """Emit what was recorded since the last flush; nothing (and no warning) when nothing was."""
        pending, self._pending = self._pending, {}
        metrics = self._metrics
        if metrics is None:
            return
        from aws_lambda_powertools.metrics import MetricUnit

        for model, (count, cost) in sorted(pending.items()):
            metrics.add_dimension(name="model", value=model)
            metrics.add_metric(name="ImagesGenerated", unit=MetricUnit.Count, value=count)
            metrics.add_metric(name="EstimatedCostUSD", unit=MetricUnit.NoUnit, value=cost)
            metrics.flush_metrics()


class ImageResultHook:
    """MCP server middleware: feeds successful image tool results to `ImageMetrics` and logs a one-line summary."""

    def __init__(self, metrics: ImageMetrics, logger: Logger | logging.Logger) -> None:
        self.metrics = metrics
        self.logger = logger

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        params = ctx.params if isinstance(ctx.params, Mapping) else {}
        tool = params.get("name")
        if ctx.method != "tools/call" or tool not in IMAGE_TOOLS or not isinstance(result, Mapping):
            return result
        content = result.get("structuredContent")
        if result.get("isError") or not isinstance(content, Mapping):
            return result
        model = str(content.get("model") or "unknown")
        images = len(content.get("images") or [])
        cost = content.get("cost") if isinstance(content.get("cost"), Mapping) else None
        total = float(cost["total"]) if cost and isinstance(cost.get("total"), int | float) else None
        self.metrics.record(model, images, total)
        self.logger.info(
            "image tool done",
            extra={"tool": tool, "model": model, "images": images, "cost_usd": total,
                   "history_id": content.get("history_id")},
        )  # fmt: skip
        return result
