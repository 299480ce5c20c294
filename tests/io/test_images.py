"""Image decoding: every mode becomes upright RGB; bad files raise one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphing.io.images import (
    MIN_SIDE,
    ImageFileError,
    composite,
    fit_to_size,
    levels_to_uint8,
    load_image,
    resize_float_image,
    resize_image,
    to_float,
    to_uint8,
    to_unit,
    unit_to_uint8,
    working_shape,
)


def test_float_round_trip_is_exact_for_every_value() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    floats = to_float(values)
    assert floats.dtype == np.float32 and floats.min() == -1.0 and floats.max() == 1.0
    np.testing.assert_array_equal(to_uint8(floats), values)


def test_unit_round_trip_is_exact_and_out_of_range_values_clip() -> None:
    values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    unit = to_unit(values)
    assert unit.dtype == np.float32 and unit.min() == 0.0 and unit.max() == 1.0
    np.testing.assert_array_equal(unit_to_uint8(unit), values)
    np.testing.assert_array_equal(unit_to_uint8(np.array([-0.5, 0.5 / 255, 1.5 / 255, 2.0])), [0, 0, 2, 255])
    np.testing.assert_array_equal(levels_to_uint8(np.array([-3.0, 0.4, 0.6, 254.5, 300.0])), [0, 0, 1, 254, 255])


def test_rgb_png_loads_unchanged(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.notes == ()


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:5, :, 3] = 255  # top half opaque red-ish, bottom fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    pixels = load_image(tmp_path / "a.png").pixels
    assert tuple(pixels[0, 0]) == (200, 0, 0)
    assert tuple(pixels[9, 9]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "CMYK", "I;16", "I"])
def test_other_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    grey = np.tile(np.linspace(0, 255, 16).astype(np.uint8), (12, 1))
    image = Image.fromarray(grey, "L")
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode != "L":
        image = image.convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png" if mode != "I" else ".tif"
    path = tmp_path / f"a{suffix}"
    image.save(path)
    pixels = load_image(path).pixels
    assert pixels.shape == (12, 16, 3) and pixels.dtype == np.uint8
    # A left-to-right ramp stays a ramp in every channel.
    assert pixels[6, 0].max() < 30 and pixels[6, -1].min() > 220


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "a.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "a.jpg")
    assert loaded.pixels.shape == (20, 10, 3)
    assert loaded.pixels[2, 5].mean() > 200 and loaded.pixels[-3, 5].mean() < 50  # white on top
    assert any("EXIF" in note for note in loaded.notes)


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    loaded = load_image(tmp_path / "a.gif")
    assert loaded.pixels[0, 0, 0] > 200 and loaded.pixels[0, 0, 2] < 50
    assert any("first" in note for note in loaded.notes)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
        (lambda p: p.write_bytes(_png_bytes()[:60]), "truncated|damaged|not an image"),
        (lambda p: Image.new("RGB", (1, 1)).save(p, format="PNG"), "smaller than the minimum"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageFileError, match=message) as caught:
        load_image(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageFileError, match="too large"):
        load_image(tmp_path / "big.png")


def test_fit_to_size_resizes_same_aspect_and_crops_other_aspect() -> None:
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255  # white centre band, black side bands
    same, note = fit_to_size(image, 20, 40)
    assert same.shape == (20, 40, 3) and "resized" in note and "cropped" not in note
    square, note = fit_to_size(image, 30, 30)
    assert square.shape == (30, 30, 3) and "cropped" in note
    assert square.mean() > 240  # the crop kept only the white centre
    unchanged, note = fit_to_size(image, 40, 80)
    assert unchanged is image and note is None


def test_working_shape_keeps_aspect_and_never_enlarges() -> None:
    assert working_shape(480, 640, 256) == (192, 256)
    assert working_shape(100, 50, 256) == (100, 50)
    assert resize_image(np.zeros((10, 10, 3), np.uint8), 5, 7).shape == (5, 7, 3)
    assert MIN_SIDE >= 2


def test_resize_float_image_is_the_8_bit_lanczos_without_its_rounding() -> None:
    rng = np.random.default_rng(4)
    pixels = np.clip(np.cumsum(rng.normal(0, 12, (90, 70, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
    reduced = resize_float_image(to_float(pixels), 31, 24)
    assert reduced.shape == (31, 24, 3) and reduced.dtype == np.float32
    eight_bit = to_float(resize_image(pixels, 31, 24))
    assert np.abs(reduced - eight_bit).max() <= 2.0 / 127.5  # only 8-bit rounding (of two passes) differs
    assert np.abs(reduced - eight_bit).mean() > 0.05 / 127.5  # and it is not rounded
    flat = resize_float_image(np.full((40, 40, 3), 0.25, np.float32), 13, 17)
    np.testing.assert_allclose(flat, 0.25, atol=1e-6)
    edge = np.where(np.arange(40)[None, :, None] < 20, -1.0, 1.0) * np.ones((40, 40, 3), np.float32)
    ringing = resize_float_image(edge, 15, 15)  # Lanczos overshoots a step edge; the range holds it
    assert ringing.min() >= -1.0 and ringing.max() <= 1.0
    same = np.zeros((5, 6, 3), np.float32)
    assert resize_float_image(same, 5, 6) is same


def test_png_with_huge_text_metadata_loads_without_it(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", "x" * (3 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)
    Image.fromarray(pixels).save(tmp_path / "meta.png", pnginfo=info)
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):  # what Pillow alone does
        Image.open(tmp_path / "meta.png").load()
    loaded = load_image(tmp_path / "meta.png")
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.notes == ("large text metadata ignored",)


def test_png_without_text_drops_only_text_chunks(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    from morphing.io.images import png_without_text

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    info.add_text("Long", "y" * 500, zip=True)
    Image.new("RGB", (20, 20), (10, 20, 30)).save(tmp_path / "a.png", pnginfo=info)
    data = (tmp_path / "a.png").read_bytes()
    stripped = png_without_text(data)
    assert b"tEXt" in data and b"zTXt" in data and b"tEXt" not in stripped and b"zTXt" not in stripped
    assert len(data) - len(stripped) > 20
    (tmp_path / "b.png").write_bytes(stripped)
    with Image.open(tmp_path / "b.png") as image:
        assert image.getpixel((3, 3)) == (10, 20, 30) and "Comment" not in image.info
    for bad in (b"GIF89a", data[:-5]):
        with pytest.raises(ValueError):
            png_without_text(bad)


def test_decoder_warnings_become_notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    real_open = Image.open

    def open_with_a_warning(*args, **kwargs):
        warnings.warn("Corrupt EXIF data.  Expecting to read 12 bytes but only got 6.", UserWarning)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", open_with_a_warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping load_image fails the test
        loaded = load_image(tmp_path / "a.png")
    assert loaded.notes == ("decoder warning: Corrupt EXIF data.  Expecting to read 12 bytes but only got 6.",)


def test_32_bit_grey_beyond_16_bits_is_scaled_by_its_range(tmp_path: Path) -> None:
    values = np.linspace(0, 65_500_000, 40 * 40).reshape(40, 40).astype(np.int32)
    Image.fromarray(values, "I").save(tmp_path / "wide.tif")
    loaded = load_image(tmp_path / "wide.tif")
    expected = np.round(values / 65_500_000 * 255).astype(np.uint8)
    np.testing.assert_array_equal(loaded.pixels[..., 0], expected)
    assert loaded.pixels[..., 0].min() == 0 and loaded.pixels[..., 0].max() == 255
    assert any("range scaled to 8 bits" in note for note in loaded.notes)


def test_a_pipe_is_read_as_an_image(tmp_path: Path) -> None:
    import os
    import threading

    from morphing.io.images import load_image

    pixels = np.random.default_rng(3).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # what `-s <(cat a.png)` gives a program

    def feed() -> None:
        with open(pipe, "wb") as writer:
            writer.write((tmp_path / "a.png").read_bytes())

    feeder = threading.Thread(target=feed)
    feeder.start()
    loaded = load_image(pipe)
    feeder.join()
    np.testing.assert_array_equal(loaded.pixels, pixels)


def test_an_invalid_exif_orientation_is_ignored_and_said_so(tmp_path: Path) -> None:
    from morphing.io.images import EXIF_ORIENTATION, load_image

    pixels = np.random.default_rng(4).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    for value in (0, 9):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[EXIF_ORIENTATION] = value
        image.save(tmp_path / f"o{value}.jpg", exif=exif, quality=100)
        loaded = load_image(tmp_path / f"o{value}.jpg")
        assert loaded.pixels.shape == (20, 30, 3)
        assert not any("rotated upright" in note for note in loaded.notes)
        assert any(f"EXIF orientation {value} is not a valid one" in note for note in loaded.notes)


def test_a_float_image_with_nan_pixels_is_scaled_by_its_finite_ones(tmp_path: Path) -> None:
    from morphing.io.images import load_image

    values = np.tile(np.linspace(0.0, 1.0, 30, dtype=np.float32), (20, 1))
    values[:3, :3] = np.nan
    values[5, 5] = np.inf
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    loaded = load_image(tmp_path / "f.tif")
    assert loaded.pixels[10, 29, 0] == 255 and loaded.pixels[10, 0, 0] == 0  # not an almost black picture
    assert loaded.pixels[0, 0, 0] == 0
    assert any("10 NaN or infinite pixels set to 0" in note for note in loaded.notes)


def test_a_symbolic_link_loop_is_a_one_line_error(tmp_path: Path) -> None:
    from morphing.io.images import ImageFileError, load_image

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ImageFileError, match="is a symbolic link loop"):
        load_image(tmp_path / "a")


class TestTransparency:
    @pytest.mark.parametrize("mode", ["RGBA", "LA"])
    def test_the_opacity_of_a_transparent_image_is_kept(self, mode: str, tmp_path: Path) -> None:
        alpha = np.zeros((10, 12), np.uint8)
        alpha[2:8, 3:9] = 255
        alpha[0, 0] = 100
        colour = np.full((10, 12, 3 if mode == "RGBA" else 1), 40, np.uint8)
        Image.fromarray(np.dstack([colour, alpha]).squeeze(), mode).save(tmp_path / "a.png")
        loaded = load_image(tmp_path / "a.png")
        np.testing.assert_array_equal(loaded.alpha, alpha)
        assert loaded.pixels.shape == (10, 12, 3)
        assert tuple(loaded.pixels[9, 11]) == (255, 255, 255)  # colours composited on white
        assert any("transparency is kept" in note for note in loaded.notes)

    def test_a_palette_with_a_transparent_colour_and_an_opaque_rgba(self, tmp_path: Path) -> None:
        indices = np.zeros((10, 12), np.uint8)
        indices[:, 6:] = 1
        image = Image.fromarray(indices, "P")
        image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
        image.save(tmp_path / "p.png", transparency=0)
        np.testing.assert_array_equal(load_image(tmp_path / "p.png").alpha, np.where(indices == 0, 0, 255))
        Image.fromarray(np.full((10, 12, 4), 255, np.uint8), "RGBA").save(tmp_path / "opaque.png")
        assert load_image(tmp_path / "opaque.png").alpha is None

    def test_compositing_over_a_colour_undoes_the_white(self) -> None:
        pixels = np.array([[[255, 255, 255], [128, 128, 255]]], np.uint8)  # transparent; half-opaque black on white
        alpha = np.array([[0, 128]], np.uint8)
        out = composite(pixels, alpha, (0, 0, 0))
        np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
        assert np.abs(out[0, 1].astype(int) - [1, 1, 128]).max() <= 1
