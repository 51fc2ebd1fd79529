"""Depth conversion and alignment: every encoding, registered and unregistered depth, with a
synthetic scene of known geometry (a sphere in front of a wall) seen by a depth camera that is
rotated, shifted and differently calibrated from the colour camera."""
import time

import numpy as np
import pytest
from transforms3d.euler import euler2mat

from pose_perception.core.camera import CameraModel
from pose_perception.core.depth import (DepthRegistration, colour_to_depth_pixels,
                                        depth_to_metres, metres_to_16uc1, register_depth)

# ------------------------------------------------------------------------------- conversion


def test_16uc1_millimetres_and_zero_invalid():
    raw = np.array([[0, 1000, 65535], [1, 2500, 0]], np.uint16)
    d = depth_to_metres(raw, "16UC1")
    assert d.dtype == np.float32
    np.testing.assert_allclose(d[0, 1:], [1.0, 65.535], rtol=1e-6)
    assert np.isnan(d[0, 0]) and np.isnan(d[1, 2])
    assert d[1, 0] == pytest.approx(0.001) and d[1, 1] == pytest.approx(2.5)
    # a sensor publishing 0.1 mm units, and a validity range
    d = depth_to_metres(raw, "16UC1", unit_scale=1e-4, max_m=0.2)
    assert d[0, 1] == pytest.approx(0.1) and np.isnan(d[0, 2]) and d[1, 1] == pytest.approx(0.25) \
        or np.isnan(d[1, 1])
    assert np.isnan(depth_to_metres(raw, "16UC1", unit_scale=1e-4, max_m=0.2)[1, 1])


def test_32fc1_metres_and_invalid_values():
    raw = np.array([[np.nan, np.inf, -np.inf, 0.0, -1.5, 2.25, 0.05]], np.float32)
    d = depth_to_metres(raw, "32FC1")
    assert np.all(np.isnan(d[0, :5])) and d[0, 5] == pytest.approx(2.25)
    assert d[0, 6] == pytest.approx(0.05)
    assert np.isnan(depth_to_metres(raw, "32FC1", min_m=0.1)[0, 6])
    # (H, W, 1) and a preallocated output
    out = np.empty((1, 7), np.float32)
    r = depth_to_metres(raw[..., None], "32FC1", out=out)
    assert r is out and out[0, 5] == pytest.approx(2.25)
    # float64 accepted as 32FC1 data, converted to float32
    assert depth_to_metres(raw.astype(np.float64), "32FC1").dtype == np.float32


@pytest.mark.parametrize("encoding", ["rgb8", "8UC1", "mono8", "32FC3", "", "16uc1"])
def test_other_encodings_rejected(encoding):
    with pytest.raises(ValueError, match="unsupported depth encoding"):
        depth_to_metres(np.zeros((2, 2), np.uint16), encoding)


@pytest.mark.parametrize("array, encoding", [
    (np.zeros((2, 2), np.float32), "16UC1"),      # float data labelled millimetres
    (np.zeros((2, 2), np.uint16), "32FC1"),       # millimetres labelled metres
    (np.zeros((2, 2, 3), np.uint16), "16UC1"),    # not a single channel
])
def test_mismatched_arrays_rejected(array, encoding):
    with pytest.raises(ValueError):
        depth_to_metres(array, encoding)
    with pytest.raises(ValueError, match="unit_scale"):
        depth_to_metres(np.zeros((2, 2), np.uint16), "16UC1", unit_scale=0)


def test_16uc1_round_trip():
    d = np.array([[0.5, np.nan, 3.2104, -1.0]], np.float32)
    back = depth_to_metres(metres_to_16uc1(d), "16UC1")
    assert back[0, 0] == pytest.approx(0.5) and back[0, 2] == pytest.approx(3.210)
    assert np.isnan(back[0, 1]) and np.isnan(back[0, 3])


# ----------------------------------------------------------------------------- alignment
COLOUR = CameraModel(640, 480, [[615.0, 0, 322.0], [0, 615.5, 241.0], [0, 0, 1]],
                     [0.11, -0.21, 0.001, -0.0005, 0.05], "plumb_bob")
DEPTH = CameraModel(640, 480, [[570.0, 0, 318.0], [0, 571.0, 236.0], [0, 0, 1]],
                    [-0.04, 0.08, 0.0, 0.0, -0.02], "plumb_bob")
# depth -> colour extrinsics: p_colour = R p_depth + t (a 5 cm baseline, ~2 degrees)
R_DC = euler2mat(np.radians(1.5), np.radians(-2.0), np.radians(1.0))
T_DC = np.array([-0.05, 0.003, 0.004])
SPHERE_C, SPHERE_R, WALL_Z = np.array([0.1, -0.05, 1.5]), 0.3, 3.0


def trace(origin, dirs):
    """Nearest hit parameter s along origin + s * dirs (colour frame) of the sphere and wall."""
    v = dirs
    oc = origin - SPHERE_C
    b = v @ oc
    a = np.einsum("ij,ij->i", v, v)
    c = oc @ oc - SPHERE_R ** 2
    h = b * b - a * c
    s_sph = np.where(h >= 0, (-b - np.sqrt(np.maximum(h, 0))) / a, np.inf)
    s_wall = (WALL_Z - origin[2]) / v[:, 2]
    return np.minimum(s_sph, s_wall), s_sph < s_wall


