"""Synthetic scenes: deterministic, endpoints as specified, in-betweens in between."""

from __future__ import annotations

import math

import numpy as np
import pytest

from morphing.testing.scenes import (
    BendScene,
    CameraScene,
    Shape,
    SoftScene,
    Sprite,
    SpriteScene,
    bend_scene,
    camera_scene,
    sprite_flows,
    pixel_grid,
    random_scene,
    random_texture,
    sample_bilinear,
    soft_scene,
    sprite_scene,
    toy_scene,
)


def test_scene_at_alpha_zero_and_one_draws_the_start_and_end_shapes() -> None:
    scene = toy_scene(48, 64)
    start, end = scene.render(0.0), scene.render(1.0)
    assert start.shape == (48, 64, 3) and start.dtype == np.uint8
    # The red disc starts at (0.30, 0.22) of the long side (64 px, the width).
    y, x = round(0.30 * 64), round(0.22 * 64)
    assert start[y, x][0] > 200 and start[y, x][2] < 80
    assert not np.array_equal(start, end)
    middle = scene.render(0.5).astype(int)
    assert np.abs(middle - start).mean() > 0 and np.abs(middle - end).mean() > 0


def test_random_scene_is_seeded() -> None:
    a = random_scene(np.random.default_rng(3), 32, 32).render(0.5)
    b = random_scene(np.random.default_rng(3), 32, 32).render(0.5)
    c = random_scene(np.random.default_rng(4), 32, 32).render(0.5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_polygon_coverage_matches_its_area() -> None:
    square = Shape(4, (0.5, 0.5), 0.25, 0.0, (1, 1, 1))
    ys, xs = np.meshgrid(np.linspace(0, 1, 801), np.linspace(0, 1, 801), indexing="ij")
    area = square.coverage(ys, xs).mean()
    assert abs(area - 2 * 0.25**2) < 0.005  # a square of circumradius r has area 2 r^2
    disc = Shape(0, (0.5, 0.5), 0.25, 0.0, (1, 1, 1))
    assert abs(disc.coverage(ys, xs).mean() - np.pi * 0.25**2) < 0.005


class TestSpriteScene:
    @staticmethod
    def pictures(size: int = 64) -> list[np.ndarray]:
        """Two plain pictures: a dark background and a bright sprite with a dot at its centre."""
        background = np.full((size, size, 3), 40, np.uint8)
        sprite = np.full((size, size, 3), 200, np.uint8)
        sprite[size // 2 - 1:size // 2 + 1, size // 2 - 1:size // 2 + 1] = (255, 0, 0)
        return [background, sprite]

    def test_the_disc_moves_linearly_and_carries_the_sprite_centre(self) -> None:
        background, sprite = self.pictures()
        scene = SpriteScene(background.astype(np.float64), sprite.astype(np.float64), 10.0,
                            (20.0, 20.0, 1.0, 0.0), (40.0, 30.0, 1.0, 0.0), (0.0, 0.0))
        for alpha, (y, x) in ((0.0, (20, 20)), (0.5, (30, 25)), (1.0, (40, 30))):
            frame = scene.render(alpha).astype(int)
            red = np.argwhere((frame[..., 0] > 200) & (frame[..., 1] < 100))
            assert np.abs(red.mean(axis=0) - (y, x)).max() <= 1.0  # the sprite's centre dot rides along
            assert (frame[y, x + 7] == 200).all() and (frame[y, x + 13] == 40).all()  # inside / outside the disc

    def test_scale_grows_the_disc(self) -> None:
        background, sprite = self.pictures()
        scene = SpriteScene(background.astype(np.float64), sprite.astype(np.float64), 10.0,
                            (32.0, 32.0, 1.0, 0.0), (32.0, 32.0, 1.5, 0.0), (0.0, 0.0))
        bright = [(scene.render(alpha)[..., 1] > 120).sum() for alpha in (0.0, 1.0)]
        assert abs(bright[1] / bright[0] - 1.5**2) < 0.15

    def test_seeded_and_drawn_from_two_different_pictures(self) -> None:
        pictures = self.pictures()
        first = sprite_scene(np.random.default_rng(4), pictures, 64)
        again = sprite_scene(np.random.default_rng(4), pictures, 64)
        np.testing.assert_array_equal(first.render(0.5), again.render(0.5))
        assert first.background is not first.sprite and not np.array_equal(first.background, first.sprite)


class TestSoftScene:
    @staticmethod
    def marked_texture(size: int = 64) -> np.ndarray:
        """A plain bright texture with a red dot at its centre."""
        texture = np.full((size, size, 3), 200.0)
        texture[size // 2 - 1:size // 2 + 1, size // 2 - 1:size // 2 + 1] = (255.0, 0.0, 0.0)
        return texture

    def test_a_sprite_moves_linearly_over_a_panning_background(self) -> None:
        size = 64
        background = np.zeros((size + 16, size + 16, 3))
        background[:, 40] = 100.0  # a grey column: at x 32 of the frame at alpha 0
        sprite = Sprite(self.marked_texture(), 8.0, (20.0, 16.0, 1.0, 0.0), (40.0, 36.0, 1.0, 0.0))
        scene = SoftScene(background, (sprite,), (0.0, 6.0), size)
        for alpha, (y, x) in ((0.0, (20, 16)), (0.5, (30, 26)), (1.0, (40, 36))):
            frame = scene.render(alpha).astype(int)
            red = np.argwhere((frame[..., 0] > 200) & (frame[..., 1] < 100))
            assert np.abs(red.mean(axis=0) - (y, x)).max() <= 1.0
            assert (frame[y, x + 5] == 200).all() and (frame[y, x + 11] < 110).all()  # inside / outside the disc
            column = round(32 + 6 * alpha)
            assert (frame[2, column] == 100).all() and (frame[2, column + 2] == 0).all()  # the background pans

    def test_a_square_sprite_covers_its_side_squared_and_turns(self) -> None:
        texture = self.marked_texture()
        square = Sprite(texture, 10.0, (32.0, 32.0, 1.0, 0.0), (32.0, 32.0, 1.0, math.pi / 4), square=True)
        scene = SoftScene(np.zeros((80, 80, 3)), (square,), (0.0, 0.0), 64)
        # Its area (the texture is 200 but for a 4-pixel dot), antialiased: a side of 2 × 0.8 × 10 px.
        areas = [scene.render(alpha)[..., 1].sum() / 200.0 + 4 for alpha in (0.0, 1.0)]
        assert abs(areas[0] - 16.0**2) < 4 and abs(areas[1] - 16.0**2) < 4
        turned = scene.render(1.0)[..., 1] > 120
        assert turned[32, 32 + 10] and not turned[32 + 7, 32 + 7]  # a diamond: its corner on the axis

    def test_seeded_soft_and_without_flat_areas(self) -> None:
        first = soft_scene(np.random.default_rng(4), 64)
        again = soft_scene(np.random.default_rng(4), 64)
        np.testing.assert_array_equal(first.render(0.5), again.render(0.5))
        assert 1 <= len(first.sprites) <= 3
        frame = first.render(0.0).astype(float)
        assert frame.std(axis=(0, 1)).max() < 80  # soft: no channel spans the whole range


class TestLayeredFlows:
    """The scenes' true flows, checked against the scenes' own renders."""

    @staticmethod
    def smooth_texture(size: int = 64, seed: int = 0) -> np.ndarray:
        return (128 + 80 * random_texture(np.random.default_rng(seed), size, size, falloff=3.0)).clip(0, 255)

    def test_a_moved_sprite_over_a_pan_has_its_step_inside_and_the_pan_outside(self) -> None:
        sprite = Sprite(self.smooth_texture(), 8.0, (20.0, 16.0, 1.0, 0.0), (30.0, 40.0, 1.0, 0.0))
        forward, backward = sprite_flows(64, (sprite,), (2.0, -3.0))
        assert forward.shape == backward.shape == (64, 64, 2) and forward.dtype == np.float32
        np.testing.assert_allclose(forward[30, 40], (10.0, 24.0), atol=1e-5)  # T's sprite came from S's
        np.testing.assert_allclose(backward[20, 16], (-10.0, -24.0), atol=1e-5)
        np.testing.assert_allclose(forward[5, 5], (2.0, -3.0))  # the background pans
        np.testing.assert_allclose(backward[5, 5], (-2.0, 3.0))
        assert np.allclose(forward[20, 16], (2.0, -3.0))  # where the sprite was, T shows the background

    def test_warping_the_start_by_the_forward_flow_gives_the_end_where_both_see_the_point(self) -> None:
        size = 64
        sprite = Sprite(self.smooth_texture(seed=1), 12.0, (28.0, 26.0, 1.0, 0.0), (36.0, 34.0, 1.25, 0.4),
                        square=True)
        scene = SoftScene(self.smooth_texture(size + 16, seed=2), (sprite,), (1.5, -2.5), size)
        start, end = scene.render(0.0).astype(float), scene.render(1.0).astype(float)
        forward, backward = scene.true_flows()
        grid = pixel_grid(size, size)
        # Pixels whose point is visible at both ends: inside the sprite at alpha 1, or background at alpha 1
        # whose source was background too, away from the sprite's edges and the frame's border.
        _, cover_end = sprite.cover(grid, 1.0)
        _, cover_start = sprite.cover(grid, 0.0)
        came_from_sprite = sample_bilinear(cover_start, grid - forward)[..., 0]
        clear_inside = cover_end[..., 0] == 1.0
        clear_outside = (cover_end[..., 0] == 0.0) & (came_from_sprite == 0.0)
        visible = (clear_inside | clear_outside)[4:-4, 4:-4]
        assert visible.mean() > 0.6 and clear_inside.sum() > 300
        warped = sample_bilinear(start, grid - forward)
        error = np.abs(warped - end).max(axis=-1)[4:-4, 4:-4]
        assert np.percentile(error[visible], 95) <= 3.0
        # Not the identity: without the flow the two frames differ there.
        assert np.percentile(np.abs(start - end).max(axis=-1)[4:-4, 4:-4][visible], 95) > 10
        # The two directions undo each other on the sprite's points.
        there = grid - forward
        back = sample_bilinear(backward, there)
        inside = clear_inside & (sample_bilinear(cover_start, there)[..., 0] == 1.0)
        np.testing.assert_allclose((back + forward)[inside], 0.0, atol=0.05)

    def test_a_sprite_scene_carries_its_disc_and_pan(self) -> None:
        size = 64
        scene = SpriteScene(self.smooth_texture(seed=3), self.smooth_texture(seed=4), 10.0,
                            (24.0, 24.0, 1.0, 0.0), (34.0, 30.0, 0.9, -0.2), (1.0, 2.0))
        forward, _ = scene.true_flows()
        # The disc's centre moves with its pose: the end's centre shows the start's.
        np.testing.assert_allclose(forward[34, 30], (10.0, 6.0), atol=1e-5)
        np.testing.assert_allclose(forward[2, 2], (1.0, 2.0))
        start, end = scene.render(0.0).astype(float), scene.render(1.0).astype(float)
        grid = pixel_grid(size, size)
        warped = sample_bilinear(start, grid - forward)
        _, cover = Sprite(scene.sprite, scene.radius, scene.start, scene.end).cover(grid, 1.0)
        inside = cover[..., 0] == 1.0
        assert np.percentile(np.abs(warped - end).max(axis=-1)[inside], 95) <= 3.0


def noise_picture(size: int, seed: int = 0) -> np.ndarray:
    """``[size, size, 3] uint8`` random pixels: any misplaced pixel shows."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)


class TestCameraScene:
    def test_alpha_zero_is_the_middle_of_the_picture(self) -> None:
        picture = noise_picture(128)
        scene = CameraScene(picture.astype(np.float64), 64, 1.1, 0.1, (3.0, -2.0), 1.2)
        np.testing.assert_array_equal(scene.render(0.0), picture[32:96, 32:96])

    def test_a_pan_moves_the_view_and_the_exposure_scales_it(self) -> None:
        picture = noise_picture(128)
        scene = CameraScene(picture.astype(np.float64), 64, 1.0, 0.0, (4.0, -6.0), 1.0)
        # View pixel p shows the picture at p - shift: the crop moved up by 4 and right by 6.
        np.testing.assert_array_equal(scene.render(1.0), picture[28:92, 38:102])
        brighter = CameraScene(picture.astype(np.float64) / 2, 64, 1.0, 0.0, (0.0, 0.0), 1.5)
        expected = np.clip(np.rint(picture[32:96, 32:96] / 2 * 1.5), 0, 255)
        np.testing.assert_allclose(brighter.render(1.0), expected, atol=1)

    def test_a_zoom_and_turn_carry_a_dot_about_the_centre(self) -> None:
        picture = np.zeros((128, 128, 3))
        picture[63:65, 73:75] = 255.0  # a dot 10 px right of the centre (63.5, 63.5)
        for zoom, turn in ((1.5, 0.0), (1.0, math.pi / 2), (0.8, 0.3)):
            frame = CameraScene(picture, 64, zoom, turn, (0.0, 0.0), 1.0).render(1.0)[..., 0].astype(float)
            y, x = (np.argwhere(frame > 0) * frame[frame > 0][:, None]).sum(0) / frame[frame > 0].sum()
            # Shown zoom times larger, turned by -turn (counter-clockwise on screen for positive turn).
            expected = (31.5 - 10 * zoom * math.sin(turn), 31.5 + 10 * zoom * math.cos(turn))
            assert abs(y - expected[0]) < 0.6 and abs(x - expected[1]) < 0.6, (zoom, turn, y, x)

    def test_seeded_and_asks_for_large_pictures(self) -> None:
        pictures = [noise_picture(128, seed) for seed in range(3)]
        first = camera_scene(np.random.default_rng(5), pictures, 64)
        again = camera_scene(np.random.default_rng(5), pictures, 64)
        np.testing.assert_array_equal(first.render(0.5), again.render(0.5))
        with pytest.raises(ValueError, match="at least 128"):
            camera_scene(np.random.default_rng(5), [noise_picture(100)], 64)


class TestBendScene:
    def test_alpha_zero_is_the_middle_and_a_wide_bump_shifts_it(self) -> None:
        picture = noise_picture(96)
        # One bump far wider than the view: nearly a uniform move by (2, -3) px.
        scene = BendScene(picture.astype(np.float64), 64, np.array([[31.5, 31.5]]), np.array([1e6]),
                          np.array([[2.0, -3.0]]))
        np.testing.assert_array_equal(scene.render(0.0), picture[16:80, 16:80])
        np.testing.assert_array_equal(scene.render(1.0), picture[14:78, 19:83])

    def test_the_bend_is_a_sum_of_gaussians_and_grows_with_alpha(self) -> None:
        scene = bend_scene(np.random.default_rng(2), [noise_picture(160)], 64)
        bend = scene.bend()
        y, x = 10, 50
        slow = sum(a * math.exp(-((y - c[0]) ** 2 + (x - c[1]) ** 2) / (2 * s * s))
                   for c, s, a in zip(scene.centres, scene.sigmas, scene.amplitudes))
        np.testing.assert_allclose(bend[y, x], slow, rtol=1e-9)
        assert np.abs(bend).max() > 1.0
        frames = [scene.render(a).astype(float) for a in (0.0, 0.5, 1.0)]
        assert 0 < np.abs(frames[1] - frames[0]).mean() < np.abs(frames[2] - frames[0]).mean()
        with pytest.raises(ValueError, match="at least 96"):
            bend_scene(np.random.default_rng(2), [noise_picture(90)], 64)
