"""Frame captures are compressed off the frame loop: PIL encodes on the writer's thread, never the
caller's; ``close`` leaves every file complete on disk; a file that cannot be written is named, not fatal."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from xrstory.runtime.png_writer import PngWriter


def _picture(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (256, 512, 3), dtype=np.uint8)


def test_files_are_encoded_on_the_writer_thread_and_complete_after_close(tmp_path, monkeypatch):
    encoded_on = []
    save = Image.Image.save

    def recording_save(self, *args, **kwargs):
        encoded_on.append(threading.current_thread().name)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", recording_save)
    pictures = [_picture(i) for i in range(6)]
    writer = PngWriter()
    for i, pic in enumerate(pictures):
        writer.write(pic, tmp_path / "frames" / f"frame_{i:03d}.png")
    writer.close()
    assert encoded_on == ["png-writer"] * 6  # never on the caller's (the frame loop's) thread
    for i, pic in enumerate(pictures):
        back = np.asarray(Image.open(tmp_path / "frames" / f"frame_{i:03d}.png"))
        assert np.array_equal(back, pic)
    assert not list(tmp_path.rglob("*.part")) and writer.failed == []


def test_a_file_that_cannot_be_written_is_named_and_the_rest_still_are(tmp_path):
    (tmp_path / "not_a_dir").write_text("x")
    with PngWriter() as writer:
        writer.write(_picture(0), tmp_path / "not_a_dir" / "frame_000.png")
        writer.write(_picture(1), tmp_path / "ok" / "frame_001.png")
    assert [p for p, _ in writer.failed] == [str(tmp_path / "not_a_dir" / "frame_000.png")]
    assert (tmp_path / "ok" / "frame_001.png").is_file()
