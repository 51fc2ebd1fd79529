"""ros.markers (joints/bones/labels/face markers, stale marker removal) and ros.diagnostics
(levels, issue expiry, stall detection, rates, latencies, rate-limited logging)."""
import math

import pytest

from ros_env import require_ros

pytestmark = pytest.mark.ros


def _skeletons(track_ids, valid_every=1, with_face=True):
    from std_msgs.msg import Header

    from pose_perception.msg import (FaceLandmarks, FaceLandmarksArray, Keypoint, Skeleton,
                                     SkeletonArray)
    h = Header(frame_id="cam")
    sk, fa = SkeletonArray(depth_used=True), FaceLandmarksArray()
    sk.header = fa.header = h
    for tid in track_ids:
        s = Skeleton(track_id=tid, layout="blazepose33", confidence=0.9)
        for i in range(33):
            k = Keypoint(x=float(i), y=float(i), confidence=i / 32)
            if i % valid_every == 0:
                k.position.x, k.position.y, k.position.z = 0.01 * i, 0.02 * i, 2.0
                k.position_valid = True
            else:
                k.position.x = k.position.y = k.position.z = math.nan
            s.keypoints.append(k)
        s.centroid.x, s.centroid.y, s.centroid.z = 0.0, 0.0, 2.0
        s.centroid_valid = True
        sk.skeletons.append(s)
        if with_face:
            f = FaceLandmarks(face_id=tid, associated=True, skeleton_id=tid, layout="face468")
            for i in range(468):
                k = Keypoint(x=1.0, y=1.0, confidence=1.0, position_valid=(i % 2 == 0))
                k.position.z = 1.9 if i % 2 == 0 else math.nan
                f.landmarks.append(k)
            fa.faces.append(f)
    return sk, fa


def test_markers_of_one_person():
    require_ros()
    from visualization_msgs.msg import Marker

    from pose_perception.core.layouts import BLAZEPOSE33_EDGES
    from pose_perception.ros.markers import MarkerBuilder
    sk, fa = _skeletons([3], valid_every=2)
    out = MarkerBuilder(lifetime_s=0.4).build(sk, fa).markers
    by_ns = {m.ns: m for m in out}
    assert set(by_ns) == {"joints", "bones", "labels", "face"}
    j = by_ns["joints"]
    assert j.type == Marker.SPHERE_LIST and j.id == 3 and j.header.frame_id == "cam"
    assert len(j.points) == 17 and len(j.colors) == 17        # only the valid (even) joints
    # confidence colouring: joint 0 (confidence 0) red, joint 32 (confidence 1) green
    assert (j.colors[0].r, j.colors[0].g) == (1.0, 0.0)
    assert (j.colors[-1].r, j.colors[-1].g) == (0.0, 1.0)
    b = by_ns["bones"]
    n_valid_edges = sum(1 for a, c in BLAZEPOSE33_EDGES if a % 2 == 0 and c % 2 == 0)
    assert b.type == Marker.LINE_LIST and len(b.points) == 2 * n_valid_edges
    t = by_ns["labels"]
    assert t.type == Marker.TEXT_VIEW_FACING and t.text == "id 3  2.00 m"
    f = by_ns["face"]
    assert f.type == Marker.POINTS and len(f.points) == 234
    assert all(m.lifetime.nanosec == 400_000_000 for m in out)


def test_stale_markers_are_deleted():
    require_ros()
    from visualization_msgs.msg import Marker

    from pose_perception.ros.markers import MarkerBuilder
    mb = MarkerBuilder()
    mb.build(*_skeletons([1, 2]))
    out = mb.build(*_skeletons([2])).markers
    deleted = {(m.ns, m.id) for m in out if m.action == Marker.DELETE}
    assert deleted == {("joints", 1), ("bones", 1), ("labels", 1), ("face", 1)}
    assert all(m.id == 2 for m in out if m.action == Marker.ADD)
    empty = mb.build(*_skeletons([])).markers
    assert len(empty) == 1 and empty[0].action == Marker.DELETEALL


def test_people_without_3d_draw_nothing():
    require_ros()
    from visualization_msgs.msg import Marker

    from pose_perception.ros.markers import MarkerBuilder
    sk, fa = _skeletons([4], valid_every=1000, with_face=False)
    for k in sk.skeletons[0].keypoints:
        k.position_valid = False
    out = MarkerBuilder().build(sk, fa).markers
    assert [m.action for m in out] == [Marker.DELETEALL]


def test_diagnostics_levels_issues_and_stall():
    require_ros()
    from diagnostic_msgs.msg import DiagnosticStatus

    from pose_perception.ros.diagnostics import ERROR, OK, WARN, NodeDiagnostics, level_of
    d = NodeDiagnostics("pose_perception: test", "hw", period_s=1.0, issue_ttl_s=2.0,
                        stall_s=3.0)
    for i in range(31):
        d.count("input", 100 + i / 30)
        d.count("processed", 100 + i / 30)
        d.latency_ms("end-to-end", 40 + i)
    d.fact("execution provider", "CPUExecutionProvider")
    arr = d.build(101.0)
    st = arr.status[0]
    assert level_of(st) == OK and st.message == "OK" and st.level == DiagnosticStatus.OK
    values = {kv.key: kv.value for kv in st.values}
    assert values["input"] == "31" and values["execution provider"] == "CPUExecutionProvider"
    assert float(values["input rate [Hz]"]) == pytest.approx(30, rel=0.05)
    p50, p95, mx = (float(v) for v in values["end-to-end latency p50/p95/max [ms]"].split(" / "))
    assert (p50, mx) == (55.0, 70.0) and 65 < p95 < 70
    d.report("camera_info", WARN, "no CameraInfo received on '/camera/color/camera_info'", 101)
    st = d.build(101.5).status[0]
    assert level_of(st) == WARN and "no CameraInfo" in st.message
    assert level_of(d.build(103.6).status[0]) == OK          # expired 2 s after the last report
    d.report("frame", ERROR, "frame failed", 103.7)
    d.report("x", WARN, "minor", 103.7)
    st = d.build(103.8).status[0]
    assert level_of(st) == ERROR and st.message.startswith("frame failed")
    d.clear("frame")
    assert level_of(d.build(103.9).status[0]) == WARN
    # input keeps coming but nothing processed for > stall_s: ERROR
    for i in range(10):
        d.count("input", 104 + i * 0.5)
    st = d.build(108.6).status[0]
    assert level_of(st) == ERROR and "nothing was processed" in st.message


def test_diagnostics_publication_is_rate_limited():
    require_ros()
    from pose_perception.ros.diagnostics import NodeDiagnostics
    d = NodeDiagnostics("n", period_s=1.0)
    assert d.due(10.0) and not d.due(10.5) and d.due(11.0)


def test_rate_limited_log_counts_repeats():
    require_ros()
    from pose_perception.ros.diagnostics import RateLimitedLog
    t = [0.0]
    logged = []
    log = RateLimitedLog(lambda lv, text: logged.append((lv, text)), 5.0, clock=lambda: t[0])
    assert log("k", "warn", "bad frame")
    for _ in range(3):
        t[0] += 1.0
        assert not log("k", "warn", "bad frame")
    assert log("other", "error", "x")
    t[0] = 6.0
    assert log("k", "warn", "bad frame")
    assert logged[0] == ("warn", "bad frame") and logged[1] == ("error", "x")
    assert "repeated 3 more times" in logged[2][1]
