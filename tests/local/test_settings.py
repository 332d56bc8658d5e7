"""The local server's settings: every variable of the README's table, and the message a wrong value gets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpt_image_mcp.core.errors import ConfigurationError
from local_sandbox.settings import LocalSettings, local_environment

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(?P<name>[A-Z0-9_]+)` \|[^|\n]+\|(?P<default>[^|\n]*)\|$", re.MULTILINE)


def readme_table() -> dict[str, str]:
    section = README.read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return {match["name"]: match["default"].strip() for match in ROW.finditer(section)}


def fields_by_variable() -> dict[str, str]:
    return {str(field.validation_alias): name for name, field in LocalSettings.model_fields.items()}


def test_every_variable_of_the_readme_is_a_setting_with_the_readme_default() -> None:
    table = readme_table()
    assert len(table) >= 17
    fields = fields_by_variable()
    assert set(table) <= set(fields)
    defaults = LocalSettings.model_construct()  # the declared defaults, as given (before ~ is expanded)
    for variable, documented in table.items():
        if not documented.startswith("`"):
            continue  # prose: "none (calls explain)", "the output folder", ...
        value = getattr(defaults, fields[variable])
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        default = documented.split(" ", 1)[0]  # "`true` (the reference: `false`)" documents `true`
        assert f"`{shown}`" == default or f"`{shown.removesuffix('.0')}`" == default, variable


def test_defaults_and_empty_values() -> None:
    blank = LocalSettings.from_env({"OPENAI_API_KEY": "", "OPENAI_IMAGE_THUMBNAIL_SIZE": "  ", "DEBUG": ""})
    assert blank == LocalSettings.from_env({})
    assert blank.openai_api_key is None and blank.debug is False
    assert (blank.thumbnail, blank.thumbnail_size, blank.thumbnail_quality) == (True, 256, 60)
    assert blank.output_dir == Path("~/Downloads/openai-images").expanduser().resolve()
    assert blank.input_dir == blank.output_dir
    assert blank.history_db_path == Path("~/.openai-gpt-image/history.db").expanduser().resolve()
    assert (blank.job_concurrency, blank.sync_budget_seconds, blank.metadata_level) == (2, 50, "standard")


def test_values_are_parsed_and_paths_expanded_from_the_given_environment(tmp_path: Path) -> None:
    settings = LocalSettings.from_env(
        {
            "BASE": str(tmp_path),
            "OPENAI_IMAGE_OUTPUT_DIR": "$BASE/out",
            "HISTORY_DB_PATH": "${BASE}/state/../db/history.db",
            "OPENAI_IMAGE_THUMBNAIL": "yes",
            "OPENAI_IMAGE_THUMBNAIL_SIZE": " 256 ",
            "OPENAI_IMAGE_METADATA": "FULL",
            "OPENAI_IMAGE_TIMEOUT": "90",
            "OPENAI_API_KEY": " sk-local ",
            "DEBUG": "1",
        }
    )
    assert settings.output_dir == settings.input_dir == tmp_path / "out"
    assert settings.history_db_path == tmp_path / "db" / "history.db"
    assert (settings.thumbnail, settings.thumbnail_size, settings.metadata_level) == (True, 256, "full")
    assert (settings.request_timeout, settings.openai_api_key, settings.debug) == (90.0, "sk-local", True)
    apart = LocalSettings.from_env({"OPENAI_IMAGE_OUTPUT_DIR": str(tmp_path), "OPENAI_IMAGE_INPUT_DIR": "$NOPE/in"})
    assert apart.input_dir == (Path.cwd() / "$NOPE" / "in").resolve()  # an unknown variable stays as written


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENAI_IMAGE_THUMBNAIL_SIZE": "9999"}, "OPENAI_IMAGE_THUMBNAIL_SIZE=9999 is out of range; use 1-512."),
        ({"OPENAI_IMAGE_THUMBNAIL_SIZE": "big"}, "OPENAI_IMAGE_THUMBNAIL_SIZE='big' is not a whole number; use 1-512."),
        ({"OPENAI_IMAGE_THUMBNAIL": "maybe"}, "OPENAI_IMAGE_THUMBNAIL='maybe' is not a boolean; use true or false."),
        ({"OPENAI_IMAGE_METADATA": "lots"}, "OPENAI_IMAGE_METADATA='lots'; use one of off, minimal, standard, full."),
        ({"OPENAI_IMAGE_TIMEOUT": "soon"}, "OPENAI_IMAGE_TIMEOUT='soon' is not a number; use 5-3600."),
        ({"OPENAI_IMAGE_SYNC_BUDGET": "-1"}, "OPENAI_IMAGE_SYNC_BUDGET=-1 is out of range; use 0-3600."),
        (
            {"OPENAI_IMAGE_JOB_CONCURRENCY": "0", "OPENAI_IMAGE_MAX_RETRIES": "eleven"},
            "OPENAI_IMAGE_MAX_RETRIES='eleven' is not a whole number; use 0-10. "
            "OPENAI_IMAGE_JOB_CONCURRENCY=0 is out of range; use 1-16.",
        ),
    ],
)
def test_a_wrong_value_is_named_with_what_is_allowed(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LocalSettings.from_env(env)
    assert caught.value.message == message


def test_env_files_the_working_directory_first_then_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, work = tmp_path / "home", tmp_path / "work" / "deep"
    (home / ".openai-gpt-image").mkdir(parents=True)
    work.mkdir(parents=True)
    (home / ".openai-gpt-image" / ".env").write_text(
        "OPENAI_API_KEY=sk-config\nOPENAI_IMAGE_MODEL=from-config\nDEBUG=1\n"
    )
    (tmp_path / "work" / ".env").write_text("OPENAI_API_KEY=sk-work\nOPENAI_IMAGE_MODEL=from-work\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)  # a .env is looked for from here up, as the reference does

    merged = local_environment({"OPENAI_IMAGE_MODEL": "from-process"})
    assert (merged["OPENAI_API_KEY"], merged["OPENAI_IMAGE_MODEL"], merged["DEBUG"]) == ("sk-work", "from-process", "1")
    monkeypatch.chdir(tmp_path)  # no .env here or above: only the config folder's
    assert local_environment({})["OPENAI_API_KEY"] == "sk-config"
