"""The built-in RGB-D sample (deterministic, labelled synthetic, geometrically consistent) and the
frame sources beside it (recorded folders, bags, looping)."""
import numpy as np
import pytest

from pose_perception.sources import sample
from model_env import require_models


@pytest.fixture(scope="module")
def models():
    require_models()


@pytest.fixture(scope="module")
def seq1(models):
    return sample.builtin_sample(frames=48, people=1)


# ------------------------------------------------------------------------ no models needed
def test_sample_photo_is_grace_hopper_from_matplotlib():
    photos = sample.sample_photos()
    assert [n for n, _ in photos] == ["grace_hopper"]
    rgb = photos[0][1]
    assert rgb.dtype == np.uint8 and rgb.shape == (600, 512, 3)
    with pytest.raises(ValueError, match="photos must be"):
        sample.sample_photos("nope")


def test_sample_camera_info_is_ideal_pinhole_in_labelled_frame():
    info = sample.sample_camera_info(640, 480)
    assert info["frame_id"] == sample.SAMPLE_FRAME_ID and "synthetic" in info["frame_id"]
    assert info["K"][0] == info["K"][4] == 525.0 and info["K"][2] == 319.5
    assert sample.sample_camera_info(1280, 960)["K"][0] == 1050.0


def _fake_seq(n=3, fps=10.0):
    from pose_perception.sources.rgbd_folder import RGBDFrame
    frames = [RGBDFrame(str(i), np.zeros((4, 4, 3), np.uint8), None, "", {}, stamp_s=i / fps)
              for i in range(n)]
    return sample.RGBDSequence("fake", frames, fps)


def test_looped_stamps_increase_across_wraps_and_jump_back_on_resets():
    seq = _fake_seq(3, 10.0)
    steps = list(sample.looped(seq, 10))
    assert [k for k, _ in steps] == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    t = np.array([s for _, s in steps])
    assert np.allclose(np.diff(t), 0.1)                      # one period across each wrap
    steps = list(sample.looped(seq, 10, reset_every=2))
    t = np.array([s for _, s in steps])
    assert np.allclose(t[:6], np.arange(6) * 0.1)
    assert t[6] == pytest.approx(0.0)                        # second wrap: back to the start
    assert np.allclose(t[6:], np.arange(4) * 0.1)
    with pytest.raises(ValueError):
        list(sample.looped(sample.RGBDSequence("empty", [], 10.0), 1))


def test_load_source_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="built-in sample only"):
        sample.load_source(str(tmp_path), people=2)
    with pytest.raises(FileNotFoundError):
        sample.load_source(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="people must be"):
        sample.builtin_sample(frames=2, people=4)


# ------------------------------------------------------------------------------- the sample
def test_sample_is_deterministic_including_the_segmentation(models, seq1):
    sample.person_cutout.cache_clear()          # recompute the mask with the model
    again = sample.builtin_sample(frames=48, people=1)
    assert len(again) == len(seq1) == 48
    for a, b in zip(seq1.frames, again.frames):
        assert np.array_equal(a.rgb, b.rgb)
        assert np.array_equal(a.depth, b.depth, equal_nan=True)
        assert a.stamp_s == b.stamp_s
    assert np.array_equal(seq1.extra["true_distance_lateral_m"],
                          again.extra["true_distance_lateral_m"])


def test_sample_is_labelled_synthetic_everywhere(models, seq1):
    assert seq1.synthetic_depth
    assert "SYNTHETIC" in seq1.label() and "SYNTHETIC" in seq1.description
    assert "SYNTHETIC" in sample.sample_frames_summary(seq1)
    f = seq1.frames[0]
    assert f.frame_id == sample.SAMPLE_FRAME_ID == seq1.frame_id
    assert f.depth_encoding == "32FC1" and f.depth.dtype == np.float32
    # the label is burnt into the image: bottom-left corner differs from an unlabelled build
    plain = sample.builtin_sample(frames=1, people=1, label=False).frames[0].rgb
    diff = np.any(plain != f.rgb, axis=2)
    ys, xs = np.nonzero(diff)
    assert diff.sum() > 500 and ys.min() > 440 and xs.max() < 400


