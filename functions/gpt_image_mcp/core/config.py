"""Settings read from the environment, with the reference server's variable names and meanings.

`Settings.from_env` is pure (it takes a mapping), so tests build settings without touching
`os.environ`; entry points load `.env` first and pass `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gpt_image_mcp.core.errors import ConfigurationError

METADATA_LEVELS = ("off", "minimal", "standard", "full")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false.")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number; use {low}-{high}.") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={value} is out of range; use {low}-{high}.")
    return value


def _path(env: Mapping[str, str], name: str, default: str) -> Path:
    raw = env.get(name) or default
    return Path(os.path.expandvars(raw)).expanduser().resolve()


@dataclass(frozen=True, slots=True)
class Settings:
    openai_api_key: str | None = None
    openai_organization: str | None = None
    openai_base_url: str | None = None
    output_dir: Path = Path("~/Downloads/openai-images")
    input_dir: Path = Path("~/Downloads/openai-images")
    history_db_path: Path = Path("~/.openai-gpt-image/history.db")
    thumbnail: bool = False
    thumbnail_size: int = 128
    thumbnail_quality: int = 60
    default_model: str = "gpt-image-2"
    metadata_level: str = "standard"
    max_base64_bytes: int = 750_000
    request_timeout: float = 300.0
    max_retries: int = 3
    job_concurrency: int = 2
    sync_budget_seconds: int = 50
    debug: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        output_dir = _path(env, "OPENAI_IMAGE_OUTPUT_DIR", "~/Downloads/openai-images")
        level = (env.get("OPENAI_IMAGE_METADATA") or "standard").strip().lower()
        if level not in METADATA_LEVELS:
            raise ConfigurationError(f"OPENAI_IMAGE_METADATA={level!r}; use one of {', '.join(METADATA_LEVELS)}.")
        return cls(
            openai_api_key=(env.get("OPENAI_API_KEY") or "").strip() or None,
            openai_organization=(env.get("OPENAI_ORGANIZATION") or "").strip() or None,
            openai_base_url=(env.get("OPENAI_BASE_URL") or "").strip() or None,
            output_dir=output_dir,
            input_dir=_path(env, "OPENAI_IMAGE_INPUT_DIR", str(output_dir)),
            history_db_path=_path(env, "HISTORY_DB_PATH", "~/.openai-gpt-image/history.db"),
            thumbnail=_flag(env, "OPENAI_IMAGE_THUMBNAIL", False),
            thumbnail_size=_int(env, "OPENAI_IMAGE_THUMBNAIL_SIZE", 128, 1, 512),
            thumbnail_quality=_int(env, "OPENAI_IMAGE_THUMBNAIL_QUALITY", 60, 1, 100),
            default_model=(env.get("OPENAI_IMAGE_MODEL") or "gpt-image-2").strip(),
            metadata_level=level,
            max_base64_bytes=_int(env, "OPENAI_IMAGE_MAX_BASE64_BYTES", 750_000, 0, 4_500_000),
            request_timeout=float(_int(env, "OPENAI_IMAGE_TIMEOUT", 300, 5, 3600)),
            max_retries=_int(env, "OPENAI_IMAGE_MAX_RETRIES", 3, 0, 10),
            job_concurrency=_int(env, "OPENAI_IMAGE_JOB_CONCURRENCY", 2, 1, 16),
            sync_budget_seconds=_int(env, "OPENAI_IMAGE_SYNC_BUDGET", 50, 0, 3600),
            debug=_flag(env, "DEBUG", False),
        )