def render(cam, R=np.eye(3), t=np.zeros(3)):
    """Depth image (z in cam's own frame) of the scene for a camera at pose (R, t) in the colour
    frame, and the mask of pixels seeing the sphere."""
    rays = cam.grid_rays().reshape(-1, 2).astype(np.float64)
    d = np.c_[rays, np.ones(len(rays))]
    s, sph = trace(t, d @ R.T)
    return (s.reshape(cam.height, cam.width).astype(np.float32),
            sph.reshape(cam.height, cam.width))


def edge_mask(depth, jump=0.05, grow=2):
    import cv2
    k = np.ones((3, 3), np.uint8)
    d = np.nan_to_num(depth, nan=0.0)
    e = (cv2.dilate(d, k) - cv2.erode(d, k)) > jump
    return cv2.dilate(e.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)) > 0


def test_registration_matches_the_scene_and_handles_occlusion():
    depth_img, _ = render(DEPTH, R_DC, T_DC)
    expected, sphere_c = render(COLOUR)
    reg = register_depth(depth_img, DEPTH, COLOUR, R_DC, T_DC)
    assert reg.shape == (480, 640) and reg.dtype == np.float32
    edges = edge_mask(expected)
    both = np.isfinite(reg) & ~edges
    assert both.mean() > 0.8
    err = np.abs(reg[both] - expected[both])
    assert np.median(err) < 0.003 and np.percentile(err, 99) < 0.02
    # occlusion: where the colour camera sees the sphere, the wall behind never shows through
    inner = sphere_c & ~edges
    r = reg[inner]
    assert np.mean(np.abs(r - expected[inner]) < 0.02) > 0.97
    assert np.nanmax(r) < 2.0
    # disocclusion: wall the colour camera sees but the depth camera cannot (hidden behind the
    # sphere) has no reading, and never the sphere's depth
    pts = COLOUR.backproject(COLOUR.grid_rays().reshape(-1, 2), expected.reshape(-1))
    to_depth_cam = pts - T_DC
    s, hit_sph = trace(T_DC, to_depth_cam)
    hidden = (hit_sph & (s < 0.999)).reshape(480, 640) & ~sphere_c & ~edges
    assert hidden.sum() > 200
    assert np.mean(np.isnan(reg[hidden])) > 0.8      # (the splat footprint bleeds ~1 px)
    assert np.mean(reg[hidden] < 2.0) < 0.01


def test_registration_of_a_coarser_depth_image_has_no_holes():
    small = DEPTH.scaled(320, 240)
    depth_img, _ = render(small, R_DC, T_DC)
    expected, sphere_c = render(COLOUR)
    reg = DepthRegistration(small, COLOUR, R_DC, T_DC)
    assert reg.splat == 3
    out = reg(depth_img)
    inner = sphere_c & ~edge_mask(expected, grow=3)
    assert np.isfinite(out[inner]).mean() > 0.98
    assert np.median(np.abs(out[inner] - expected[inner])) < 0.005


def test_registration_with_regions_and_4x4():
    depth_img, _ = render(DEPTH, R_DC, T_DC)
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R_DC, T_DC
    reg = DepthRegistration(DEPTH, COLOUR, M)
    full = reg(depth_img)
    box = (250, 150, 420, 330)                       # colour pixels around the sphere
    roi = reg.depth_roi_for_colour_box(box, z_range=(0.5, 5.0))
    part = reg(depth_img, depth_rois=[roi])
    x0, y0, x1, y1 = box
    np.testing.assert_array_equal(part[y0:y1, x0:x1], full[y0:y1, x0:x1])
    assert np.all(np.isnan(part[:, :100]))           # far from the box: not computed
    with pytest.raises(ValueError, match="depth image"):
        reg(depth_img[:100])
    with pytest.raises(ValueError, match="metres"):
        reg(metres_to_16uc1(depth_img))
    with pytest.raises(ValueError, match="rotation"):
        DepthRegistration(DEPTH, COLOUR, np.ones((3, 3)), T_DC)


def test_registration_ignores_invalid_depth_and_is_fast_enough():
    depth_img, _ = render(DEPTH, R_DC, T_DC)
    depth_img[::5] = np.nan
    depth_img[1::7] = -1.0
    depth_img[2::11] = np.inf
    reg = DepthRegistration(DEPTH, COLOUR, R_DC, T_DC)
    reg(depth_img)
    t0 = time.perf_counter()
    out = reg(depth_img)
    ms = (time.perf_counter() - t0) * 1e3
    assert np.nanmin(out) > 1.0 and np.nanmax(out) < 3.5
    print(f"register 640x480: {ms:.1f} ms")
    assert ms < 500  # generous: a shared 2-core CI machine; ~15-30 ms measured


def test_registered_depth_of_another_resolution_maps_pixels():
    half = COLOUR.scaled(320, 240)
    xy = np.array([[100.0, 50.0], [639.0, 479.0], [322.0, 241.0]])
    uv = colour_to_depth_pixels(xy, COLOUR, half)
    np.testing.assert_allclose(uv, (xy + 0.5) * 0.5 - 0.5, atol=1e-6)
    np.testing.assert_allclose(colour_to_depth_pixels(xy, COLOUR, None), xy)
    # registered depth with its own (different) intrinsics: same ray, other pixel
    other = CameraModel(320, 240, [[300.0, 0, 160.0], [0, 300.0, 120.0], [0, 0, 1]], [], "none")
    uv = colour_to_depth_pixels(xy, COLOUR, other)
    np.testing.assert_allclose(other.undistort_points(uv), COLOUR.undistort_points(xy), atol=1e-9)