def test_sample_depth_agrees_with_the_scene_geometry(models, seq1):
    f = seq1.frames[0]
    cam = seq1.camera(f)
    z_true, x_true = seq1.extra["true_distance_lateral_m"][0, 0]
    d = f.depth
    # the wall above the horizon, away from the person
    wall = d[20:120, 20:120]
    assert np.nanmedian(wall) == pytest.approx(sample.WALL_DISTANCE_M, abs=0.02)
    # the floor at the bottom row: z = camera height / ray slope
    v = 470
    z_floor = sample.CAMERA_HEIGHT_M / ((v - cam.cy) / cam.fy)
    assert np.nanmedian(d[v, :100]) == pytest.approx(z_floor, rel=0.02)
    # the person at the shoulder line: between z - relief and z
    u = int(round(cam.cx + cam.fx * x_true / z_true))
    v_sh = int(round(cam.cy + cam.fy * (sample.CAMERA_HEIGHT_M - sample.SHOULDER_HEIGHT_M)
                     / z_true))
    person = d[v_sh + 5:v_sh + 15, u - 3:u + 4]
    assert np.all(person > z_true - sample.BODY_RELIEF_M - 0.05)
    assert np.all(person < z_true + 0.05)
    # an IR shadow: some invalid pixels, but few
    assert 0 < np.isnan(d).mean() < 0.05


def test_three_people_are_separate_and_do_not_overlap(models):
    seq = sample.builtin_sample(frames=4, people=3)
    import cv2
    truth = seq.extra["true_distance_lateral_m"]
    assert truth.shape == (4, 3, 2)
    cy = int(seq.camera().cy)
    for f in seq.frames:
        fg = (f.depth[:cy] < sample.WALL_DISTANCE_M - 0.5).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg)
        assert sum(stats[1:, cv2.CC_STAT_AREA] > 500) == 3


def test_pipeline_lifts_the_sample_to_its_true_size_and_distance(models, seq1):
    """Apparent size and synthetic depth agree: over the whole walk (3.4 m -> 0.9 m -> 3.4 m)
    the lifted person is ~0.36 m across the shoulders, at the distance the sample put them."""
    from pose_perception.core.perception import Perception, PerceptionConfig
    per = Perception(PerceptionConfig.from_dict({"keypoints": {"providers": ["cpu"]}}))
    truth = seq1.extra["true_distance_lateral_m"]
    found, widths = 0, []
    for k, f in enumerate(seq1.frames):
        res = per.process(f.rgb, f.stamp_s, f.depth_m, seq1.camera(f))
        assert len(res.persons) <= 1, f"frame {k}: {len(res.persons)} people, the sample has 1"
        if not res.persons:
            continue
        found += 1
        p = res.persons[0]
        xyz, ok = p.body.xyz, p.body.xyz_valid
        if ok[11] and ok[12]:
            widths.append(float(np.linalg.norm(xyz[11] - xyz[12])))
        assert p.centroid is not None and np.all(np.isfinite(p.centroid)), f"frame {k}"
        assert abs(p.centroid[2] - truth[k, 0, 0]) < 0.3, f"frame {k}"
        assert abs(p.centroid[0] - truth[k, 0, 1]) < 0.2, f"frame {k}"
    assert found >= 42
    assert len(widths) >= 40
    assert np.median(widths) == pytest.approx(sample.SHOULDER_WIDTH_M, abs=0.05)
    assert np.percentile(widths, 90) < 0.5 and np.percentile(widths, 10) > 0.25


# ------------------------------------------------------------------------ recorded sources
def test_load_rgbd_dir_realsense_and_tue(shared_data):
    rs = sample.load_rgbd_dir(shared_data / "rgbd_dev/realsense_two_people", max_frames=4)
    assert len(rs) == 4 and rs.fps == 30 and not rs.synthetic_depth
    assert rs.camera().fx == pytest.approx(617.25)
    d = rs.frames[0].depth_m
    assert d.dtype == np.float32 and np.nanmax(d) < 10 and np.isnan(d).any()
    tue = sample.load_rgbd_dir(shared_data / "rgbd_dev/tue_hsr")
    assert len(tue) == 3 and tue.frames[0].depth_encoding == "32FC1"
    st = tue.stamps()
    assert np.all(np.diff(st) > 0) and st[0] == pytest.approx(1556880098.522459261)


