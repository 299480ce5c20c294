"""Maps container and its file: round trip, and clear errors for wrong files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from morphing.model.maps import MapsFileError, MorphMaps, Scales, load_maps, save_maps


def make_maps(shape: tuple[int, int] = (6, 8)) -> MorphMaps:
    rng = np.random.default_rng(0)
    return MorphMaps(
        forward=rng.normal(size=(*shape, 8)).astype(np.float32),
        backward=rng.normal(size=(*shape, 8)).astype(np.float32),
        scales=Scales(mult=0.5, add=0.1, warp=0.03),
        image_shape=(60, 80),
    )


def _with(array: np.ndarray, channel: int, value: float) -> np.ndarray:
    array[..., channel] = value
    return array


def _write(path: Path, **fields: np.ndarray) -> None:
    """A maps file that is right but for ``fields``."""
    good = {"format_version": np.int64(1), "forward": np.zeros((4, 4, 8)), "backward": np.zeros((4, 4, 8)),
            "scales": np.array([0.6, 0.2, 0.05]), "image_shape": np.array([4, 4])}
    with open(path, "wb") as handle:
        np.savez(handle, **{**good, **fields})


def test_maps_within_the_limits_load(tmp_path: Path) -> None:
    # A flow of 3.9 grid sides (the limit is 4), large but sensible colour maps.
    forward = _with(_with(np.zeros((4, 4, 8)), 6, 3.9 * 4 / 0.05), 0, 100.0)
    _write(tmp_path / "m.npz", forward=forward)
    assert load_maps(tmp_path / "m.npz").forward[0, 0, 6] == pytest.approx(312.0)


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    maps = make_maps()
    save_maps(maps, tmp_path / "m.npz")
    loaded = load_maps(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.forward, maps.forward)
    np.testing.assert_array_equal(loaded.backward, maps.backward)
    assert loaded.scales == maps.scales and loaded.image_shape == (60, 80)
    assert loaded.grid_shape == (6, 8)


def _huge_declared(path) -> None:
    """A 1-KB archive whose forward map declares 60000x80000x8 floats (153 GB): refused unread."""
    import io
    import zipfile

    _write(path)
    with zipfile.ZipFile(path) as original:
        members = {name: original.read(name) for name in original.namelist() if name != "forward.npy"}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (60000, 80000, 8)})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("forward.npy", header.getvalue() + b"\0" * 64)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_text("not a zip"), "not a maps file"),
        (lambda p: np.savez(p, forward=np.zeros((4, 4, 8))), "missing"),
        (
            lambda p: np.savez(
                p, format_version=1, forward=np.zeros((4, 4, 5)), backward=np.zeros((4, 4, 5)),
                scales=np.ones(3), image_shape=np.array([4, 4]),
            ),
            "not a maps file written by --save-maps (forward is float64 (4, 4, 5))",
        ),
        (
            lambda p: np.savez(
                p, format_version=1, forward=np.full((4, 4, 8), np.nan), backward=np.zeros((4, 4, 8)),
                scales=np.ones(3), image_shape=np.array([4, 4]),
            ),
            "NaN",
        ),
        (lambda p: None, "no such file"),
        (lambda p: np.save(open(p, "wb"), np.zeros((4, 4, 8))), "a single array"),
        (lambda p: _write(p, image_shape=np.array([0, 0])), "image_shape must be two sizes"),
        (lambda p: _write(p, image_shape=np.array([-4, 4])), "image_shape must be two sizes"),
        (lambda p: _write(p, image_shape=np.array([4])), "(image_shape is int64 (1,))"),
        (lambda p: _write(p, format_version=np.array("1")), "(format_version is <U1 ())"),
        (lambda p: _write(p, format_version=np.array([1, 1])), "(format_version is int64 (2,))"),
        (lambda p: _write(p, format_version=np.int64(7)), "format 7 is not supported"),
        (lambda p: _write(p, forward=np.zeros((0, 0, 8)), backward=np.zeros((0, 0, 8))), "(forward is float64 (0, 0, 8))"),
        (lambda p: _write(p, forward=np.zeros((4, 4, 8), np.complex64)), "(forward is complex64 (4, 4, 8))"),
        (lambda p: _write(p, forward=np.zeros((40, 40, 8)), backward=np.zeros((40, 40, 8))), "grid (40x40) is larger"),
        (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 40), "not a maps file"),  # a truncated archive
        (_huge_declared, "(forward is float32 (60000, 80000, 8))"),
        (lambda p: _write(p, forward=_with(np.zeros((4, 4, 8)), 6, 1e30)), "moves pixels over"),
        (lambda p: _write(p, forward=_with(np.zeros((4, 4, 8)), 0, 1e30)), "multiply or add map"),
        (lambda p: _write(p, scales=np.array([1.0, -1.0, 1.0])), "wrong shape or values"),
    ],
)
def test_bad_maps_files_raise_clear_errors(tmp_path: Path, write, message: str) -> None:
    path = tmp_path / "m.npz"
    write(path)
    with pytest.raises(MapsFileError, match=re.escape(message)):
        load_maps(path)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_scales_reject_negative_and_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        Scales(warp=bad)


def test_maps_reject_mismatched_directions() -> None:
    with pytest.raises(ValueError, match="differ"):
        MorphMaps(np.zeros((4, 4, 8)), np.zeros((4, 5, 8)), Scales(), (4, 4))


def test_maps_built_in_python_refuse_nan() -> None:
    forward = np.zeros((4, 4, 8), np.float32)
    forward[1, 2, 6] = np.nan
    with pytest.raises(ValueError, match="maps hold NaN or infinite values"):
        MorphMaps(forward, np.zeros((4, 4, 8), np.float32), Scales(), (16, 16))
