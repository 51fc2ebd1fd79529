"""core.camera_rig (the logic of launch/multi_camera.launch.py): cameras from namespaces or a
YAML file, and the parameters of the pose nodes, the fusion node and the safety monitor."""
from pathlib import Path

import pytest

from pose_perception.core.camera_rig import load_rig, rig_parameters, static_transforms

LAUNCH = Path(__file__).resolve().parents[1] / "launch" / "multi_camera.launch.py"


def test_namespaces_give_one_pose_node_each_and_fusion_and_safety_over_them():
    rig = load_rig("/cam_front, cam_back")
    assert [c.namespace for c in rig] == ["/cam_front", "/cam_back"]
    p = rig_parameters(rig, "base_link")
    assert p["pose_node"]["/cam_back"] == {"camera_namespace": "/cam_back"}
    assert p["people_fusion"] == {"cameras": ["/cam_front", "/cam_back"],
                                  "fusion_frame": "base_link"}
    s = p["safety_monitor"]
    assert s["input_topic"] == "/fused/skeletons" and s["robot_frame"] == "base_link"
    assert s["coverage_cameras"] == ["/cam_front", "/cam_back"]
    assert s["coverage_info_topics"] == ["/cam_front/color/camera_info",
                                         "/cam_back/color/camera_info"]


def test_yaml_rig_with_mounts_driver_namespaces_and_overrides(tmp_path):
    f = tmp_path / "cameras.yaml"
    f.write_text("cameras:\n"
                 "  - namespace: /front\n"
                 "    camera_namespace: /front/camera\n"
                 "    frame: front_color_optical_frame\n"
                 "    mount: '0.2 0 1.2 0 0 0'\n"
                 "    parameters: {use_gpu: false, color_info_topic: rgb/info}\n"
                 "  - namespace: /back\n")
    rig = load_rig(str(f))
    tf = static_transforms(rig, "base_link")
    assert len(tf) == 1 and tf[0].startswith("base_link front_color_optical_frame 0.2 0 1.2")
    p = rig_parameters(rig, "base_link", tf)
    assert p["pose_node"]["/front"] == {"camera_namespace": "/front/camera", "use_gpu": False,
                                        "color_info_topic": "rgb/info", "static_transforms": tf}
    assert p["people_fusion"]["static_transforms"] == tf
    assert p["safety_monitor"]["coverage_info_topics"] == ["/front/camera/rgb/info",
                                                           "/back/color/camera_info"]


@pytest.mark.parametrize("text, match", [("", "no cameras"), ("/a /a", "twice")])
def test_bad_rigs_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        load_rig(text)


def test_mount_needs_a_frame_and_a_yaml_needs_cameras(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("cameras:\n  - {namespace: /a, mount: '0 0 1 0 0 0'}\n")
    with pytest.raises(ValueError, match="needs 'frame'"):
        load_rig(str(f))
    f.write_text("robots: []\n")
    with pytest.raises(ValueError, match="cameras"):
        load_rig(str(f))


def test_launch_file_compiles():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")


def test_launch_builds_a_pose_node_per_camera_plus_fusion_and_safety(monkeypatch):
    from test_ros_launch import _load_launch, _nodes
    mod = _load_launch(LAUNCH)
    monkeypatch.setattr(mod, "_has_package", lambda name: False)     # no tf2_ros
    nodes = _nodes(mod, cameras="/cam_a /cam_b /cam_c")
    assert [n.node_executable for n in nodes] == ["pose_node"] * 3 + [
        "people_fusion_node", "safety_monitor_node"]
