"""Atomic writes and the GIF writer."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from morphing.io.output import (
    ANIMATION_SUFFIXES,
    FfmpegWriter,
    GifWriter,
    animation_writer,
    atomic_path,
    gif_delays,
    gif_palette,
    palette_indices,
    resized_frames,
    write_png,
)
from morphing.model.settings import EncoderSettings, OutputSize


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]  # no temporary left behind
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_atomic_path_cleans_up_on_keyboard_interrupt(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "x.gif"):
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "f.png")
    finally:
        os.umask(previous)
    assert (tmp_path / "f.png").stat().st_mode & 0o777 == 0o644


def test_gif_has_every_frame_at_full_size_with_close_colours(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 40 * 30 * 3).reshape(30, 40, 3)
    frames = [np.clip(base + 10 * i + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8) for i in range(9)]
    path = tmp_path / "a.gif"
    count = GifWriter(fps=20).write(iter(frames), path, count=9, samples=[frames[0], frames[4], frames[-1]])
    decoded = iio.imread(path, index=None)
    assert count == 9 and decoded.shape[:3] == (9, 30, 40)
    for original, read_back in zip(frames, decoded):
        assert np.abs(read_back[..., :3].astype(int) - original).mean() < 6
    meta = iio.immeta(path, index=0)
    assert meta.get("loop") == 0 and meta.get("duration") == 50


def test_gif_frames_decode_exactly_to_the_quantised_frames(tmp_path: Path) -> None:
    """Cropping and transparency are lossless: every decoded frame is the frame
    quantised to the palette, also when a frame repeats or changes in one corner."""
    rng = np.random.default_rng(1)
    first = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    corner = first.copy()
    corner[20:, 28:] = 255 - corner[20:, 28:]
    frames = [first, first, corner, first]
    GifWriter(fps=10).write(iter(frames), tmp_path / "a.gif", count=4, samples=[first, corner])
    decoded = iio.imread(tmp_path / "a.gif", index=None)[..., :3]
    palette = gif_palette([first, corner])
    colours = np.asarray(palette.getpalette()[: 3 * 255]).reshape(-1, 3)
    for original, read_back in zip(frames, decoded):
        np.testing.assert_array_equal(read_back, colours[palette_indices(original, palette)])


def test_gif_of_a_list_takes_its_count_and_palette_from_the_list(tmp_path: Path) -> None:
    frames = _ramp_frames(9, 20, 24)
    GifWriter(fps=10).write(frames, tmp_path / "listed.gif")
    GifWriter(fps=10).write(iter(frames), tmp_path / "streamed.gif", count=9,
                            samples=[frames[i] for i in (0, 2, 4, 6, 8)])
    assert (tmp_path / "listed.gif").read_bytes() == (tmp_path / "streamed.gif").read_bytes()
    with pytest.raises(ValueError, match="count and a few sample frames"):
        GifWriter(fps=10).write(iter(frames), tmp_path / "unknown.gif")


def test_gif_delays_spread_rounding_evenly() -> None:
    assert gif_delays(4, 25) == [4, 4, 4, 4]
    assert gif_delays(6, 30) == [3, 4, 3, 3, 4, 3]
    assert sum(gif_delays(300, 30)) == 1000


def _ramp_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    base = np.linspace(0, 200, height * width * 3).reshape(height, width, 3)
    return [np.clip(base + 5 * i, 0, 255).astype(np.uint8) for i in range(count)]


def test_mp4_has_every_frame_and_even_padded_size(tmp_path: Path) -> None:
    import imageio.v2 as iio2

    frames = _ramp_frames(7, 25, 33)  # odd sizes: H.264 in yuv420p needs even ones
    path = tmp_path / "a.mp4"
    assert FfmpegWriter(".mp4", fps=10).write(iter(frames), path) == 7
    with iio2.get_reader(path, format="FFMPEG") as reader:
        decoded = [frame for frame in reader]
        assert reader.get_meta_data()["fps"] == 10
    assert len(decoded) == 7 and decoded[0].shape == (26, 34, 3)
    assert np.abs(decoded[3][:25, :33].astype(int) - frames[3]).mean() < 4


def test_mp4_of_big_frames_uses_the_faster_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio.v2 as iio2

    writer = FfmpegWriter(".mp4", fps=10)
    small, big = writer.parameters_for(512 * 512), writer.parameters_for(1667 * 1667)
    assert small[small.index("-preset") + 1] == "veryfast" and big[big.index("-preset") + 1] == "superfast"
    assert [value for value in small if value != "veryfast"] == [value for value in big if value != "superfast"]
    monkeypatch.setattr(FfmpegWriter, "FAST_PRESET_PIXELS", 100)  # a small frame counts as big: ffmpeg takes it
    frames = _ramp_frames(3, 16, 12)
    assert writer.write(iter(frames), tmp_path / "b.mp4") == 3
    with iio2.get_reader(tmp_path / "b.mp4", format="FFMPEG") as reader:
        assert np.abs(reader.get_data(1).astype(int) - frames[1]).mean() < 4


def test_webp_is_animated_with_every_frame(tmp_path: Path) -> None:
    frames = _ramp_frames(5, 24, 32)
    path = tmp_path / "a.webp"
    assert FfmpegWriter(".webp", fps=20).write(iter(frames), path) == 5
    with Image.open(path) as image:
        assert image.format == "WEBP" and image.n_frames == 5 and image.size == (32, 24)
        image.seek(4)
        assert np.abs(np.asarray(image.convert("RGB")).astype(int) - frames[4]).mean() < 6


def test_each_suffix_gets_its_writer() -> None:
    assert ANIMATION_SUFFIXES == (".gif", ".mp4", ".webp")
    assert isinstance(animation_writer(".GIF", 10), GifWriter)
    assert isinstance(animation_writer(".mp4", 10), FfmpegWriter)
    with pytest.raises(ValueError, match="unknown animation format"):
        animation_writer(".avi", 10)


@pytest.mark.parametrize("suffix", [".mp4", ".webp"])
def test_an_encoder_that_writes_nothing_fails_and_keeps_the_earlier_file(suffix: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    def silent_encoder(*args, **kwargs):  # takes every frame, writes no byte, ends well
        while True:
            frame = yield
            if frame is None:
                continue

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", silent_encoder)
    output = tmp_path / f"earlier{suffix}"
    output.write_bytes(b"the user's earlier file")
    frames = [np.zeros((16, 16, 3), np.uint8)] * 3
    with pytest.raises(OSError, match="ffmpeg wrote an empty file"):
        with atomic_path(output) as temporary:
            animation_writer(suffix, 25.0).write(iter(frames), temporary)
    assert output.read_bytes() == b"the user's earlier file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


def test_an_encoder_that_writes_what_does_not_decode_fails_and_keeps_the_earlier_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    def garbling_encoder(path, *args, **kwargs):  # ends well, having written bytes no decoder takes
        Path(path).write_bytes(b"\\x00" * 1000)
        while True:
            yield

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", garbling_encoder)
    output = tmp_path / "earlier.mp4"
    output.write_bytes(b"the user's earlier file")
    with pytest.raises(OSError, match="does not decode"):
        with atomic_path(output) as temporary:
            animation_writer(".mp4", 25.0).write(iter([np.zeros((16, 16, 3), np.uint8)] * 2), temporary)
    assert output.read_bytes() == b"the user's earlier file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [output.name]


class TestEncoderSettings:
    def test_impossible_values_are_refused(self) -> None:
        for bad in ({"crf": 52}, {"crf": -1}, {"quality": 101}, {"colors": 1}, {"colors": 256},
                    {"loop_count": -1}, {"preset": "warp-speed"}):
            with pytest.raises(ValueError):
                EncoderSettings(**bad)
        with pytest.raises(TypeError):
            EncoderSettings(crf=18.5)

    def test_an_output_size_keeps_the_aspect_and_never_enlarges(self) -> None:
        assert OutputSize(width=100).of(300, 400) == (75, 100)
        assert OutputSize(height=150).of(300, 400) == (150, 200)
        assert OutputSize(scale=0.5).of(301, 400) == (150, 200)
        assert OutputSize().of(300, 400) == (300, 400)
        with pytest.raises(ValueError, match="enlarge"):
            OutputSize(width=401).of(300, 400)
        with pytest.raises(ValueError, match="one of"):
            OutputSize(width=100, scale=0.5)


def _gradient_frames(count: int = 3) -> list[np.ndarray]:
    ramp = np.linspace(0, 255, 96)
    frame = np.stack([np.tile(ramp, (24, 1)), np.tile(ramp[::-1], (24, 1)), np.full((24, 96), 128.0)], axis=-1)
    return [np.clip(frame + 10 * index, 0, 255).astype(np.uint8) for index in range(count)]


class TestGifOptions:
    def test_colors_bound_the_palette(self, tmp_path: Path) -> None:
        GifWriter(10, EncoderSettings(colors=4)).write(_gradient_frames(), tmp_path / "a.gif")
        frames = iio.imread(tmp_path / "a.gif", index=None)
        assert len(np.unique(frames[0].reshape(-1, frames.shape[-1])[:, :3], axis=0)) <= 4

    def test_without_dithering_a_ramp_only_ever_steps_one_way(self, tmp_path: Path) -> None:
        for dither in (True, False):
            GifWriter(10, EncoderSettings(colors=8, dither=dither)).write(_gradient_frames(1), tmp_path / "a.gif")
            row = iio.imread(tmp_path / "a.gif", index=0)[12, :, 0].astype(int)
            steps = np.sign(np.diff(row))
            reversals = int(np.sum(steps[steps != 0][1:] != steps[steps != 0][:-1]))
            assert (reversals > 0) == dither  # dithering scatters pixels back and forth; nearest colour does not

    @pytest.mark.parametrize("plays, loop", [(0, 0), (1, None), (3, 2)])
    def test_the_loop_count_is_how_many_times_it_plays(self, plays: int, loop: int | None, tmp_path: Path) -> None:
        GifWriter(10, EncoderSettings(loop_count=plays)).write(_gradient_frames(), tmp_path / "a.gif")
        with Image.open(tmp_path / "a.gif") as image:
            assert image.info.get("loop") == loop  # a GIF that loops N times plays N + 1 times


class TestFfmpegOptions:
    def test_a_higher_crf_makes_a_smaller_mp4_and_a_preset_is_passed(self, tmp_path: Path) -> None:
        frames = _ramp_frames(8, 64, 64)
        sizes = {}
        for crf in (10, 40):
            FfmpegWriter(".mp4", 10, EncoderSettings(crf=crf)).write(frames, tmp_path / f"{crf}.mp4")
            sizes[crf] = (tmp_path / f"{crf}.mp4").stat().st_size
        assert sizes[40] < sizes[10]
        parameters = FfmpegWriter(".mp4", 10, EncoderSettings(preset="slow", crf=23)).parameters_for(64 * 64)
        assert parameters[parameters.index("-preset") + 1] == "slow"
        assert parameters[parameters.index("-crf") + 1] == "23"

    def test_webp_quality_and_loop_count(self, tmp_path: Path) -> None:
        frames = _ramp_frames(4, 64, 64)
        sizes = {}
        for quality in (10, 95):
            FfmpegWriter(".webp", 10, EncoderSettings(quality=quality, loop_count=3)).write(
                frames, tmp_path / f"{quality}.webp")
            sizes[quality] = (tmp_path / f"{quality}.webp").stat().st_size
        assert sizes[10] < sizes[95]
        with Image.open(tmp_path / "95.webp") as image:
            assert image.info.get("loop") == 3

    def test_the_defaults_are_the_formats_own(self) -> None:
        assert FfmpegWriter(".mp4", 10).parameters_for(64 * 64) == list(FfmpegWriter.FORMATS[".mp4"][2])
        assert FfmpegWriter(".webp", 10).parameters_for(64 * 64) == list(FfmpegWriter.FORMATS[".webp"][2])


def test_resized_frames_average_the_pixels_they_shrink() -> None:
    frame = np.random.default_rng(3).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    (small,) = resized_frames([frame], 4, 6)
    reference = frame.reshape(4, 2, 6, 2, 3).astype(np.float64).mean(axis=(1, 3))  # 2x2 blocks
    assert small.shape == (4, 6, 3) and np.abs(small - reference).max() <= 0.5 + 1e-9
    (same,) = resized_frames([frame], 8, 12)
    assert same is frame


class TestTransparentFrames:
    @staticmethod
    def frames() -> list[np.ndarray]:
        out = []
        for index in range(3):
            frame = np.zeros((24, 32, 4), np.uint8)
            frame[..., 0] = 200
            frame[4:20, 4 + 4 * index:16 + 4 * index, 3] = 255  # an opaque box moving right on a clear ground
            out.append(frame)
        return out

    def test_a_gif_is_transparent_where_frames_are(self, tmp_path: Path) -> None:
        frames = self.frames()
        GifWriter(10).write(frames, tmp_path / "a.gif")
        with Image.open(tmp_path / "a.gif") as gif:
            for index, frame in enumerate(frames):
                gif.seek(index)
                decoded = np.asarray(gif.convert("RGBA"))
                np.testing.assert_array_equal(decoded[..., 3] > 0, frame[..., 3] >= 128)

    def test_webp_and_png_frames_keep_alpha_and_mp4_refuses_it(self, tmp_path: Path) -> None:
        frames = self.frames()
        FfmpegWriter(".webp", 10).write(frames, tmp_path / "a.webp")
        with Image.open(tmp_path / "a.webp") as webp:
            webp.seek(2)
            alpha = np.asarray(webp.convert("RGBA"))[..., 3]
        assert np.abs(alpha.astype(int) - frames[2][..., 3]).mean() < 8
        write_png(frames[1], tmp_path / "f.png")
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png")), frames[1])
        with pytest.raises(ValueError, match="no transparency"):
            FfmpegWriter(".mp4", 10).write(frames, tmp_path / "a.mp4")
