"""The morph command (``morphing.cli.morph``), in-process and as a user runs it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from morphing.cli import ExitStatus
from morphing.io.images import load_image
from tests.cli.conftest import TINY
from tests.conftest import ROOT
from tests.helpers import run_cli


def test_tiny_run_writes_a_gif_with_all_frames_at_the_source_size(first_run: Path, toy_pair) -> None:
    frames = iio.imread(first_run / "out.gif", index=None)
    assert frames.shape[:3] == (6, 48, 64)
    pngs = sorted((first_run / "frames").iterdir())
    assert [p.name for p in pngs] == [f"{i:04d}.png" for i in range(6)]
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[0])), np.asarray(Image.open(toy_pair[0])))
    np.testing.assert_array_equal(np.asarray(Image.open(pngs[-1])), np.asarray(Image.open(toy_pair[1])))
    assert Image.open(first_run / "maps.png").size[0] > 100


def test_load_maps_renders_the_same_frames_without_fitting(first_run: Path, toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    status, err = run_cli(
        "-s", source, "-t", target, "-o", tmp_path / "again.gif", "--frames", "6", "-q",
        "--load-maps", first_run / "maps.npz", "--frames-dir", tmp_path / "frames",
    )
    assert status == ExitStatus.OK, err
    for name in (f"{i:04d}.png" for i in range(6)):
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "frames" / name)), np.asarray(Image.open(first_run / "frames" / name))
        )


def test_same_seed_gives_byte_identical_output(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    for name in ("a.gif", "b.gif"):
        status, err = run_cli("-s", source, "-t", target, "-o", tmp_path / name, *TINY, "--seed", "3")
        assert status == ExitStatus.OK, err
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()


def test_notices_and_progress_when_not_quiet(toy_pair, tmp_path: Path) -> None:
    source, _ = toy_pair
    Image.open(source).resize((128, 96)).save(tmp_path / "big_target.png")
    status, err = run_cli("-s", source, "-t", tmp_path / "big_target.png", "-o", tmp_path / "o.gif",
                          "--size", "32", "-e", "2", "--frames", "3")
    assert status == ExitStatus.OK, err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("morph:")]
    assert lines[0].startswith("morph: running on ")
    assert any("resized from 128x96 to 64x48" in line for line in lines)
    assert "fitting" in err and "rendering" in err


def _bad_cases(source: Path, target: Path, folder: Path) -> dict[str, tuple[list, str]]:
    text = folder / "text.jpg"
    text.write_text("not an image")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    whole = io.BytesIO()
    Image.open(source).save(whole, "PNG")
    truncated_png = folder / "truncated.png"
    truncated_png.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    whole_jpeg = io.BytesIO()
    Image.open(source).convert("RGB").save(whole_jpeg, "JPEG")
    truncated_jpeg = folder / "truncated.jpg"
    truncated_jpeg.write_bytes(whole_jpeg.getvalue()[: len(whole_jpeg.getvalue()) // 2])
    tiny = folder / "tiny.png"
    Image.new("RGB", (1, 1)).save(tiny)
    a_file = folder / "plain_file"
    a_file.write_text("x")
    wrong_maps = folder / "wrong.npz"
    np.savez(wrong_maps, something=np.zeros(3))
    other_aspect_maps = folder / "other_aspect.npz"
    from morphing.model.maps import MorphMaps, Scales, save_maps

    save_maps(MorphMaps(np.zeros((8, 8, 8)), np.zeros((8, 8, 8)), Scales(), (100, 100)), other_aspect_maps)
    base = ["-s", source, "-t", target]
    bad_points = folder / "bad_points.csv"
    bad_points.write_text("1, 2, 3\n")
    outside_points = folder / "outside_points.csv"
    outside_points.write_text("70, 10, 10, 10\n")  # the toy images are 64 wide
    good_points = folder / "good_points.csv"
    good_points.write_text("10, 10, 12, 12\n")
    return {
        "missing source": (["-s", folder / "nope.png", "-t", target], "no such file"),
        "directory target": (["-s", source, "-t", folder], "is a directory"),
        "zero-byte file": (["-s", empty, "-t", target], "empty"),
        "truncated png": (["-s", truncated_png, "-t", target], "truncated"),
        "truncated jpeg": (["-s", source, "-t", truncated_jpeg], "truncated"),
        "text as jpg": (["-s", text, "-t", target], "not an image"),
        "1x1 image": (["-s", tiny, "-t", target], "smaller than the minimum"),
        "unknown extension": ([*base, "-o", folder / "out.xyz"], "unknown file type"),
        "missing output folder": ([*base, "-o", folder / "no" / "out.gif"], "does not exist"),
        "output folder is a file": ([*base, "-o", a_file / "out.gif"], "does not exist"),
        "output is an input": ([*base, "-o", source], "same file"),
        "zero frames": ([*base, "--frames", "0"], "--frames"),
        "one frame": ([*base, "--frames", "1"], "--frames"),
        "zero epochs": ([*base, "-e", "0"], "--epochs"),
        "negative scale": ([*base, "-w", "-1"], "--warp-scale"),
        "nan scale": ([*base, "-a", "nan"], "--add-scale"),
        "inf scale": ([*base, "-m", "inf"], "--mult-scale"),
        "zero fps": ([*base, "--fps", "0"], "--fps"),
        "size too small": ([*base, "--size", "4"], "--size"),
        "size above source": ([*base, "--size", "500"], "larger than the source"),
        "not a maps file": ([*base, "--load-maps", wrong_maps], "not a maps file"),
        "maps of another aspect": ([*base, "--load-maps", other_aspect_maps], "another aspect ratio"),
        "missing maps file": ([*base, "--load-maps", folder / "none.npz"], "no such file"),
        "missing required": (["-s", source], "required: -t/--target (or --batch)"),
        "unknown flag": ([*base, "--colour", "red"], "unrecognized arguments"),
        "loop and boomerang": ([*base, "--loop", "--boomerang"], "not allowed with"),
        "save maps of a sequence": (["-s", source, "-t", target, source, "--save-maps", folder / "m.npz"],
                                    "one target"),
        "negative hold": ([*base, "--hold", "-1"], "--hold"),
        "unknown easing": ([*base, "--easing", "bounce"], "--easing"),
        "unknown interpolation": ([*base, "--interpolation", "nearest"], "--interpolation"),
        "unknown blend": ([*base, "--blend", "max"], "--blend"),
        "missing points file": ([*base, "--points", folder / "none.csv"], "no such file"),
        "malformed points": ([*base, "--points", bad_points], "line 1: expected 4 values"),
        "point outside the image": ([*base, "--points", outside_points], "outside the source image"),
        "points per transition": ([*base, "--points", good_points, good_points], "one file per transition"),
        "points with loaded maps": ([*base, "--points", good_points, "--load-maps", other_aspect_maps],
                                    "--points guides a fit"),
    }


BAD_CASES = [
    "missing source", "directory target", "zero-byte file", "truncated png", "truncated jpeg", "text as jpg",
    "1x1 image", "unknown extension", "missing output folder", "output folder is a file", "output is an input",
    "zero frames", "one frame", "zero epochs", "negative scale", "nan scale", "inf scale", "zero fps",
    "size too small", "size above source", "not a maps file", "maps of another aspect", "missing maps file",
    "missing required", "unknown flag", "loop and boomerang", "save maps of a sequence", "negative hold",
    "unknown easing", "unknown interpolation", "unknown blend", "missing points file", "malformed points",
    "point outside the image", "points per transition", "points with loaded maps",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(case: str, toy_pair, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    argv, message = _bad_cases(*toy_pair, inputs)[case]
    out = tmp_path / "out"
    out.mkdir()
    if "-o" not in argv:
        argv = [*argv, "-o", out / "morph.gif"]
    before = sorted(os.listdir(inputs))
    status, err = run_cli(*argv)
    assert status in (ExitStatus.ERROR, ExitStatus.USAGE)
    assert err.count("\n") == 1 and err.startswith("morph: error: ") and message in err, err
    assert os.listdir(out) == [] and sorted(os.listdir(inputs)) == before


def test_decompression_bomb_is_refused(toy_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.gif")
    assert status == ExitStatus.ERROR and "too large to decode safely" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_unwritable_output_folder_is_refused(toy_pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, for whom every folder is writable: ask os.access instead.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.gif")
    assert status == ExitStatus.USAGE and "not writable" in err
    assert os.listdir(tmp_path) == []


def _odd_inputs(source: Path, folder: Path) -> dict[str, Path]:
    """The toy source saved in modes and containers that must all work."""
    rgb = Image.open(source).convert("RGB")
    paths = {}
    grey16 = Image.fromarray((np.asarray(rgb.convert("L")).astype(np.uint16) * 257))
    paths["16-bit grey png"] = folder / "grey16.png"
    grey16.save(paths["16-bit grey png"])
    paths["cmyk jpeg"] = folder / "cmyk.jpg"
    rgb.convert("CMYK").save(paths["cmyk jpeg"], quality=95)
    for mode in ("LA", "P", "RGBA"):
        paths[f"{mode} png"] = folder / f"{mode}.png"
        rgb.convert(mode).save(paths[f"{mode} png"])
    paths["animated gif"] = folder / "anim.gif"
    rgb.save(paths["animated gif"], save_all=True, append_images=[rgb.rotate(90)])
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned; displayed after a 90 degree turn
    paths["exif-rotated jpeg"] = folder / "rotated.jpg"
    rgb.transpose(Image.Transpose.ROTATE_270).save(paths["exif-rotated jpeg"], exif=exif, quality=95)
    return paths


@pytest.mark.parametrize(
    "case, notice",
    [("16-bit grey png", "high bit depth"), ("cmyk jpeg", "CMYK converted"), ("LA png", "transparency"),
     ("P png", "P converted"), ("RGBA png", "transparency"), ("animated gif", "using the first"),
     ("exif-rotated jpeg", "EXIF")],
)
def test_odd_but_valid_inputs_are_converted_with_a_notice(
    case: str, notice: str, first_run: Path, toy_pair, tmp_path: Path
) -> None:
    odd = _odd_inputs(toy_pair[0], tmp_path)[case]
    status, err = run_cli("-s", odd, "-t", toy_pair[1], "-o", tmp_path / "o.gif", "--frames", "3",
                          "--load-maps", first_run / "maps.npz", "--frames-dir", tmp_path / "frames")
    assert status == ExitStatus.OK, err
    assert notice in err, err
    first = np.asarray(Image.open(tmp_path / "frames" / "0000.png"))
    np.testing.assert_array_equal(first, load_image(odd).pixels)  # frame 0 is the decoded source
    assert first.shape == (48, 64, 3)  # upright, RGB, the source's size
    if case == "exif-rotated jpeg":
        original = np.asarray(Image.open(toy_pair[0]).convert("RGB")).astype(int)
        assert np.abs(first.astype(int) - original).mean() < 4  # the same picture, the right way up


def test_target_of_another_aspect_ratio_is_cropped_with_a_notice(first_run: Path, toy_pair, tmp_path: Path) -> None:
    Image.open(toy_pair[1]).resize((64, 64)).save(tmp_path / "square.png")
    status, err = run_cli("-s", toy_pair[0], "-t", tmp_path / "square.png", "-o", tmp_path / "o.gif",
                          "--frames", "3", "--load-maps", first_run / "maps.npz")
    assert status == ExitStatus.OK, err
    assert "centre-cropped to the source's aspect ratio" in err
    assert iio.imread(tmp_path / "o.gif", index=None).shape[1:3] == (48, 64)


def test_subprocess_run_is_quiet_and_bad_input_is_one_line(first_run: Path, toy_pair, tmp_path: Path) -> None:
    # A fresh process starts the global stage in a helper process while TensorFlow is imported
    # (in this one, TensorFlow runs already, so first_run's fit found it itself): the same maps.
    source, target = toy_pair
    done = subprocess.run(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(source), "-t", str(target),
         "-o", str(tmp_path / "o.gif"), *TINY, "--save-maps", str(tmp_path / "maps.npz")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""
    assert iio.imread(tmp_path / "o.gif", index=None).shape[:3] == (6, 48, 64)
    with np.load(tmp_path / "maps.npz") as helped, np.load(first_run / "maps.npz") as alone:
        for name in ("forward", "backward"):
            np.testing.assert_array_equal(helped[name], alone[name])
    bad = subprocess.run(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(tmp_path / "missing.png"), "-t", str(target),
         "-o", str(tmp_path / "p.gif")],
        capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "missing.png" in bad.stderr
    assert not (tmp_path / "p.gif").exists()


@pytest.mark.parametrize("signal_number, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 143)])
def test_interrupted_run_keeps_the_previous_output_and_leaves_no_temporary_files(
    toy_pair, tmp_path: Path, signal_number: int, status: int
) -> None:
    source, target = toy_pair
    output = tmp_path / "out.gif"
    output.write_bytes(b"previous result")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(source), "-t", str(target), "-o", str(output),
         "--size", "32", "-e", "100000", "--frames", "4"],
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    # Wait (by reading, not sleeping) until fitting has started, then interrupt.
    seen = ""
    while "fitting" not in seen:
        character = process.stderr.read(1)
        assert character, f"morph.py ended early: {seen}"
        seen += character
    signalled = time.monotonic()
    process.send_signal(signal_number)
    remaining = process.communicate(timeout=120)[1]
    assert process.returncode == status, seen + remaining
    # Acted on within seconds, though the fit may still be tracing and compiling its first step.
    assert time.monotonic() - signalled < 5.0
    assert output.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["out.gif"]
    assert "no output written" in remaining.strip().splitlines()[-1]


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".webp"])
def test_output_format_follows_the_suffix(suffix: str, first_run: Path, toy_pair, tmp_path: Path) -> None:
    output = tmp_path / f"o{suffix}"
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", output, "--frames", "5", "-q",
                          "--load-maps", first_run / "maps.npz")
    assert status == ExitStatus.OK, err
    if suffix == ".mp4":
        import imageio.v2 as iio2

        with iio2.get_reader(output, format="FFMPEG") as reader:
            frames = [frame for frame in reader]  # list(reader) would trust len() = inf
    else:
        with Image.open(output) as animation:
            frames = []
            for index in range(animation.n_frames):
                animation.seek(index)
                frames.append(np.asarray(animation.convert("RGB")))
    assert len(frames) == 5 and frames[0].shape[:2] == (48, 64)
    assert sorted(os.listdir(tmp_path)) == [output.name]


def test_preview_renders_the_same_morph_small(first_run: Path, toy_pair, tmp_path: Path) -> None:
    from morphing.io.images import resize_image

    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "p.gif", "--frames", "3", "-q",
                          "--load-maps", first_run / "maps.npz", "--preview", "24", "--frames-dir", tmp_path / "f")
    assert status == ExitStatus.OK, err
    frames = _frames_of(tmp_path / "f")
    assert len(frames) == 3 and frames[0].shape == (18, 24, 3)  # 48x64 with the long side at 24
    np.testing.assert_array_equal(frames[0], resize_image(np.asarray(Image.open(toy_pair[0]).convert("RGB")), 18, 24))
    full, _ = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "f.gif", "--frames", "3", "-q",
                      "--load-maps", first_run / "maps.npz", "--frames-dir", tmp_path / "g")
    middle = resize_image(_frames_of(tmp_path / "g")[1], 18, 24).astype(int)
    # The same morph, only smaller: ~3 grey levels from the full render's middle frame reduced, ~20 from the source.
    preview_middle = frames[1].astype(int)
    assert np.abs(preview_middle - middle).mean() < 8 < np.abs(preview_middle - frames[0].astype(int)).mean()


def _frames_of(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(path)) for path in sorted(folder.iterdir())]


@pytest.fixture(scope="module")
def three_keys(toy_pair, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from morphing.testing.scenes import toy_scene

    folder = tmp_path_factory.mktemp("keys")
    middle = folder / "middle.png"
    Image.fromarray(toy_scene(48, 64).render(0.5)[::-1].copy()).save(middle)  # upside-down in-between
    return [toy_pair[0], middle, toy_pair[1]]


def test_sequence_of_three_images_puts_each_key_at_its_frame(three_keys, tmp_path: Path) -> None:
    status, err = run_cli("-s", three_keys[0], "-t", three_keys[1], three_keys[2], "-o", tmp_path / "o.gif",
                          "--size", "32", "-e", "2", "--frames", "4", "--hold", "1", "-q",
                          "--frames-dir", tmp_path / "frames")
    assert status == ExitStatus.OK, err
    frames = _frames_of(tmp_path / "frames")
    assert len(frames) == 10  # 1 + 2 legs x 3, plus one hold on each of the 3 keys
    assert len(iio.imread(tmp_path / "o.gif", index=None)) == 10
    keys = [np.asarray(Image.open(path).convert("RGB")) for path in three_keys]
    for index, key in ((0, 0), (1, 0), (4, 1), (5, 1), (8, 2), (9, 2)):
        np.testing.assert_array_equal(frames[index], keys[key])
    assert not any(np.array_equal(frames[i], k) for i in (2, 3, 6, 7) for k in keys)


def test_boomerang_and_loop_frame_order(three_keys, first_run: Path, tmp_path: Path) -> None:
    status, err = run_cli("-s", three_keys[0], "-t", three_keys[2], "-o", tmp_path / "b.gif", "--frames", "4",
                          "--boomerang", "-q", "--load-maps", first_run / "maps.npz",
                          "--frames-dir", tmp_path / "boomerang")
    assert status == ExitStatus.OK, err
    frames = _frames_of(tmp_path / "boomerang")
    assert len(frames) == 6  # forward 0..3, then back 2, 1
    np.testing.assert_array_equal(frames[4], frames[2])
    np.testing.assert_array_equal(frames[5], frames[1])

    status, err = run_cli("-s", three_keys[0], "-t", three_keys[1], three_keys[2], "-o", tmp_path / "l.gif",
                          "--size", "32", "-e", "2", "--frames", "4", "--loop", "-q",
                          "--frames-dir", tmp_path / "loop")
    assert status == ExitStatus.OK, err
    frames = _frames_of(tmp_path / "loop")
    assert len(frames) == 9  # 3 legs x 3 frames; the final return to the source is the first frame
    source = np.asarray(Image.open(three_keys[0]).convert("RGB"))
    np.testing.assert_array_equal(frames[0], source)
    assert not np.array_equal(frames[-1], source)


def test_even_pacing_and_easing_run(first_run: Path, toy_pair, tmp_path: Path) -> None:
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.gif", "--frames", "6",
                          "--even-pacing", "--easing", "ease-in-out", "-q", "--load-maps", first_run / "maps.npz",
                          "--frames-dir", tmp_path / "frames")
    assert status == ExitStatus.OK, err
    frames = _frames_of(tmp_path / "frames")
    assert len(frames) == 6
    np.testing.assert_array_equal(frames[0], np.asarray(Image.open(toy_pair[0]).convert("RGB")))
    np.testing.assert_array_equal(frames[-1], np.asarray(Image.open(toy_pair[1]).convert("RGB")))


def test_points_guide_the_fit_and_are_marked_on_the_maps_picture(toy_pair, tmp_path: Path) -> None:
    from morphing.model.maps import load_maps

    source, target = toy_pair
    (tmp_path / "points.csv").write_text("# x_source, y_source, x_target, y_target\n14, 14, 22, 21\n40, 24, 45, 23\n")
    outputs = {}
    for name, extra in (("plain", []), ("pointed", ["--points", tmp_path / "points.csv"])):
        status, err = run_cli("-s", source, "-t", target, "-o", tmp_path / f"{name}.gif", *TINY,
                              "--save-maps", tmp_path / f"{name}.npz", "--maps-png", tmp_path / f"{name}.png", *extra)
        assert status == ExitStatus.OK, err
        outputs[name] = (load_maps(tmp_path / f"{name}.npz").forward, np.asarray(Image.open(tmp_path / f"{name}.png")))
    assert not np.allclose(outputs["plain"][0], outputs["pointed"][0])
    assert (outputs["plain"][1] != outputs["pointed"][1]).any()


def test_points_of_a_cropped_target_follow_the_crop(toy_pair, tmp_path: Path) -> None:
    from morphing.cli.morph import build_parser, validate

    source, _ = toy_pair  # 64x48
    Image.new("RGB", (128, 48), "white").save(tmp_path / "wide.png")  # centre-cropped to 64x48 from x = 32
    (tmp_path / "points.csv").write_text("10, 20, 40, 20\n")
    job = validate(build_parser().parse_args(["-s", str(source), "-t", str(tmp_path / "wide.png"),
                                               "--points", str(tmp_path / "points.csv")]))
    (points,) = job.points
    np.testing.assert_allclose(points.source, [[20, 10]])
    np.testing.assert_allclose(points.target, [[20, 8]])  # x 40 of the wide image is x 8 of its crop
    (tmp_path / "outside.csv").write_text("10, 20, 10, 20\n")  # x 10 of the wide image is cut away
    status, err = run_cli("-s", source, "-t", tmp_path / "wide.png", "--points", tmp_path / "outside.csv", *TINY,
                          "-o", tmp_path / "o.gif")
    assert status == ExitStatus.ERROR and "outside the part of the target image that is used" in err


def test_smallest_accepted_images_morph(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / name)
    status, err = run_cli("-s", tmp_path / "a.png", "-t", tmp_path / "b.png", "-o", tmp_path / "o.gif",
                          "-e", "3", "--frames", "3", "-q")
    assert status == ExitStatus.OK, err
    assert iio.imread(tmp_path / "o.gif", index=None).shape[:3] == (3, 8, 8)


def test_plain_render_flags_give_the_formulas_frames(first_run: Path, toy_pair, tmp_path: Path) -> None:
    """--interpolation bilinear --blend linear renders the formula itself; the
    defaults differ from it in between and agree at both ends."""
    from morphing.model.maps import load_maps
    from morphing.render.renderer import FrameRenderer

    source, target = toy_pair
    status, err = run_cli(
        "-s", source, "-t", target, "-o", tmp_path / "plain.gif", "--frames", "6", "-q", "--no-even-pacing",
        "--load-maps", first_run / "maps.npz", "--frames-dir", tmp_path / "frames",
        "--interpolation", "bilinear", "--blend", "linear",
    )
    assert status == ExitStatus.OK, err
    maps = load_maps(first_run / "maps.npz")
    pixels = [load_image(path).pixels for path in toy_pair]
    plain = FrameRenderer(*pixels, maps, maps.scales, interpolation="bilinear", blend="linear")
    default = FrameRenderer(*pixels, maps, maps.scales)
    written = [np.asarray(Image.open(tmp_path / "frames" / f"{i:04d}.png")) for i in range(6)]
    alphas = np.arange(6) / 5
    np.testing.assert_array_equal(np.stack(written), plain.render(alphas))
    by_default = default.render(alphas)
    np.testing.assert_array_equal(by_default[[0, -1]], plain.render(alphas)[[0, -1]])
    assert not np.array_equal(by_default[2], written[2])


def test_default_output_is_written_once_and_never_replaced(toy_pair, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], *TINY)
    assert status == ExitStatus.OK, err
    written = (tmp_path / "morph.gif").read_bytes()
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], *TINY)
    assert status == ExitStatus.USAGE and "morph.gif exists" in err and err.count("\n") == 1
    assert (tmp_path / "morph.gif").read_bytes() == written
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", "morph.gif", *TINY, "--seed", "3")
    assert status == ExitStatus.OK and (tmp_path / "morph.gif").read_bytes() != written  # named: replaced


@pytest.mark.parametrize("suffix", [".mp4", ".webp"])
def test_an_mp4_or_webp_too_slow_to_play_is_refused_before_any_work(suffix: str, toy_pair, tmp_path: Path) -> None:
    output = tmp_path / f"o{suffix}"
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", output, "--fps", "1e-5", *TINY)
    assert status == ExitStatus.USAGE and f"too slow for {suffix[1:].upper()}" in err and not output.exists()


def test_a_gif_too_slow_to_store_is_refused_before_any_work(toy_pair, tmp_path: Path) -> None:
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.gif", "--fps", "0.001", *TINY)
    assert status == ExitStatus.USAGE and "too slow for a GIF" in err
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.gif", "--fps", "0.0016", *TINY)
    assert status == ExitStatus.OK, err
    assert iio.immeta(tmp_path / "o.gif", index=0)["duration"] == 625_000  # 62 500 centiseconds, in ms


def test_frames_dir_holds_only_the_latest_run_and_refuses_other_files(first_run: Path, toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    frames = tmp_path / "frames"

    def render(count: int) -> tuple[int, str]:
        return run_cli("-s", source, "-t", target, "-o", tmp_path / "o.gif", "--frames", str(count), "-q",
                       "--load-maps", first_run / "maps.npz", "--frames-dir", frames)

    assert render(6)[0] == ExitStatus.OK
    assert render(3)[0] == ExitStatus.OK
    assert sorted(p.name for p in frames.iterdir()) == ["0000.png", "0001.png", "0002.png"]
    (frames / "notes.txt").write_text("mine")
    status, err = render(3)
    assert status == ExitStatus.USAGE and "holds files other than frames (notes.txt)" in err
    assert (frames / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "o.gif"]  # no temporary folders left


@pytest.mark.parametrize("outputs", [
    ["-o", "frames/out.gif"],
    ["-o", "same.gif", "--frames-dir-is-output"],
    ["-o", "o.gif", "--save-maps", "frames/m.npz"],
    ["-o", "o.gif", "--maps-png", "frames/sub/m.png"],
])
def test_outputs_inside_the_frames_folder_are_refused_before_the_fit(outputs, first_run: Path, toy_pair,
                                                                     tmp_path: Path) -> None:
    source, target = toy_pair
    frames = tmp_path / ("same.gif" if "--frames-dir-is-output" in outputs else "frames")
    flags = [str(tmp_path / o) if "." in o else o for o in outputs if o != "--frames-dir-is-output"]
    status, err = run_cli("-s", source, "-t", target, *flags, "--frames-dir", frames, *TINY)
    assert status == ExitStatus.USAGE and "inside --frames-dir" in err, err
    assert sorted(tmp_path.iterdir()) == []  # nothing written, nothing fitted


def test_a_frames_dir_that_is_the_current_folder_or_a_link_is_refused(toy_pair, tmp_path: Path, tmp_path_factory,
                                                                      monkeypatch) -> None:
    source, target = toy_pair
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    elsewhere = tmp_path_factory.mktemp("outputs") / "o.gif"
    for folder in (".", str(tmp_path)):
        status, err = run_cli("-s", source, "-t", target, "-o", elsewhere, "--frames-dir", folder, *TINY)
        assert status == ExitStatus.USAGE and "is the current folder or holds it" in err, err
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    status, err = run_cli("-s", source, "-t", target, "-o", elsewhere, "--frames-dir", link, *TINY)
    assert status == ExitStatus.USAGE and "symbolic link" in err
    assert link.is_symlink() and sorted(tmp_path.iterdir()) == [link, real, work]


def test_interrupted_render_leaves_the_frames_dir_as_it_was(first_run: Path, toy_pair, tmp_path: Path,
                                                            monkeypatch) -> None:
    import morphing.io.output

    source, target = toy_pair
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "0000.png").write_bytes(b"old frame")
    real_write_png = morphing.io.output.write_png
    written = []

    def write_then_interrupt(frame, path):
        real_write_png(frame, path)
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(morphing.io.output, "write_png", write_then_interrupt)
    status, err = run_cli("-s", source, "-t", target, "-o", tmp_path / "o.gif", "--frames", "6", "-q",
                          "--load-maps", first_run / "maps.npz", "--frames-dir", frames)
    assert status == ExitStatus.INTERRUPTED and "no output written" in err
    assert len(written) == 2 and [p.name for p in frames.iterdir()] == ["0000.png"]
    assert (frames / "0000.png").read_bytes() == b"old frame"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def _fail_after_one_frame(error: BaseException):
    def write(self, frames, path, **counts_and_samples) -> int:
        next(iter(frames))
        Path(path).write_bytes(b"partial")
        raise error
    return write


def test_disk_full_writing_a_gif_is_one_line_and_keeps_the_old_file(first_run: Path, toy_pair, tmp_path: Path,
                                                                    monkeypatch) -> None:
    import errno

    import morphing.io.output

    output = tmp_path / "o.gif"
    output.write_bytes(b"the user's earlier morph")
    monkeypatch.setattr(morphing.io.output.GifWriter, "write",
                        _fail_after_one_frame(OSError(errno.ENOSPC, "No space left on device")))
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", output, "--frames", "3", "-q",
                          "--load-maps", first_run / "maps.npz")
    assert status == ExitStatus.ERROR and err == f"morph: error: no space left on the device writing {output}\n"
    assert output.read_bytes() == b"the user's earlier morph"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.gif"]


@pytest.mark.parametrize("free, message", [(0, "no space left on the device writing"),
                                           (10**12, "ffmpeg could not encode the frames ([Errno 32] Broken pipe): ")])
def test_ffmpeg_dying_is_one_line(free: int, message: str, first_run: Path, toy_pair, tmp_path: Path,
                                  monkeypatch) -> None:
    import collections
    import shutil

    import imageio_ffmpeg

    def dying_encoder(*args, **kwargs):
        yield  # primed with send(None)
        yield  # takes the first frame
        raise BrokenPipeError(32, "Broken pipe")

    Usage = collections.namedtuple("Usage", "total used free")
    monkeypatch.setattr(imageio_ffmpeg, "write_frames", dying_encoder)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: Usage(10**12, 10**12 - free, free))
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "o.mp4", "--frames", "3", "-q",
                          "--load-maps", first_run / "maps.npz")
    assert status == ExitStatus.ERROR and message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())


def test_an_output_on_a_file_system_that_takes_no_files_is_refused_before_the_fit(toy_pair, monkeypatch) -> None:
    import morphing.fit.fitter

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran")

    monkeypatch.setattr(morphing.fit.fitter.MapFitter, "fit", no_fit)
    # /sys takes no new files even for root (os.access says root may write there).
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", "/sys/x.gif", *TINY)
    assert status == ExitStatus.USAGE and "/sys/x.gif" in err and err.count("\n") == 1, err


def test_a_large_job_gets_a_notice_and_stops_within_seconds_of_sigterm_while_rendering(tmp_path: Path) -> None:
    """A 24-megapixel pair: the notice says what it will cost; one SIGTERM during the render ends it."""
    from PIL import Image

    for name, colour in (("a.png", (200, 40, 40)), ("b.png", (40, 40, 200))):
        Image.new("RGB", (6000, 4000), colour).save(tmp_path / name)
    output = tmp_path / "big.mp4"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "morph.py"), "-s", str(tmp_path / "a.png"), "-t", str(tmp_path / "b.png"),
         "-o", str(output), "--size", "32", "-e", "2", "--frames", "40"],
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    seen = ""
    # Read, not sleep, until the render has started: its first bar, not the notice (which names it too).
    while "preparing frames" not in seen:
        character = process.stderr.read(1)
        assert character, f"morph.py ended early: {seen}"
        seen += character
    assert "large job: 40 frames of 6000x4000 (24 MP each)" in seen
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    remaining = process.communicate(timeout=120)[1]
    assert process.returncode == 143, seen + remaining
    assert time.monotonic() - signalled < 5.0
    assert not output.exists() and sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_sigterm_while_an_encoder_is_busy_on_one_frame_stops_at_once(first_run: Path, toy_pair, tmp_path: Path) -> None:
    """An encoder that never returns from a frame (as Pillow takes ~16 s on an 81-megapixel one):
    one SIGTERM still ends the run within a second, with no output and no temporary file."""
    output = tmp_path / "o.gif"
    code = (
        "import sys, threading\n"
        "import morphing.io.output\n"
        "def stuck(self, frames, path, **ignored):\n"
        "    next(iter(frames))\n"
        "    print('encoding', file=sys.stderr, flush=True)\n"
        "    threading.Event().wait()\n"
        "morphing.io.output.GifWriter.write = stuck\n"
        "from morphing.cli import console_main\n"
        "sys.argv = ['morph', *sys.argv[1:]]\n"
        "console_main()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "-s", str(toy_pair[0]), "-t", str(toy_pair[1]), "-o", str(output),
         "--frames", "3", "--load-maps", str(first_run / "maps.npz")],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert process.stderr is not None
    seen = ""
    while "encoding" not in seen:  # read, not sleep, until the encoder is stuck in its frame
        character = process.stderr.read(1)
        assert character, f"the run ended early: {seen}"
        seen += character
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    remaining = process.communicate(timeout=60)[1]
    assert process.returncode == 143, seen + remaining
    assert time.monotonic() - signalled < 2.0
    assert "terminated; no output written" in remaining
    assert sorted(os.listdir(tmp_path)) == []


def test_the_global_stage_starts_in_a_helper_only_before_tensorflow(toy_pair) -> None:
    from morphing.cli.morph import fit_settings_of, start_global_stage, build_parser, validate

    source, target = toy_pair
    args = build_parser().parse_args(["-s", str(source), "-t", str(target), "-o", "unused.gif", *TINY])
    job = validate(args)
    assert start_global_stage(args, job, tensorflow_started=True) is None  # a batch's rows
    helper = start_global_stage(args, job, tensorflow_started=False)  # a fresh process
    assert helper is not None
    from morphing.fit.starts import leg_start_candidates

    (found,) = helper.result()
    (expected,) = leg_start_candidates(job.keys, fit_settings_of(args, job), job.scales)
    assert [c.name for c in found] == [c.name for c in expected]
    for got, want in zip(found, expected):
        np.testing.assert_array_equal(got.affine.matrix, want.affine.matrix)
        np.testing.assert_array_equal(got.affine.offset, want.affine.offset)


TALKATIVE = [flag for flag in TINY if flag != "-q"]


def test_face_points_are_found_reported_and_can_be_turned_off(tmp_path: Path) -> None:
    portrait = ROOT / "tests" / "data" / "portrait_lon005.jpg"
    mirrored = tmp_path / "mirrored.png"
    Image.open(portrait).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    status, err = run_cli("-s", portrait, "-t", mirrored, "-o", tmp_path / "on.gif", *TALKATIVE)
    assert status == 0, err
    assert "face points: a face in both images, 5 point pairs used" in err
    assert "start: point pairs (laid through 5 pairs" in err
    status, err = run_cli("-s", portrait, "-t", mirrored, "-o", tmp_path / "off.gif", *TALKATIVE, "--face-points", "off")
    assert status == 0, err
    assert "face points" not in err and "start: point pairs" not in err and "start: " in err


def test_no_face_is_said_and_is_not_an_error(toy_pair, tmp_path: Path) -> None:
    source, target = toy_pair
    status, err = run_cli("-s", source, "-t", target, "-o", tmp_path / "shapes.gif", *TALKATIVE)
    assert status == 0, err
    assert "face points: no face in both images, none used" in err


def test_a_start_nothing_moved_comes_with_the_hint_to_give_points(toy_pair, tmp_path: Path) -> None:
    source, _ = toy_pair
    # The picture into itself, at the test's small working size: the search's map moves nothing by a
    # pixel there, so it is no motion again and not probed.
    status, err = run_cli("-s", source, "-t", source, "-o", tmp_path / "same.gif", *TALKATIVE, "--face-points", "off")
    assert status == 0, err
    assert "start: no motion" in err and "give two or three --points pairs" in err
    points = tmp_path / "points.csv"
    points.write_text("10,10,12,11\n30,20,31,22\n")
    status, err = run_cli("-s", source, "-t", source, "-o", tmp_path / "pointed.gif", *TALKATIVE,
                          "--face-points", "off", "--points", points)
    assert status == 0, err
    assert "start: point pairs" in err and "--points pairs" not in err


def test_warp_uses_face_points_too(tmp_path: Path) -> None:
    portrait = ROOT / "tests" / "data" / "portrait_lon005.jpg"
    mirrored = tmp_path / "mirrored.png"
    Image.open(portrait).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    status, err = run_cli("warp", "-s", portrait, "-t", mirrored, "-o", tmp_path / "w.png", "-e", "3", "--size", "32")
    assert status == 0, err
    assert "face points: a face in both images, 5 point pairs used" in err and "start: point pairs" in err


@pytest.mark.parametrize("flags, message", [
    (["--crf", "20"], "--crf applies to MP4 output, not GIF"),
    (["--quality", "50"], "--quality applies to WEBP output, not GIF"),
    (["--width", "1000"], "enlarge"),
    (["--width", "10", "--scale", "0.5"], "not allowed with argument"),
    (["--colors", "1"], "between 2 and 255"),
])
def test_output_flags_that_cannot_apply_are_usage_errors(flags: list[str], message: str, toy_pair,
                                                         tmp_path: Path) -> None:
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "out.gif", *TINY, *flags)
    assert status == ExitStatus.USAGE
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.gif").exists()


def test_frames_are_written_smaller_with_fewer_colours_and_a_loop_count(toy_pair, tmp_path: Path) -> None:
    status, err = run_cli("-s", toy_pair[0], "-t", toy_pair[1], "-o", tmp_path / "out.gif", *TINY, "--width", "16",
                          "--colors", "8", "--no-dither", "--loop-count", "2", "--frames-dir", tmp_path / "frames")
    assert status == ExitStatus.OK, err
    frames = iio.imread(tmp_path / "out.gif", index=None)
    height, width = iio.imread(toy_pair[0]).shape[:2]
    assert frames.shape[1:3] == (round(height * 16 / width), 16)
    assert len(np.unique(frames.reshape(-1, frames.shape[-1])[:, :3], axis=0)) <= 8
    assert iio.imread(tmp_path / "frames" / "0000.png").shape[:2] == frames.shape[1:3]
    with Image.open(tmp_path / "out.gif") as image:
        assert image.info.get("loop") == 1  # plays twice


@pytest.fixture(scope="module")
def transparent_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A red disc moving right on a transparent ground (RGBA), and the same as an opaque image."""
    folder = tmp_path_factory.mktemp("rgba")
    yy, xx = np.mgrid[0:48, 0:64]
    paths = []
    for name, centre in (("a.png", 22), ("b.png", 40)):
        image = np.zeros((48, 64, 4), np.uint8)
        image[..., 0] = 220
        image[..., 3] = np.where((yy - 24) ** 2 + (xx - centre) ** 2 <= 100, 255, 0)
        Image.fromarray(image, "RGBA").save(folder / name)
        paths.append(folder / name)
    return paths[0], paths[1]


