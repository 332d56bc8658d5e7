"""The local server's settings: the image service's, plus what only a local process has (folders, SQLite, a pool).

Built once by `gpt-image-mcp`: `LocalSettings.from_env(local_environment(os.environ))`. `~` and `$VARS` in paths are
expanded; paths are made absolute, so a later change of working directory changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from gpt_image_mcp.core.config import Settings

DEFAULT_OUTPUT_DIR = "~/Downloads/openai-images"
DEFAULT_HISTORY_DB = "~/.openai-gpt-image/history.db"
CONFIG_ENV_FILE = "~/.openai-gpt-image/.env"  # beside the default history database
OUTPUT_DIR = "OPENAI_IMAGE_OUTPUT_DIR"
INPUT_DIR = "OPENAI_IMAGE_INPUT_DIR"


class LocalSettings(Settings):
    """`Settings` plus the folders, the SQLite file, the job pool and the synchronous call budget."""

    output_dir: Path = Field(default=Path(DEFAULT_OUTPUT_DIR), validate_default=True, validation_alias=OUTPUT_DIR)
    input_dir: Path = Field(default=Path(DEFAULT_OUTPUT_DIR), validate_default=True, validation_alias=INPUT_DIR)
    history_db_path: Path = Field(
        default=Path(DEFAULT_HISTORY_DB), validate_default=True, validation_alias="HISTORY_DB_PATH"
    )
    history_db_wait_seconds: float = Field(default=10.0, ge=1, le=600, validation_alias="HISTORY_DB_TIMEOUT")
    job_concurrency: int = Field(default=2, ge=1, le=16, validation_alias="OPENAI_IMAGE_JOB_CONCURRENCY")
    sync_budget_seconds: int = Field(default=50, ge=0, le=3600, validation_alias="OPENAI_IMAGE_SYNC_BUDGET")
    debug: bool = Field(default=False, validation_alias="DEBUG")

    @model_validator(mode="before")
    @classmethod
    def _input_defaults_to_output(cls, data: Any) -> Any:
        """Input images are read from the output folder unless OPENAI_IMAGE_INPUT_DIR says otherwise."""
        if isinstance(data, dict) and INPUT_DIR not in data and "input_dir" not in data:
            output = data.get(OUTPUT_DIR, data.get("output_dir", DEFAULT_OUTPUT_DIR))
            data = {**data, INPUT_DIR: output}
        return data

    @field_validator("output_dir", "input_dir", "history_db_path", mode="after")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        return path.expanduser().resolve()


def local_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the local server runs with: its own environment first, then a `.env` found from the working
    directory up (as the reference reads it), then ~/.openai-gpt-image/.env, which works wherever the server is
    started (a desktop client starts it in `/`). Neither file changes the process environment."""
    from dotenv import dotenv_values, find_dotenv

    nearest = find_dotenv(usecwd=True)  # "" when there is none
    files = [Path(CONFIG_ENV_FILE).expanduser(), *([Path(nearest)] if nearest else [])]
    merged: dict[str, str] = {}
    for found in files:
        if found.is_file():
            merged |= {name: value for name, value in dotenv_values(found).items() if value is not None}
    return merged | dict(environ)
