"""A time budget for synchronous image calls: refuse what cannot finish in time, and cap each upstream attempt.

Behind API Gateway a request is cut at 30 s, and a Lambda is stopped at its timeout; an image call that is still
waiting on OpenAI then fails without an answer, yet OpenAI still bills it. `RequestBudget` is consulted by
`ImagesClient` just before anything is sent: it refuses calls that are known to be slow (with a pointer to the job
tools), and turns the time the caller has left into the timeout of each attempt, so a slow call ends with the
client's own timeout message while there is still time to answer.

Slow means: quality high/xhigh/max; more than 2048x2048 pixels; more than two images; or several reference images at
medium quality or above ("auto" counts as medium: the API picks it). The thresholds are fields, so a deployment with
a longer budget can relax them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpt_image_mcp.core.catalog import parse_size
from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.planning import ImagePlan

SLOW_QUALITIES = frozenset({"high", "xhigh", "max"})
MEDIUM_OR_ABOVE = frozenset({"auto", "medium", "high", "xhigh", "max"})


class TooSlowError(UserFacingError):
    """The call would not finish within the request's time budget; nothing was sent or charged."""

    kind = "too_slow"

    def __init__(self, message: str, *, why: str) -> None:
        super().__init__(message)
        self.why = why  # the short reason, for a caller that hands the call to a job instead


@dataclass(frozen=True, slots=True)
class RequestBudget:
    """Time policy of one synchronous request; `time_left` gives the seconds left now (None: unknown)."""

    time_left: Callable[[], float | None]
    budget_seconds: float = 30.0  # what the user is told: API Gateway's integration limit
    margin_seconds: float = 3.0  # kept back to save the images, write history and answer
    min_attempt_seconds: float = 5.0  # below this an attempt is pointless: refuse instead
    slow_qualities: frozenset[str] = SLOW_QUALITIES
    max_pixels: int = 2048 * 2048
    max_samples: int = 2
    multi_reference_qualities: frozenset[str] = MEDIUM_OR_ABOVE

    def reasons(self, plan: ImagePlan) -> list[str]:
        """Why `plan` is too slow for this budget; empty when it may run."""
        params = plan.params
        quality = str(params.get("quality", "auto"))
        reasons = []
        if quality in self.slow_qualities:
            reasons.append(f"quality '{quality}'")
        size = str(params.get("size", "auto"))
        if size != "auto":
            width, height = parse_size(size)
            if width * height > self.max_pixels:
                reasons.append(f"size {size} (over {self.max_pixels:,} pixels)")
        count = int(params.get("n", 1))
        if count > self.max_samples:
            reasons.append(f"sample_count {count} (over {self.max_samples})")
        if len(plan.images) > 1 and quality in self.multi_reference_qualities:
            reasons.append(f"{len(plan.images)} reference images at quality '{quality}'")
        return reasons

    def check(self, plan: ImagePlan) -> None:
        """Raise `TooSlowError` when `plan` is known to be slow or too little time is left; else return."""
        reasons = self.reasons(plan)
        if reasons:
            limit = f"{self.budget_seconds:.0f} s"
            why = f"it would likely take longer than the {limit} a request may run ({'; '.join(reasons)})"
            raise TooSlowError(
                f"This {plan.tool} call would likely take longer than the {self.budget_seconds:.0f} s a remote MCP "
                f"request may run ({'; '.join(reasons)}), so nothing was sent and nothing was charged. Run it as a "
                f"background job instead: start_generation_job with tool_name='{plan.tool}' and the same "
                "parameters, then check_job_status and get_job_result. Or make it fit: quality low or medium, at "
                f"most {self.max_pixels:,} pixels, sample_count up to {self.max_samples}, one reference image.",
                why=why,
            )
        left = self.attempt_timeout()
        if left is not None and left < self.min_attempt_seconds:
            raise TooSlowError(
                f"Too little of this request's {self.budget_seconds:.0f} s remains to call OpenAI "
                f"({left:.1f} s); try again, or use start_generation_job for a background job.",
                why=f"too little of this request's {self.budget_seconds:.0f} s was left to call OpenAI",
            )

    def attempt_timeout(self) -> float | None:
        """Seconds the next upstream attempt may take (time left minus the margin); None when unknown."""
        left = self.time_left()
        return None if left is None else left - self.margin_seconds

    def can_retry_after(self, delay: float) -> bool:
        """Whether waiting `delay` seconds still leaves room for a useful attempt."""
        timeout = self.attempt_timeout()
        return timeout is None or timeout - delay >= self.min_attempt_seconds
