"""core.camera_mount: a camera's 'x y z roll pitch yaw' mount -> the static transform robot frame ->
the camera's optical frame (issue 17, defect 4), as the launch file and the demo use it."""
import numpy as np
import pytest

from pose_perception.core.camera_mount import (optical_frame_pose, parse_mount,
                                               static_transform_publisher_args,
                                               static_transform_spec)
from pose_perception.core.geometry import quat_from_rpy
from pose_perception.ros.compat import parse_static_transform
from pose_perception.sources.sample import SAMPLE_CAMERA_MOUNT


def _optical_to_robot(mount):
    _, _, T = parse_static_transform(static_transform_spec("base_link", "cam", mount))
    return T


def test_the_sample_mount_looks_along_x_from_1_5_m():
    T = _optical_to_robot(SAMPLE_CAMERA_MOUNT)
    p = T @ np.array([0.3, 0.2, 2.0, 1.0])             # 0.3 m right, 0.2 m down, 2 m ahead
    assert p[:3] == pytest.approx([2.0, -0.3, 1.3])


def test_pitch_tilts_the_optical_axis_down_and_yaw_turns_it_left():
    ahead = np.array([0.0, 0.0, 1.0, 1.0])            # 1 m along the optical axis
    p = _optical_to_robot("0.1 0 1.0 0 0.5 0") @ ahead
    assert p[:3] == pytest.approx([0.1 + np.cos(0.5), 0.0, 1.0 - np.sin(0.5)])
    p = _optical_to_robot("0 0 1.0 0 0 1.5707963267948966") @ ahead
    assert p[:3] == pytest.approx([0.0, 1.0, 1.0], abs=1e-9)
    # roll about the optical axis turns the image's "right" (optical x) downwards
    right = _optical_to_robot("0 0 1 0.5 0 0") @ np.array([1.0, 0.0, 0.0, 1.0])
    assert right[:3] == pytest.approx([0.0, -np.cos(0.5), 1.0 - np.sin(0.5)])


def test_the_rpy_parameter_form_and_the_publisher_arguments_agree_with_the_spec():
    t, q = optical_frame_pose("0.2 -0.1 1.1 0.1 0.2 0.3")
    args = static_transform_publisher_args("base_link", "cam", "0.2 -0.1 1.1 0.1 0.2 0.3")
    values = dict(zip(args[0::2], args[1::2]))
    assert [float(values[k]) for k in ("--x", "--y", "--z")] == pytest.approx(t)
    assert [float(values[k]) for k in ("--qx", "--qy", "--qz", "--qw")] == pytest.approx(q)
    assert (values["--frame-id"], values["--child-frame-id"]) == ("base_link", "cam")
    # 'parent child x y z roll pitch yaw' (compat) uses the same RPY convention
    _, _, T = parse_static_transform("a b 0 0 0 0.1 0.2 0.3")
    _, _, T2 = parse_static_transform("a b 0 0 0 " + " ".join(map(str, quat_from_rpy(
        0.1, 0.2, 0.3))))
    assert T == pytest.approx(T2)


@pytest.mark.parametrize("text", ["", "0 0 1", "0 0 1 0 0 0 0", "0 0 one 0 0 0", "0 0 nan 0 0 0"])
def test_malformed_mounts_are_refused_with_the_format(text):
    with pytest.raises(ValueError, match="x y z roll pitch yaw"):
        parse_mount(text)