def test_transparent_inputs_make_a_transparent_gif_whose_ends_are_the_inputs(transparent_pair, tmp_path: Path) -> None:
    status, err = run_cli("-s", transparent_pair[0], "-t", transparent_pair[1], "-o", tmp_path / "out.gif", *TINY,
                          "--frames-dir", tmp_path / "frames")
    assert status == ExitStatus.OK, err
    with Image.open(tmp_path / "out.gif") as gif:
        first = np.asarray(gif.convert("RGBA"))[..., 3]
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGBA"))[..., 3]
    for decoded, path in ((first, transparent_pair[0]), (last, transparent_pair[1])):
        np.testing.assert_array_equal(decoded > 0, np.asarray(Image.open(path))[..., 3] >= 128)
    first_png = np.asarray(Image.open(tmp_path / "frames" / "0000.png"))
    np.testing.assert_array_equal(first_png[..., 3], np.asarray(Image.open(transparent_pair[0]))[..., 3])


def test_mp4_and_background_composite_transparent_inputs(transparent_pair, tmp_path: Path) -> None:
    flags = [flag for flag in TINY if flag != "-q"]
    status, err = run_cli("-s", transparent_pair[0], "-t", transparent_pair[1], "-o", tmp_path / "out.mp4", *flags)
    assert status == ExitStatus.OK, err
    assert "MP4 has no transparency: transparent inputs composited on white" in err
    status, err = run_cli("-s", transparent_pair[0], "-t", transparent_pair[1], "-o", tmp_path / "black.gif", *TINY,
                          "--background", "black")
    assert status == ExitStatus.OK, err
    with Image.open(tmp_path / "black.gif") as gif:
        first = np.asarray(gif.convert("RGBA"))
    assert (first[..., 3] == 255).all() and tuple(first[0, 0, :3]) == (0, 0, 0)  # the ground is black, opaque
    status, err = run_cli("-s", transparent_pair[0], "-t", transparent_pair[1], "-o", tmp_path / "x.gif", *TINY,
                          "--background", "notacolour")
    assert status == ExitStatus.USAGE and "expected a colour name" in err


