"""Spin videos (issue #22 item 3) with a tiny Stable Video Diffusion pipeline built in code and loaded like the real
one: the asked frame count and duration, an MP4 that decodes (PyAV), a GIF, the provenance in the sidecar and the
MP4's metadata, and the video as a generation in the review queue and the export."""
import json
import zipfile

import pytest
from PIL import Image

from helpers.review import as_role, make_generation
from workbench.generate.pipeline import GenerationError
from workbench.generate.video import VideoParams, generate_video, load_video_pipeline, read_video, video_for
from workbench.models import tiny

MIA = as_role("marketer")
# 64 px frames, one step, no guidance (one UNet pass per step), 4 frames decoded at a time
SMALL = dict(width=64, height=64, steps=1, min_guidance=1.0, max_guidance=1.0, decode_chunk_size=4)


@pytest.fixture(scope="module")
def svd_folder(tmp_path_factory):
    return tiny.save_tiny_svd(tmp_path_factory.mktemp("svd") / "tiny-svd")


@pytest.fixture(scope="module")
def pipe(svd_folder):
    return load_video_pipeline(str(svd_folder), device="cpu")  # the real loading code (from_pretrained, offline)


def test_a_spin_video_has_the_frames_and_duration_asked_and_plays_back(pipe, svd_folder):
    from workbench.db import session_scope
    from workbench.generate.tables import Generation
    from workbench.review.decisions import decide

    source = make_generation(batch="ss26", brand="northwind", prompt="navy tee on a model")
    decide(as_role("approver"), source, "approve", override_gate=True)
    v = generate_video(MIA, pipe, VideoParams(frames=16, fps=8, seed=3, **SMALL), generation_id=source)

    decoded = read_video(v.mp4)  # PyAV decodes every frame
    assert decoded.frames == 16 and decoded.fps == pytest.approx(8) and decoded.duration == pytest.approx(2.0)
    assert decoded.codec == "h264" and (decoded.width, decoded.height) == (64, 64)
    assert json.loads(decoded.metadata["comment"]) == v.provenance == json.loads(v.sidecar.read_text())
    assert v.provenance["source_generation_id"] == source and v.provenance["model"] == str(svd_folder)
    assert v.provenance["demo_model"] is True and v.provenance["frames"] == 16
    with Image.open(v.gif) as gif:  # GIF delays are hundredths: 120 and 130 ms alternate, 2 s in all
        assert gif.n_frames == 16 and gif.size == (64, 64)
        delays = []
        for i in range(gif.n_frames):
            gif.seek(i)
            delays.append(gif.info["duration"])
        assert sum(delays) == 2000 and set(delays) == {120, 130}

    # a generation: pending review, the poster as its image, the brand and prompt of its source, the files found
    info = video_for(v.generation_id)
    assert info is not None and info.mp4_path == str(v.mp4) and info.seconds == 2.0
    assert info.source_generation_id == source and video_for(source) is None
    with session_scope() as s:
        row = s.get(Generation, v.generation_id)
        assert row.review_status == "pending" and row.image_path == str(v.poster) and row.brand == "northwind"
        assert row.params["kind"] == "video" and row.prompt == "spin video: navy tee on a model"

    # approved, it is exported with its video files
    from workbench.review.export import export_approved

    decide(as_role("approver"), v.generation_id, "approve", override_gate=True)
    result = export_approved(as_role("approver"), brand="northwind")
    [rec] = [r for r in result.records if r["generation_id"] == v.generation_id]
    with zipfile.ZipFile(result.path) as zf:
        names = set(zf.namelist())
        assert {rec["file"], rec["video"]["mp4"], rec["video"]["gif"], rec["video"]["sidecar"]} <= names
        assert zf.read(rec["video"]["mp4"]) == v.mp4.read_bytes()


def test_only_approved_images_and_spin_lengths(pipe, tmp_path):
    pending = make_generation()
    with pytest.raises(GenerationError, match="is pending: a spin video is made from an approved image"):
        generate_video(MIA, pipe, VideoParams(**SMALL), generation_id=pending)
    with pytest.raises(GenerationError, match="last 4 s"):
        VideoParams(frames=16, fps=4).check()
    with pytest.raises(GenerationError, match="16 to 128 frames"):
        VideoParams(frames=8, fps=4).check()
    with pytest.raises(GenerationError, match="unknown video setting"):
        VideoParams.from_dict({"frame": 16})
    # any image file (the CLI's --image): 24 frames at 10 fps = 2.4 s, not recorded
    photo = tmp_path / "photo.png"
    Image.new("RGB", (80, 48), (200, 30, 30)).save(photo)
    v = generate_video(MIA, pipe, VideoParams(frames=24, fps=10, **SMALL), image=photo, record=False)
    decoded = read_video(v.mp4)
    assert v.generation_id is None and decoded.frames == 24 and decoded.duration == pytest.approx(2.4)
