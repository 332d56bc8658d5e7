"""`--summary OUT.json`: every request's outcome, files, history id and cost, for scripts.

Written whole or not at all (a temporary file beside it, then renamed), also after a stop, so a script never reads
half a summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_sandbox.batch.run import Outcome, Tally


def summary(file: Path, target: str, outcomes: list[Outcome], *, interrupted: bool) -> dict[str, Any]:
    tally = Tally.of(outcomes)
    return {
        "file": str(file),
        "target": target,
        "interrupted": interrupted,
        "totals": {
            "requests": tally.total,
            "done": tally.done,
            "done_earlier": tally.earlier,
            "failed": tally.failed,
            "not_finished": tally.total - tally.settled,
            "spent_usd": round(tally.spent, 6),
            "estimate_usd": round(sum(outcome.estimate.usd or 0.0 for outcome in outcomes), 6),
        },
        "requests": [_request(outcome) for outcome in outcomes],
    }


def write_summary(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)


def _request(outcome: Outcome) -> dict[str, Any]:
    request, result = outcome.request, outcome.result
    return {
        "index": request.index,
        "tool": request.tool,
        "prompt": request.args.prompt,
        "identity": request.identity,
        "state": outcome.label,
        "job_id": outcome.job_id,
        "history_id": result.history_id if result is not None else None,
        "files": [
            image.model_dump(include={"path", "location", "link", "width", "height", "bytes", "format"})
            for image in (result.images if result is not None else [])
        ],
        "cost_usd": outcome.cost,
        "cost_estimated": bool(result is not None and result.cost is not None and result.cost.estimated),
        "estimate_usd": outcome.estimate.usd,
        "error": outcome.error,
    }