def test_rendering_saved_maps_with_opencv_never_starts_tensorflow(first_run: Path, toy_pair, tmp_path: Path) -> None:
    code = (
        "import sys\nfrom morphing.cli import main\n"
        f"status = main(['-s', {str(toy_pair[0])!r}, '-t', {str(toy_pair[1])!r}, '--load-maps', "
        f"{str(first_run / 'maps.npz')!r}, '--render-engine', 'opencv', '--frames', '4', '-q', '-o', "
        f"{str(tmp_path / 'out.gif')!r}])\n"
        "print(status, 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MORPH_CACHE_DIR": "off"})
    assert done.stdout.split() == ["0", "False"], done.stderr
    assert len(iio.imread(tmp_path / "out.gif", index=None)) == 4


def test_the_polish_is_reported_and_can_be_turned_off(tmp_path: Path) -> None:
    # One scene in both pictures (the portrait and a copy moved by a few pixels): the optical flow
    # agrees both ways and the warp is polished at the pictures' size; --polish off leaves it alone.
    portrait = np.asarray(Image.open(ROOT / "tests" / "data" / "portrait_lon005.jpg").convert("RGB"))
    source, moved = tmp_path / "source.png", tmp_path / "moved.png"
    Image.fromarray(portrait[4:-4, 4:-4]).save(source)
    Image.fromarray(portrait[1:-7, 6:-2]).save(moved)
    status, err = run_cli("-s", source, "-t", moved, "-o", tmp_path / "on.gif", *TALKATIVE, "--face-points", "off")
    assert status == 0, err
    assert "polished by the optical flow on" in err, err
    status, err = run_cli("-s", source, "-t", moved, "-o", tmp_path / "off.gif", *TALKATIVE, "--face-points", "off",
                          "--polish", "off")
    assert status == 0, err
    assert "polished" not in err and "not polished" not in err
