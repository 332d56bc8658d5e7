"""Settings read from the environment once per entry point, with the reference server's variable names.

Each entry point builds one typed settings object at start, `SettingsClass.from_env(mapping)`: the local server
(`local_sandbox.settings.LocalSettings`), the MCP Lambda function and the SQS worker
(`gpt_image_mcp.aws.config.McpSettings`, `WorkerSettings`). All of them extend `Settings`, which holds what the image
service needs. A field's alias is its environment variable. `from_env` is pure (it takes a mapping: tests, and the
remote shape that runs both functions in one process, pass their own), treats an empty value as unset, validates
everything, and reports every problem in one message that names the variable, the value and what is allowed.
Nothing else in the package reads the environment.

Plain pydantic rather than pydantic-settings: its sources read `os.environ` and `.env` themselves, which is what the
entry points must not do (they are handed their environment), and the rest (aliases, bounds, parsing) is pydantic's;
pydantic is imported by every entry point anyway, so the settings cost no import time of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from gpt_image_mcp.core.errors import ConfigurationError

MetadataLevel = Literal["off", "minimal", "standard", "full"]
METADATA_LEVELS: tuple[str, ...] = get_args(MetadataLevel)
_VARIABLE = re.compile(r"\$(\w+)|\$\{([^}]+)\}")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def comma_list(value: Any) -> Any:
    """A comma separated list; empty entries (an unset optional part of the template's !Sub) are dropped."""
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


CommaList = Annotated[list[str], BeforeValidator(comma_list)]


def expand_variables(raw: str, env: Mapping[str, str]) -> str:
    """`$NAME` and `${NAME}` replaced from `env`, as a shell would; unknown names are left as they are."""
    return _VARIABLE.sub(lambda match: env.get(match.group(1) or match.group(2), match.group(0)), raw)


class EnvSettings(BaseModel):
    """Settings whose fields are environment variables (each field's alias)."""

    model_config = ConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True)

    missing_hint: ClassVar[str] = "set them and start again."
    # An ARN-like variable that is not needed when the value itself is given: {"..._SECRET_ARN": "..._KEY"}.
    alternatives: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """The settings from `env`; `ConfigurationError` names every variable that is missing or wrong."""
        given = {name: value.strip() for name, value in env.items() if value and value.strip()}
        for field in cls.model_fields.values():
            name = field.validation_alias
            if isinstance(name, str) and name in given and _is_path(field):
                given[name] = expand_variables(given[name], env)
        cls._require(given)
        try:
            return cls.model_validate(given, by_alias=True, by_name=False)
        except ValidationError as error:
            problems = [cls._describe(item, given) for item in error.errors()]
            raise ConfigurationError(" ".join(problems)) from None

    @classmethod
    def _require(cls, given: Mapping[str, str]) -> None:
        needed = [str(f.validation_alias) for f in cls.model_fields.values() if f.is_required()]
        needed += [name for name, value in cls.alternatives.items() if value not in given]
        missing = [name for name in needed if name not in given]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise ConfigurationError(f"Missing environment variable{plural} {', '.join(missing)}: {cls.missing_hint}")

    @classmethod
    def _describe(cls, item: ErrorDetails, given: Mapping[str, str]) -> str:
        """One sentence: the variable, the value it has, and what it may be."""
        if not item["loc"]:  # a rule across variables (a model validator)
            return str(item["msg"]).removeprefix("Value error, ").rstrip(".") + "."
        name = str(item["loc"][0])
        raw = given.get(name, item["input"])
        field = next(f for f in cls.model_fields.values() if f.validation_alias == name)
        low, high = _bounds(field)
        span = f"{_number(low)}-{_number(high)}" if low is not None and high is not None else "a number"
        kind = item["type"]
        if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            return f"{name}={raw} is out of range; use {span}."
        if kind in ("int_parsing", "int_from_float"):
            return f"{name}={raw!r} is not a whole number; use {span}."
        if kind == "float_parsing":
            return f"{name}={raw!r} is not a number; use {span}."
        if kind == "bool_parsing":
            return f"{name}={raw!r} is not a boolean; use true or false."
        if kind == "literal_error":
            return f"{name}={raw!r}; use one of {', '.join(map(str, get_args(field.annotation)))}."
        return f"{name}={raw!r}: {str(item['msg']).removeprefix('Value error, ').rstrip('.')}."


def _is_path(field: FieldInfo) -> bool:
    return field.annotation is Path or Path in get_args(field.annotation)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _bounds(field: FieldInfo) -> tuple[float | None, float | None]:
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    return (None if low is None else float(low)), (None if high is None else float(high))  # type: ignore[arg-type]


class Settings(EnvSettings):
    """What the image service and its OpenAI client need; the same locally and on Lambda."""

    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_organization: str | None = Field(default=None, validation_alias="OPENAI_ORGANIZATION")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    default_model: str = Field(default="gpt-image-2", validation_alias="OPENAI_IMAGE_MODEL")
    # A preview by default, unlike the reference: a chat shows the picture, not only a path (README: Configuration).
    thumbnail: bool = Field(default=True, validation_alias="OPENAI_IMAGE_THUMBNAIL")
    thumbnail_size: int = Field(default=256, ge=1, le=512, validation_alias="OPENAI_IMAGE_THUMBNAIL_SIZE")
    thumbnail_quality: int = Field(default=60, ge=1, le=100, validation_alias="OPENAI_IMAGE_THUMBNAIL_QUALITY")
    metadata_level: Annotated[MetadataLevel, BeforeValidator(_lower)] = Field(
        default="standard", validation_alias="OPENAI_IMAGE_METADATA"
    )
    max_base64_bytes: int = Field(default=750_000, ge=0, le=4_500_000, validation_alias="OPENAI_IMAGE_MAX_BASE64_BYTES")
    request_timeout: float = Field(default=300.0, ge=5, le=3600, validation_alias="OPENAI_IMAGE_TIMEOUT")
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias="OPENAI_IMAGE_MAX_RETRIES")
    partial_images: int = Field(default=0, ge=0, le=3, validation_alias="OPENAI_IMAGE_PARTIAL_IMAGES")
    stream: bool = Field(default=True, validation_alias="OPENAI_IMAGE_STREAM")
