"""The local upstream cache: a kept answer comes back whole, or not at all, and goes once the job is settled."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from gpt_image_mcp.core.upstream import UpstreamResult
from local_sandbox.spool import MANIFEST, SpoolUpstreamCache

ANSWER = UpstreamResult(
    images=[b"\x89PNG first", b"\x89PNG second"],
    usage={"input_tokens": 12, "output_tokens": 3512},
    echoed={"size": "1024x1024", "quality": "medium"},
    request_id="req_1",
    attempts=2,
    notes=["OpenAI's answer was broken: image 3 of 3 does not decode (x)."],
)
JOB = "7b0cbd9e-2f7e-4a53-8a0e-1c1e2a3b4c5d"


def test_a_kept_answer_comes_back_as_it_was_and_goes_when_discarded(tmp_path: Path) -> None:
    spool = SpoolUpstreamCache(tmp_path / "spool")
    spool.save("local", JOB, ANSWER)

    assert SpoolUpstreamCache(tmp_path / "spool").load("local", JOB) == ANSWER  # another process finds it too
    spool.discard("local", JOB)
    assert spool.load("local", JOB) is None
    assert list((tmp_path / "spool").iterdir()) == []


def test_images_without_their_manifest_are_not_an_answer(tmp_path: Path) -> None:
    spool = SpoolUpstreamCache(tmp_path / "spool")
    spool.save("local", JOB, ANSWER)
    (tmp_path / "spool" / JOB / MANIFEST).unlink()  # as after a crash between the images and the manifest

    assert spool.load("local", JOB) is None


def test_a_damaged_manifest_is_logged_and_not_an_answer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = SpoolUpstreamCache(tmp_path / "spool")
    spool.save("local", JOB, ANSWER)
    (tmp_path / "spool" / JOB / MANIFEST).write_text("{not json")

    assert spool.load("local", JOB) is None
    assert "is unreadable" in caplog.text


def test_an_answer_the_disk_will_not_take_is_kept_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "spool").write_text("a file where the spool folder should be")
    spool = SpoolUpstreamCache(tmp_path / "spool")

    spool.save("local", JOB, ANSWER)

    assert spool.load("local", JOB) == ANSWER
    assert "kept in memory" in caplog.text
    spool.discard("local", JOB)
    assert spool.load("local", JOB) is None


def test_a_job_id_cannot_lead_out_of_the_spool(tmp_path: Path) -> None:
    spool = SpoolUpstreamCache(tmp_path / "spool")
    with pytest.raises(ValueError, match="cannot name a spool folder"):
        spool.save("local", "../escape", ANSWER)
    assert not (tmp_path / "escape").exists()


def test_the_latest_partial_image_reads_back_until_the_job_is_settled(tmp_path: Path) -> None:
    spool = SpoolUpstreamCache(tmp_path / "spool")
    assert spool.read_preview("local", JOB) is None  # none yet
    first, latest = (png(colour) for colour in ("red", "blue"))
    spool.keep_preview("local", JOB, first)
    link = spool.keep_preview("local", JOB, latest)  # replaces the one before

    assert spool.read_preview("local", JOB) == latest == Path(link.removeprefix("file://")).read_bytes()
    assert spool.read_preview("local", "../escape") is None  # no id leads out of the spool
    spool.discard("local", JOB)
    assert spool.read_preview("local", JOB) is None


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(out, "PNG")
    return out.getvalue()
