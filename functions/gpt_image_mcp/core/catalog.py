"""The model line-up as data: load `catalog.toml` and answer "may this model do that?".

Everything model-specific (sizes, qualities, transparency, input fidelity, prices, shutdown dates)
comes from the TOML file, so a new model or a shutdown is a data change.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from gpt_image_mcp.core.errors import InvalidArgumentError


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per one million tokens."""

    text_input: float = 0.0
    text_input_cached: float = 0.0
    image_input: float = 0.0
    image_input_cached: float = 0.0
    image_output: float = 0.0


@dataclass(frozen=True, slots=True)
class SizeRules:
    multiple_of: int
    max_edge: int
    max_ratio: float
    min_pixels: int
    max_pixels: int
    experimental_above_pixels: int


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    status: str
    sizes: tuple[str, ...]
    custom_sizes: bool
    qualities: tuple[str, ...]
    transparency: bool
    input_fidelity: tuple[str, ...]
    output_tokens: str
    prices: Prices | None
    input_tokens: str = "unknown"  # how an input image is counted before a call: "patches", "tiles" (core.pricing)
    verified: bool = True
    fidelity_note: str = ""
    shutdown: dt.date | None = None
    successor: str | None = None
    snapshots: tuple[str, ...] = ()
    known: bool = True  # False for a name the catalog does not list (passed through with a warning)


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelSpec]
    size_rules: SizeRules
    legacy_output_tokens: dict[str, dict[str, int]]
    aliases: dict[str, str] = field(default_factory=dict)

    def find(self, name: str) -> ModelSpec | None:
        return self.models.get(self.aliases.get(name, name))

    def live_models(self, today: dt.date) -> list[str]:
        return [spec.name for spec in self.models.values() if is_served(spec, today)]

    def resolve(self, name: str, today: dt.date) -> tuple[ModelSpec, list[str]]:
        """The spec for `name` plus warnings; a model past its shutdown date is refused here."""
        spec = self.find(name)
        if spec is None:
            warning = (
                f"Model '{name}' is not in this server's catalog; it is passed to OpenAI as is, "
                f"without local checks or a cost estimate. Known models: {', '.join(self.live_models(today))}."
            )
            return _unknown_model(name), [warning]
        if not is_served(spec, today):
            when = f" on {spec.shutdown.isoformat()}" if spec.shutdown else ""
            instead = f"use {spec.successor} instead" if spec.successor else "choose a current model"
            raise InvalidArgumentError(
                f"Model '{name}' was shut down by OpenAI{when}; {instead}. "
                f"Current models: {', '.join(self.live_models(today))}."
            )
        warnings = []
        if spec.shutdown is not None:
            warnings.append(
                f"Model '{name}' shuts down on {spec.shutdown.isoformat()}; "
                f"switch to {spec.successor or 'a current model'} before then."
            )
        return spec, warnings

    def check_size(self, spec: ModelSpec, size: str) -> tuple[int, int] | None:
        """Validate `size` for `spec`; return (width, height), or None for 'auto'."""
        if size == "auto":
            return None
        width, height = parse_size(size)
        if size in spec.sizes or not spec.known:
            return width, height
        rules = self.size_rules
        allowed = ", ".join(("auto", *spec.sizes))
        if not spec.custom_sizes:
            raise InvalidArgumentError(f"size '{size}' is not available for {spec.name}; use one of: {allowed}.")
        problems = []
        if width % rules.multiple_of or height % rules.multiple_of:
            problems.append(f"both edges must be multiples of {rules.multiple_of}")
        if max(width, height) > rules.max_edge:
            problems.append(f"the longest edge may be at most {rules.max_edge}")
        if max(width, height) / min(width, height) > rules.max_ratio:
            problems.append(f"the aspect ratio may be at most {rules.max_ratio:g}:1")
        if not rules.min_pixels <= width * height <= rules.max_pixels:
            problems.append(f"width x height must be between {rules.min_pixels:,} and {rules.max_pixels:,} pixels")
        if problems:
            raise InvalidArgumentError(
                f"size '{size}' is not valid for {spec.name}: {'; '.join(problems)}. Common sizes: {allowed}."
            )
        return width, height


def parse_size(size: str) -> tuple[int, int]:
    width_text, sep, height_text = size.lower().partition("x")
    if not sep or not width_text.isdigit() or not height_text.isdigit() or "0" in (width_text[:1], height_text[:1]):
        raise InvalidArgumentError(f"size '{size}' is not 'auto' or WIDTHxHEIGHT in pixels, such as '1024x1024'.")
    return int(width_text), int(height_text)


def is_served(spec: ModelSpec, today: dt.date) -> bool:
    if spec.status == "shutdown":
        return False
    return spec.shutdown is None or today < spec.shutdown


def _unknown_model(name: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        status="unknown",
        sizes=(),
        custom_sizes=True,
        qualities=("auto", "low", "medium", "high", "xhigh", "max"),
        transparency=True,
        input_fidelity=("low", "high"),
        output_tokens="unknown",
        prices=None,
        verified=False,
        known=False,
    )


def _spec(name: str, raw: dict[str, Any]) -> ModelSpec:
    prices = raw.get("prices") or None
    return ModelSpec(
        name=name,
        status=raw["status"],
        sizes=tuple(raw.get("sizes", ())),
        custom_sizes=bool(raw.get("custom_sizes", False)),
        qualities=tuple(raw.get("qualities", ())),
        transparency=bool(raw.get("transparency", False)),
        input_fidelity=tuple(raw.get("input_fidelity", ())),
        output_tokens=raw.get("output_tokens", "legacy"),
        input_tokens=raw.get("input_tokens", "unknown"),
        prices=Prices(**prices) if prices else None,
        verified=bool(raw.get("verified", True)),
        fidelity_note=raw.get("fidelity_note", ""),
        shutdown=raw.get("shutdown"),
        successor=raw.get("successor"),
        snapshots=tuple(raw.get("snapshots", ())),
    )


def parse_catalog(data: dict[str, Any]) -> Catalog:
    models = {name: _spec(name, raw) for name, raw in data["models"].items()}
    aliases = {snapshot: spec.name for spec in models.values() for snapshot in spec.snapshots}
    return Catalog(
        models=models,
        size_rules=SizeRules(**data["custom_size_rules"]),
        legacy_output_tokens=data.get("legacy_output_tokens", {}),
        aliases=aliases,
    )


@cache
def load_catalog() -> Catalog:
    """The bundled catalog (parsed once per process)."""
    text = resources.files("gpt_image_mcp.core").joinpath("catalog.toml").read_text(encoding="utf-8")
    return parse_catalog(tomllib.loads(text))
