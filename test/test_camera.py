"""CameraModel: distortion round trips, agreement with OpenCV, validation, scaling."""
import cv2
import numpy as np
import pytest

from pose_perception.core.camera import DISTORTION_MODELS, CameraModel

K = [[537.0, 0.0, 320.7], [0.0, 537.6, 227.7], [0.0, 0.0, 1.0]]
MODELS = {
    "plumb_bob": [0.0283, 0.0487, -0.00147, 0.00265, -0.4925],   # the tue_hsr camera
    "rational_polynomial": [0.31, -0.12, 0.001, -0.002, 0.013, 0.62, -0.05, 0.02],
    "equidistant": [0.11, -0.021, 0.0052, -0.0011],
    "none": [],
}


def scene_points(n=2000, seed=0):
    """Points inside the calibrated field of view (ray radius < 0.7: beyond it a strong k3
    folds the plumb_bob model back into the image, which no real lens does)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.4, 6.0, n)
    r = np.c_[rng.uniform(-0.62, 0.62, n), rng.uniform(-0.5, 0.5, n)]
    r = r[np.hypot(r[:, 0], r[:, 1]) < 0.7]
    z = z[:len(r)]
    return np.c_[r * z[:, None], z]


@pytest.mark.parametrize("model", DISTORTION_MODELS)
def test_project_undistort_round_trip(model):
    cam = CameraModel(640, 480, K, MODELS[model], model)
    xyz = scene_points()
    px = cam.project(xyz)
    inside = cam.in_image(px)
    assert inside.sum() > 500
    rays = cam.undistort_points(px[inside])
    np.testing.assert_allclose(rays, xyz[inside, :2] / xyz[inside, 2:], atol=1e-8)
    back = cam.backproject(rays, xyz[inside, 2])
    np.testing.assert_allclose(back, xyz[inside], atol=1e-7)
    np.testing.assert_allclose(cam.backproject_pixels(px[inside], xyz[inside, 2]), xyz[inside],
                               atol=1e-7)


@pytest.mark.parametrize("model", ["plumb_bob", "rational_polynomial", "equidistant"])
def test_project_matches_opencv(model):
    cam = CameraModel(640, 480, K, MODELS[model], model)
    xyz = scene_points(300, seed=1)
    Km, D = np.array(K), np.array(MODELS[model])
    if model == "equidistant":
        ref, _ = cv2.fisheye.projectPoints(xyz.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), Km, D)
    else:
        ref, _ = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), Km, D)
    np.testing.assert_allclose(cam.project(xyz), ref.reshape(-1, 2), atol=1e-6)
    assert cam.is_distorted


def test_distortion_is_not_ignored():
    """A plumb_bob camera must not give pinhole results near the image corner."""
    cam = CameraModel(640, 480, K, MODELS["plumb_bob"], "plumb_bob")
    pin = CameraModel(640, 480, K, [], "none")
    corner = np.array([[5.0, 5.0]])
    assert np.abs(cam.undistort_points(corner) - pin.undistort_points(corner)).max() > 1e-3


def test_invalid_data_gives_nan_not_errors():
    cam = CameraModel(640, 480, K, MODELS["plumb_bob"], "plumb_bob")
    rays = cam.undistort_points([[np.nan, 3.0], [np.inf, 1.0], [100.0, 100.0]])
    assert np.all(np.isnan(rays[:2])) and np.all(np.isfinite(rays[2]))
    px = cam.project([[0.1, 0.1, -1.0], [0.0, 0.0, 0.0], [np.nan, 0, 1], [0.1, 0.1, 2.0]])
    assert np.all(np.isnan(px[:3])) and np.all(np.isfinite(px[3]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(K=np.zeros((3, 3))), "not calibrated"),
    (dict(K=[[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]]), "NaN"),
    (dict(K=[[-500, 0, 320], [0, 500, 240], [0, 0, 1]]), "focal"),
    (dict(distortion_model="kannala_brandt"), "unknown distortion model"),
    (dict(width=0), "size"),
    (dict(height=0), "size"),
    (dict(D=[0.1, 0.2, 0.3]), "coefficients"),
    (dict(distortion_model="equidistant", D=[0.1, 0.2, 0.0, 0.0, 0.1]), "coefficients"),
    (dict(D=[0.1, np.inf, 0, 0, 0]), "NaN"),
    (dict(K=[1, 2, 3]), "9 values"),
])
def test_validation(kwargs, message):
    args = dict(width=640, height=480, K=K, D=MODELS["plumb_bob"], distortion_model="plumb_bob")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        CameraModel(**args)


def test_empty_model_name_without_coefficients_is_pinhole():
    cam = CameraModel(640, 480, K, [], "")
    assert cam.distortion_model == "none" and not cam.is_distorted
    with pytest.raises(ValueError):
        CameraModel(640, 480, K, [0.1, 0, 0, 0, 0], "")


def test_scaled_keeps_the_field_of_view():
    cam = CameraModel(640, 480, K, MODELS["plumb_bob"], "plumb_bob")
    half = cam.scaled(320, 240)
    xyz = scene_points(500, seed=2)
    p, q = cam.project(xyz), half.project(xyz)
    np.testing.assert_allclose(q, (p + 0.5) * 0.5 - 0.5, atol=1e-9)
    # same rays for corresponding pixels
    np.testing.assert_allclose(half.undistort_points(q[:50]), cam.undistort_points(p[:50]),
                               atol=1e-8)
    assert (half.width, half.height) == (320, 240)


def test_from_camera_info_dict_and_rectified():
    info = {"image_width": 640, "image_height": 480, "distortion_model": "plumb_bob",
            "K": sum(K, []), "D": MODELS["plumb_bob"], "R": [1, 0, 0, 0, 1, 0, 0, 0, 1],
            "P": [530.0, 0, 321.0, 0, 0, 531.0, 228.0, 0, 0, 0, 1, 0]}
    cam = CameraModel.from_camera_info_dict(info)
    assert cam.width == 640 and cam.is_distorted and cam.P is not None
    rect = cam.rectified()
    assert not rect.is_distorted and rect.fx == 530.0 and rect.cy == 228.0
    # ROS 2 message field names (lower case), uncalibrated P/R = zeros
    cam2 = CameraModel.from_camera_info_dict({"width": 640, "height": 480, "k": sum(K, []),
                                              "d": [], "distortion_model": "plumb_bob",
                                              "p": [0] * 12, "r": [0] * 9})
    assert cam2.P is None and not cam2.is_distorted
    with pytest.raises(ValueError, match="no P"):
        cam2.rectified()


def test_grid_rays_match_points():
    cam = CameraModel(64, 48, [[50, 0, 31.5], [0, 50, 23.5], [0, 0, 1]],
                      MODELS["plumb_bob"], "plumb_bob")
    g = cam.grid_rays()
    assert g.shape == (48, 64, 2) and not g.flags.writeable
    pts = np.array([[0, 0], [63, 47], [10, 20]], float)
    np.testing.assert_allclose(g[pts[:, 1].astype(int), pts[:, 0].astype(int)],
                               cam.undistort_points(pts), atol=1e-6)
    assert cam.same_geometry(CameraModel(64, 48, cam.K, cam.D, "plumb_bob"))
    assert not cam.same_geometry(cam.scaled(32, 24))
