"""Rotated-rect crops: rotation rule, rect transforms, warp and its inverse, borders, pyramid."""
import math

import numpy as np
import pytest

from pose_perception.core.crops import (CropSampler, crop_to_image_matrix, invert_affine,
                                        letterbox_rect, normalize_radians, rect_contains,
                                        rect_corners, rect_from_alignment, rect_from_box,
                                        rotated_bounds_rect, rotation_from_points,
                                        transform_points, transform_rect)
from pose_perception.core.types import RotatedRect


def _dot_image(h, w, x, y, r=2):
    img = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    img[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = 255
    return img


def _centroid(crop):
    g = crop[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


def test_normalize_radians_range():
    for a in np.linspace(-20, 20, 97):
        n = normalize_radians(a)
        assert -math.pi <= n < math.pi
        assert math.isclose(math.cos(n), math.cos(a), abs_tol=1e-9)


def test_rotation_rule():
    # body upright: hip centre below the head point -> no rotation for a 90 degree target
    assert rotation_from_points((100, 200), (100, 100), math.pi / 2) == pytest.approx(0)
    # lying with the head to the right -> the crop is turned by +90 degrees
    assert rotation_from_points((100, 200), (200, 200), math.pi / 2) == pytest.approx(math.pi / 2)
    # eyes level (target 0) -> no rotation; tilted head -> rotation = tilt
    assert rotation_from_points((10, 10), (30, 10), 0.0) == pytest.approx(0)
    assert rotation_from_points((0, 0), (10, 10), 0.0) == pytest.approx(math.pi / 4)


def test_alignment_rect_and_transform():
    r = rect_from_alignment((100, 200), (100, 150), math.pi / 2)
    assert (r.cx, r.cy, r.width, r.height) == pytest.approx((100, 200, 100, 100))
    r2 = transform_rect(RotatedRect(0, 0, 40, 20, 0.0), 1.25, 1.25, square_long=True)
    assert (r2.width, r2.height) == pytest.approx((50, 50))
    # shifts are along the rect's own axes: with 90 degrees, "up" (-y) in the crop is +x
    r3 = transform_rect(RotatedRect(0, 0, 10, 10, math.pi / 2), shift_y=-0.5)
    assert (r3.cx, r3.cy) == pytest.approx((5, 0), abs=1e-9)
    b = rect_from_box((10, 20, 50, 40), 0.3)
    assert (b.cx, b.cy, b.width, b.height, b.rotation) == pytest.approx((30, 30, 40, 20, 0.3))


def test_matrix_maps_centre_and_corners_and_inverts():
    rect = RotatedRect(300, 200, 120, 80, 0.7)
    m = crop_to_image_matrix(rect, 64, 32)
    assert transform_points(m, np.array([32, 16])) == pytest.approx([300, 200], abs=1e-4)
    corners = transform_points(m, np.array([[0, 0], [64, 0], [64, 32], [0, 32]]))
    assert np.allclose(corners, rect_corners(rect), atol=1e-3)
    pts = np.random.default_rng(0).uniform(0, 64, (10, 2))
    back = transform_points(invert_affine(m), transform_points(m, pts))
    assert np.allclose(back, pts, atol=1e-3)


@pytest.mark.parametrize("rotation", [0.0, 0.5, -2.0, math.pi])
def test_crop_places_image_point_where_the_inverse_says(rotation):
    img = _dot_image(240, 320, 190, 90)
    rect = RotatedRect(170, 110, 100, 100, rotation)
    out = np.zeros((64, 64, 3), np.uint8)
    m = CropSampler(img).crop(rect, out)
    expected = transform_points(invert_affine(m), np.array([190, 90]))
    assert np.allclose(_centroid(out), expected, atol=0.3)
    # and back: the found crop point projects onto the dot
    assert np.allclose(transform_points(m, _centroid(out)), [190, 90], atol=0.5)


def test_borders_replicate_and_zero():
    img = np.full((50, 50, 3), 200, np.uint8)
    rect = RotatedRect(0, 0, 50, 50, 0.0)      # three quarters outside the image
    out = np.zeros((32, 32, 3), np.uint8)
    CropSampler(img).crop(rect, out, border="replicate")
    assert out.min() == 200
    CropSampler(img).crop(rect, out, border="zero")
    assert out[0, 0].max() == 0 and out[-1, -1].min() == 200


def test_huge_image_uses_pyramid_without_shifting_points():
    img = _dot_image(2400, 3200, 2000, 700, r=20)
    s = CropSampler(img)
    out = np.zeros((128, 128, 3), np.uint8)
    m = s.crop(letterbox_rect(3200, 2400), out, border="zero")
    assert len(s.levels) > 2                 # sampled from a reduced level
    assert np.allclose(transform_points(m, _centroid(out)), [2000, 700], atol=8)


def test_tiny_image_crops_without_error():
    img = np.full((1, 1, 3), 7, np.uint8)
    out = np.zeros((16, 16, 3), np.uint8)
    CropSampler(img).crop(letterbox_rect(1, 1), out, border="replicate")
    assert out.min() == 7
    with pytest.raises(ValueError):
        CropSampler(np.zeros((0, 4, 3), np.uint8))


def test_letterbox_pads_short_side_symmetrically():
    img = np.full((480, 640, 3), 255, np.uint8)
    out = np.zeros((224, 224, 3), np.uint8)
    CropSampler(img).crop(letterbox_rect(640, 480), out, border="zero")
    rows = np.nonzero(out[:, 112, 0] > 128)[0]
    assert rows[0] == pytest.approx(28, abs=1) and rows[-1] == pytest.approx(195, abs=1)


def test_rotated_bounds_rect_recovers_rect():
    rect = RotatedRect(50, 60, 30, 10, 0.4)
    pts = rect_corners(rect)
    r = rotated_bounds_rect(pts, 0.4)
    assert (r.cx, r.cy, r.width, r.height) == pytest.approx((50, 60, 30, 10), abs=1e-3)
    along = [50 + 14 * math.cos(0.4), 60 + 14 * math.sin(0.4)]     # inside, near the end
    inside = rect_contains(rect, np.array([[50, 60], along, [80, 60]]))
    assert inside.tolist() == [True, True, False]
