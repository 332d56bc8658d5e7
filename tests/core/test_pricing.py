"""Cost in dollars, exact: usage as the Images API reports it, tokens estimated before a call (output from size
and quality, input from the prompt and each input image's dimensions), and the catalog's rates (USD per 1M tokens;
gpt-image-2: text in 5, image in 8, image out 30)."""

from __future__ import annotations

import datetime as dt

import pytest

from gpt_image_mcp.core.catalog import Catalog, load_catalog
from gpt_image_mcp.core.pricing import (
    Cost,
    Usage,
    estimate_image_input_tokens,
    estimate_input_usage,
    estimate_output_tokens,
    estimate_text_tokens,
    price,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_usage_is_read_from_the_api_answer() -> None:
    reported = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
        "output_tokens": 196,
        "total_tokens": 246,
    }
    assert Usage.from_api(reported) == Usage(
        input_text_tokens=40, input_image_tokens=10, output_tokens=196, total_tokens=246
    )
    # Without the split, the input is text (a generation); without a total, it is the sum.
    assert Usage.from_api({"input_tokens": 12, "output_tokens": 272}) == Usage(12, 0, 272, 284)
    assert Usage.from_api(None) is None
    assert Usage.from_api({}) is None


@pytest.mark.parametrize(
    ("quality", "width", "height", "tokens"),
    [
        # factor f (low 16, medium 48, high 96); scaled = (2 f short + long) // (2 long);
        # tokens = ceil(f * scaled * (2_000_000 + w h) / 4_000_000)
        ("low", 1024, 1024, 196),  # scaled 16: 16 * 16 * 3_048_576 / 4e6 = 195.11
        ("medium", 1024, 1024, 1756),  # scaled 48: 1755.98
        ("high", 1024, 1024, 7024),  # scaled 96: 7023.92
        ("high", 1536, 1024, 5488),  # scaled 64: 96 * 64 * 3_572_864 / 4e6 = 5487.92
        ("high", 1024, 1536, 5488),  # portrait: the same
        ("medium", 2048, 1152, 1413),  # a custom size, scaled 27: 48 * 27 * 4_359_296 / 4e6 = 1412.41
    ],
)
def test_gpt_image_2_output_tokens_are_estimated_from_size_and_quality(
    catalog: Catalog, quality: str, width: int, height: int, tokens: int
) -> None:
    assert estimate_output_tokens(catalog, catalog.models["gpt-image-2"], width, height, quality) == tokens


def test_older_models_use_the_guides_table_and_unknown_cases_have_no_estimate(catalog: Catalog) -> None:
    legacy = catalog.models["gpt-image-1.5"]
    assert estimate_output_tokens(catalog, legacy, 1024, 1024, "high") == 4160
    assert estimate_output_tokens(catalog, legacy, 1536, 1024, "low") == 400
    assert estimate_output_tokens(catalog, legacy, 2048, 2048, "high") is None  # not in the table
    for quality in ("auto", "xhigh", "max"):  # the API picks, or no published factor
        assert estimate_output_tokens(catalog, catalog.models["gpt-image-2"], 1024, 1024, quality) is None


def test_reported_usage_is_priced_per_token_kind(catalog: Catalog) -> None:
    cost = price(catalog.models["gpt-image-2"], Usage(40, 10, 196, 246))
    # 40 x $5/1M = $0.0002; 10 x $8/1M = $0.00008; 196 x $30/1M = $0.00588
    assert cost == Cost(
        text_input_usd=0.0002, image_input_usd=0.00008, image_output_usd=0.00588, total_usd=0.00616, estimated=False
    )


def test_estimated_output_tokens_are_priced_and_said_to_be_an_estimate(catalog: Catalog) -> None:
    """What a call costs when the answer carries no usage: four 1024x1024 high images of gpt-image-2."""
    spec = catalog.models["gpt-image-2"]
    per_image = estimate_output_tokens(catalog, spec, 1024, 1024, "high")
    assert per_image == 7024
    cost = price(spec, Usage(output_tokens=4 * per_image, total_tokens=4 * per_image), estimated=True)
    # 28_096 x $30/1M = $0.84288
    assert cost == Cost(
        text_input_usd=0.0, image_input_usd=0.0, image_output_usd=0.84288, total_usd=0.84288, estimated=True
    )


def test_each_model_has_its_own_rates(catalog: Catalog) -> None:
    # gpt-image-1.5 output at $32/1M: 4160 tokens = $0.13312
    assert price(catalog.models["gpt-image-1.5"], Usage(output_tokens=4160)) == Cost(0.0, 0.0, 0.13312, 0.13312, False)
    # gpt-image-1-mini: 100 text tokens at $2/1M and 400 output tokens at $8/1M
    assert price(catalog.models["gpt-image-1-mini"], Usage(100, 0, 400, 500)) == Cost(
        0.0002, 0.0, 0.0032, 0.0034, False
    )
    # gpt-image-1 (priced, though shut down): image input at $10/1M, output at $40/1M
    assert price(catalog.models["gpt-image-1"], Usage(0, 1000, 1000, 2000)) == Cost(0.0, 0.01, 0.04, 0.05, False)


