"""Real RGB-D frames (Toyota HSR head sensor, registered 32FC1 depth, plumb_bob camera): the
standing person's 3D skeleton is anatomically plausible and lies at his silhouette's depth, and
his head pose looks where he looks. Needs the development data and the provisioned models."""
import cv2
import numpy as np
import pytest
import yaml

from pose_perception.core.camera import CameraModel
from pose_perception.core.geometry import quat_to_matrix
from pose_perception.core.lifting import Lifter
from pose_perception.core.types import SOURCE_DEPTH
from model_env import require_models

FRAMES = ("41-38", "42-18", "42-25")


@pytest.fixture(scope="module")
def pipeline():
    from pose_perception.core.keypoint_pipeline import KeypointConfig, KeypointPipeline
    require_models()
    return KeypointPipeline(KeypointConfig())


def silhouette_depth(depth, box):
    """Mode of the depth inside the person's box (he fills most of it)."""
    x0, y0, x1, y1 = np.asarray(box).astype(int)
    sub = depth[max(0, y0):y1, max(0, x0):x1]
    v = sub[np.isfinite(sub)]
    hist, edges = np.histogram(v, bins=np.arange(0.0, 10.0, 0.1))
    return edges[hist.argmax()] + 0.05


@pytest.mark.models
@pytest.mark.parametrize("frame", FRAMES)
def test_standing_person_in_3d(shared_data, pipeline, frame):
    d = shared_data / "rgbd_dev" / "tue_hsr" / frame
    cam = CameraModel.from_camera_info_dict(yaml.safe_load((d / "camera_info.yaml").read_text()))
    assert cam.distortion_model == "plumb_bob" and cam.is_distorted
    rgb = cv2.cvtColor(cv2.imread(str(d / "rgb.png")), cv2.COLOR_BGR2RGB)
    depth = np.load(d / "depth.npy")
    pipeline.reset()
    result = pipeline.process(rgb)
    assert result.persons, "nobody detected"
    Lifter().lift_frame(result, depth, cam)
    person = max(result.persons, key=lambda p: (p.box[3] - p.box[1]) * (p.box[2] - p.box[0]))
    b = person.body
    xyz, ok = b.xyz.astype(np.float64), b.xyz_valid

    def bones(pairs):
        return [np.linalg.norm(xyz[a] - xyz[c]) for a, c in pairs if ok[a] and ok[c]]

    upper_arms, thighs = bones([(11, 13), (12, 14)]), bones([(23, 25), (24, 26)])
    assert upper_arms and thighs
    assert all(0.2 <= v <= 0.4 for v in upper_arms), upper_arms
    assert all(0.3 <= v <= 0.55 for v in thighs), thighs
    sil = silhouette_depth(depth, person.box)
    assert person.centroid is not None and abs(person.centroid[2] - sil) < 0.3
    # the torso is measured, and no valid joint took the background's depth
    assert np.all(b.xyz_source[[11, 12, 23, 24]] == SOURCE_DEPTH)
    assert np.all(np.abs(xyz[ok, 2] - sil) < 0.6)
    assert np.all(b.xyz_sigma[ok] > 0) and np.all(b.xyz_sigma[ok] < 0.3)
    # head pose: profile to the image's left in 41-38, towards the camera in 42-*
    assert person.face is not None and person.face.head_pose is not None
    fwd = quat_to_matrix(person.face.head_pose.orientation)[:, 0]
    if frame == "41-38":
        assert fwd[0] < -0.5
    else:
        assert fwd[2] < -0.8
    assert abs(person.face.head_pose.position[2] - xyz[0, 2]) < 0.1   # by the nose