def _write_bag(path, frames, storage, depth_offset_ns=2_000_000, compressed=False):
    rb = pytest.importorskip("rosbags.rosbag2")
    from rosbags.typesys import Stores, get_typestore
    import cv2
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    Image, Info = T["sensor_msgs/msg/Image"], T["sensor_msgs/msg/CameraInfo"]
    Comp = T["sensor_msgs/msg/CompressedImage"]
    Header, Time, RoI = (T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"],
                         T["sensor_msgs/msg/RegionOfInterest"])
    plugin = rb.StoragePlugin.MCAP if storage == "mcap" else rb.StoragePlugin.SQLITE3
    with rb.Writer(path, version=9, storage_plugin=plugin) as w:
        ctype = Comp if compressed else Image
        cc = w.add_connection("/cam/color/image_raw" + ("/compressed" if compressed else ""),
                              ctype.__msgtype__, typestore=ts)
        ci = w.add_connection("/cam/color/camera_info", Info.__msgtype__, typestore=ts)
        cd = w.add_connection("/cam/depth/image_rect_raw", Image.__msgtype__, typestore=ts)
        for i, (rgb, depth_mm) in enumerate(frames):
            t_ns = 5_000_000_000 + i * 100_000_000
            h, wd = rgb.shape[:2]

            def header(t):
                return Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id="cam")
            if compressed:
                ok, png = cv2.imencode(".png", rgb[..., ::-1])
                msg = Comp(header=header(t_ns), format="png", data=png.reshape(-1))
            else:
                msg = Image(header=header(t_ns), height=h, width=wd, encoding="rgb8",
                            is_bigendian=0, step=wd * 3, data=rgb.reshape(-1))
            w.write(cc, t_ns, ts.serialize_cdr(msg, ctype.__msgtype__))
            info = Info(header=header(t_ns), height=h, width=wd, distortion_model="plumb_bob",
                        d=np.zeros(5), k=np.array([50.0, 0, wd / 2, 0, 50.0, h / 2, 0, 0, 1]),
                        r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
                        roi=RoI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            w.write(ci, t_ns, ts.serialize_cdr(info, Info.__msgtype__))
            td = t_ns + depth_offset_ns
            dmsg = Image(header=header(td), height=h, width=wd, encoding="16UC1", is_bigendian=0,
                         step=wd * 2, data=np.ascontiguousarray(depth_mm).view(np.uint8).ravel())
            w.write(cd, td, ts.serialize_cdr(dmsg, Image.__msgtype__))


@pytest.mark.parametrize("storage,compressed", [("mcap", False), ("sqlite3", True)])
def test_load_bag_roundtrip_pairs_colour_and_depth(tmp_path, storage, compressed):
    rng = np.random.default_rng(3)
    frames = [(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8),
               rng.integers(0, 4000, (24, 32), dtype=np.uint16)) for _ in range(5)]
    bag = tmp_path / f"bag_{storage}"
    _write_bag(bag, frames, storage, compressed=compressed)
    assert sample.is_bag(bag)
    seq = sample.load_source(str(bag), frames=4)             # at most 4 colour frames
    assert len(seq) == 4 and seq.fps == pytest.approx(10.0)
    for (rgb, dmm), f in zip(frames, seq.frames):
        assert np.array_equal(f.rgb, rgb)
        assert f.depth_encoding == "16UC1" and np.array_equal(f.depth, dmm)
        assert f.depth_stamp_s - f.stamp_s == pytest.approx(0.002)
        assert f.frame_id == "cam"
    assert seq.camera().fx == 50.0
    assert "/cam/depth/image_rect_raw" in seq.description


def test_load_bag_without_matching_depth_keeps_colour_only(tmp_path):
    rng = np.random.default_rng(4)
    frames = [(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
               np.zeros((8, 8), np.uint16)) for _ in range(3)]
    bag = tmp_path / "late_depth"
    _write_bag(bag, frames, "mcap", depth_offset_ns=350_000_000)   # > slop from every colour
    seq = sample.load_bag(bag, slop_s=0.1)
    assert len(seq) == 3 and all(f.depth is None for f in seq.frames)
    with pytest.raises(ValueError, match="no colour topic 'nope'"):
        sample.load_bag(bag, color_topic="nope")