def test_amounts_are_rounded_to_a_millionth_of_a_dollar(catalog: Catalog) -> None:
    # one text token of gpt-image-2 is exactly $0.000005
    assert price(catalog.models["gpt-image-2"], Usage(input_text_tokens=1)) == Cost(0.000005, 0.0, 0.0, 0.000005, False)
    mini = catalog.models["gpt-image-1-mini"]  # image input at $2.5/1M: 3 tokens = $0.0000075 -> 0.000008
    assert price(mini, Usage(input_image_tokens=3)) == Cost(0.0, 0.000008, 0.0, 0.000008, False)


def test_a_model_without_prices_has_no_cost(catalog: Catalog) -> None:
    assert price(catalog.models["dall-e-3"], Usage(output_tokens=1000)) is None


def test_prompt_tokens_are_estimated_at_four_ascii_characters_a_token() -> None:
    assert estimate_text_tokens("make the sky stormy") == 5  # 19 characters
    assert estimate_text_tokens("") == 0
    # any other character is a token of its own: "caf" + " " is one, "é" + "東京" three
    assert estimate_text_tokens("café 東京") == 4


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        # one token per 32 px patch: 1024x1024 is 32 x 32
        (1024, 1024, 1024),
        (512, 512, 1024),  # magnified toward a 1024 px long side (at most 2x) first
        (256, 256, 256),  # at most 2x: 512x512, 16 x 16
        (1536, 1024, 1536),  # 48 x 32: exactly the 1536-patch budget
        # over the budget, shrunk as OpenAI's vision guide shrinks 1800x2400: to 1056x1408, 33 x 44
        (1800, 2400, 1452),
        (2048, 2048, 1521),  # to 1248x1248: 39 x 39
        (3072, 512, 1452),  # the canvas held within 3:1 (3072x1024), then shrunk to 2112x704: 66 x 22
    ],
)
def test_gpt_image_2_input_images_are_counted_in_patches(
    catalog: Catalog, width: int, height: int, tokens: int
) -> None:
    for model in ("gpt-image-2", "gpt-image-2.5-flare", "gpt-image-2.6-sunburst"):  # always high fidelity
        for fidelity in ("low", "high"):
            assert estimate_image_input_tokens(catalog.models[model], width, height, fidelity) == tokens


@pytest.mark.parametrize(
    ("width", "height", "fidelity", "tokens"),
    [
        (1024, 1024, "low", 65 + 129),  # short side to 512: one 512 px tile
        (1024, 1025, "low", 65 + 129),  # 512x512.5 rounded down, as OpenAI bills it: still one tile
        (1536, 1024, "low", 65 + 2 * 129),  # 768x512
        (4096, 2048, "low", 65 + 2 * 129),  # into 2048x2048 (2048x1024), then 1024x512
        (300, 200, "low", 65 + 129),  # small images are not magnified
        (1024, 1024, "high", 65 + 129 + 4096),  # high fidelity: a square image
        (1100, 1000, "high", 65 + 129 * 2 + 4096),  # 1.1:1 is nearer square than 3:2
        (1536, 1024, "high", 65 + 2 * 129 + 6144),  # landscape
    ],
)
def test_older_models_count_input_images_in_tiles_as_openai_publishes(
    catalog: Catalog, width: int, height: int, fidelity: str, tokens: int
) -> None:
    assert estimate_image_input_tokens(catalog.models["gpt-image-1.5"], width, height, fidelity) == tokens


def test_an_edits_input_is_billed_with_each_image_made(catalog: Catalog) -> None:
    spec = catalog.models["gpt-image-2"]
    usage = estimate_input_usage(spec, "make the sky stormy", [(1024, 1024), (1536, 1024)], None, n=3)
    assert usage == Usage(input_text_tokens=3 * 5, input_image_tokens=3 * (1024 + 1536), total_tokens=3 * 2565)
    # 15 x $5/1M = $0.000075; 7680 x $8/1M = $0.06144
    assert price(spec, usage, estimated=True) == Cost(0.000075, 0.06144, 0.0, 0.061515, True)
    # a generation: the prompt alone
    assert estimate_input_usage(spec, "x" * 40, [], None) == Usage(input_text_tokens=10, total_tokens=10)
    # the fidelity defaults to low where a model takes it
    legacy = catalog.models["gpt-image-1.5"]
    assert estimate_input_usage(legacy, "", [(1024, 1024)], None) == Usage(0, 194, 0, 194)
    assert estimate_input_usage(legacy, "", [(1024, 1024)], "high") == Usage(0, 194 + 4096, 0, 194 + 4096)


def test_an_image_of_a_model_without_a_rule_has_no_estimate(catalog: Catalog) -> None:
    unknown, _ = catalog.resolve("house-model", dt.date(2026, 11, 24))
    assert estimate_image_input_tokens(unknown, 1024, 1024, "high") is None
    assert estimate_input_usage(unknown, "x", [(1024, 1024)], None) is None
    assert estimate_input_usage(unknown, "abcd", [], None) == Usage(input_text_tokens=1, total_tokens=1)


def test_usages_add_up() -> None:
    assert Usage(1, 2, 3, 6, 0).plus(Usage(10, 20, 300, 330, 100)) == Usage(11, 22, 303, 336, 100)
