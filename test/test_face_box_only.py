"""Issue 13: a person BlazePose's face-anchored detector finds but whose landmarks are unusable
is not dropped silently. A detection whose crop overlaps a found person's crop still runs when
its face lies outside every found person's head region (a different face: a different person),
and a detection whose crop finds nobody (pose flag under ``min_pose_presence``) is published
box-only when the low-flag landmarks put that person's head on the detection's face and show
none of the people found. First the rule with a fake landmark model, then the real models on a
real photo (``people_dev`` in ../shared/data; skipped without it)."""
import numpy as np
import pytest

from model_env import require_models
from pose_perception.core import body as body_mod
from pose_perception.core.body_stage import BodyStage
from pose_perception.core.crops import rect_bounds
from pose_perception.core.keypoint_config import KeypointConfig
from pose_perception.core.ssd import Detection, box_iou
from pose_perception.core.types import FOUND_BY_BOX, FOUND_BY_LANDMARKS

W, H = 640, 480


def _skeleton(cx, hy, s):
    """A standing person facing the camera (39 BlazePose points, pixels): nose at (cx, hy),
    about 7 ``s`` tall."""
    xy = np.zeros((39, 2), np.float32)
    pts = {0: (0, 0), 1: (.1, -.1), 2: (.15, -.1), 3: (.2, -.1), 4: (-.1, -.1),
           5: (-.15, -.1), 6: (-.2, -.1), 7: (.35, 0), 8: (-.35, 0), 9: (.1, .2), 10: (-.1, .2),
           11: (.8, 1.2), 12: (-.8, 1.2), 13: (.9, 2.4), 14: (-.9, 2.4), 15: (.9, 3.5),
           16: (-.9, 3.5), 23: (.5, 3.5), 24: (-.5, 3.5), 25: (.5, 5.2), 26: (-.5, 5.2),
           27: (.5, 6.8), 28: (-.5, 6.8), 33: (0, 3.5), 34: (0, -1.0)}
    for k, (dx, dy) in pts.items():
        xy[k] = (cx + dx * s, hy + dy * s)
    for k, w in zip(range(17, 23), (15, 16, 15, 16, 15, 16)):      # hand points at the wrists
        xy[k] = xy[w]
    for k, a in zip(range(29, 33), (27, 28, 27, 28)):               # feet at the ankles
        xy[k] = xy[a] + (0, .2 * s)
    xy[35:39] = xy[33]
    return xy


class _Person:
    def __init__(self, cx, hy, s, flag):
        self.xy, self.flag = _skeleton(cx, hy, s), flag
        self.s = s

    def detection(self, score=0.8, face=None):
        """BlazePose's detection: the face box, hip centre and the body circle's top point."""
        fx, fy = face if face is not None else self.xy[0]
        f = 0.5 * self.s
        kp = np.stack([self.xy[33], self.xy[34], self.xy[33], self.xy[34]]).astype(np.float32)
        return Detection(np.array([fx - f, fy - f, fx + f, fy + f], np.float32), score, kp)


class _FakeLandmarker:
    """Returns, for each crop, the scripted person whose hip centre is nearest the crop's
    centre, with that person's pose flag."""

    def __init__(self, people):
        self.people = people
        self.calls = 0

    def run(self, sampler, rois):
        self.calls += 1
        rois = list(rois)
        xy, flag = [], []
        for r in rois:
            p = min(self.people, key=lambda q: np.hypot(*(q.xy[33] - (r.cx, r.cy))))
            xy.append(p.xy)
            flag.append(p.flag)
        n = len(rois)
        return body_mod.PoseLandmarks(
            xy=np.array(xy, np.float32).reshape(n, 39, 2), z=np.zeros((n, 39), np.float32),
            visibility=np.ones((n, 39), np.float32), presence=np.ones((n, 39), np.float32),
            flag=np.array(flag, np.float32), world=np.zeros((n, 33, 3), np.float32), rois=rois)


def _stage(people, **kw):
    return BodyStage(_FakeLandmarker(people), KeypointConfig(**kw))


# a person found (flag 0.95) and one half hidden behind them (flag 0.45): her face 80 px to the
# side of his, her body crop overlapping his (IoU > 0.5)
FRONT = _Person(300, 100, 40, 0.95)
HIDDEN = _Person(220, 110, 40, 0.45)


def test_the_scene_is_the_overlap_case():
    a = rect_bounds(body_mod.roi_from_detection(FRONT.detection()))
    b = rect_bounds(body_mod.roi_from_detection(HIDDEN.detection()))
    assert box_iou(b, a[None])[0] > KeypointConfig().track_overlap_iou


def test_hidden_person_with_a_different_face_is_published_box_only():
    stage = _stage([FRONT, HIDDEN])
    persons, tracks = [], []
    det = HIDDEN.detection(score=0.56)
    out = stage.add_detections(None, [FRONT.detection(), det], persons, tracks, W, H)
    assert len(persons) == 1 and persons[0].found_by == FOUND_BY_LANDMARKS
    assert out is not None and len(out) == 1
    p, d = out[0]
    assert d is det and p.found_by == FOUND_BY_BOX and p.box_only
    assert p.score == pytest.approx(0.56) and p.detector_score == pytest.approx(0.56)
    assert np.isnan(p.body.xy).all() and not p.body.score.any()   # keypoints marked invalid
    x0, y0, x1, y1 = p.box                      # her whole body, from the low-flag landmarks
    assert x0 <= HIDDEN.xy[:, 0].min() and x1 >= HIDDEN.xy[:, 0].max()
    assert y0 <= HIDDEN.xy[0, 1] and y1 >= HIDDEN.xy[27, 1]
    # not counted again once someone found later in the frame has a head on her face
    assert stage.unclaimed_faces(out, persons) == [p]


def test_hidden_person_found_when_her_landmarks_are_confident():
    stage = _stage([FRONT, _Person(220, 110, 40, 0.8)])
    persons, tracks = [], []
    out = stage.add_detections(None, [FRONT.detection(), HIDDEN.detection()], persons, tracks,
                               W, H)
    assert len(persons) == 2 and not out


def test_a_second_detection_of_the_same_face_adds_nobody():
    """The overlap rule still drops a second crop of one person: its face lies in the head
    region of the person found."""
    stage = _stage([FRONT, HIDDEN])
    persons, tracks = [], []
    same = HIDDEN.detection(face=FRONT.xy[0] + (5, 3))      # his face, a crop near hers
    out = stage.add_detections(None, [FRONT.detection(), same], persons, tracks, W, H)
    assert len(persons) == 1 and out == []


def test_no_box_only_where_the_landmarks_put_the_head_elsewhere():
    """The unsure landmarks must agree that someone's head is on the detection's face."""
    stage = _stage([FRONT, HIDDEN])
    persons, tracks = [], []
    elsewhere = HIDDEN.detection(face=HIDDEN.xy[0] + (0, 120))     # a "face" on her chest
    out = stage.add_detections(None, [FRONT.detection(), elsewhere], persons, tracks, W, H)
    assert len(persons) == 1 and out == []


def test_no_box_only_where_the_landmarks_show_someone_found():
    """A low-flag crop that only shows the person found (same_person) is that person."""
    ghost = _Person(300.5, 100.5, 40, 0.3)                  # his landmarks again, unsure
    stage = _stage([FRONT, ghost])
    persons, tracks = [], []
    far = ghost.detection(face=(150, 90))
    out = stage.add_detections(None, [FRONT.detection(), far], persons, tracks, W, H)
    assert len(persons) == 1 and out == []


def test_lone_unsure_detection_is_box_only_and_switch_off():
    lone = _Person(320, 120, 40, 0.3)
    out = _stage([lone]).add_detections(None, [lone.detection()], [], [], W, H)
    assert len(out) == 1 and out[0][0].box_only
    out = _stage([lone], face_box_only=False).add_detections(None, [lone.detection()], [], [],
                                                             W, H)
    assert out == []


def test_whole_body_box_agreeing_with_a_face_box_only_person_is_that_person():
    """from_boxes: the box-only person found through a face comes first; a whole-body box that
    agrees with it adds nobody."""
    stage = _stage([FRONT, HIDDEN])
    persons, tracks = [], []
    out = stage.add_detections(None, [FRONT.detection(), HIDDEN.detection()], persons, tracks,
                               W, H)
    face_person = out[0][0]
    ssd = Detection(face_person.box + 3, 0.9, np.zeros((0, 2), np.float32))
    box_only, ages, _ = stage.from_boxes(None, [ssd], [], False, [], 0, persons, tracks, W, H,
                                         out)
    assert box_only == [face_person] and ages == [0]


def test_dancer_behind_her_partner_is_not_dropped(shared_data):
    """PoseTrack18 009473 frame 0: a dancer half hidden behind her partner (one whole-body box
    for the couple). BlazePose's detector finds her face, her crop overlaps her partner's and
    its pose flag is under 0.5: she is published box-only, and both dancers are matched."""
    require_models()
    from pose_perception.apps.eval_body_face import load_coco, read_rgb
    from pose_perception.apps.eval_detect import match_boxes, person_boxes
    from pose_perception.core.keypoint_pipeline import KeypointPipeline
    root = shared_data / "people_dev" / "posetrack18"
    data = load_coco(root / "test_posetrack18_val.json")
    im = next(i for i in data["images"] if "009473" in i["file_name"])
    gt = person_boxes(data)[im["id"]]
    pipe = KeypointPipeline(KeypointConfig())
    try:
        res = pipe.process(read_rgb(root / im["file_name"]))
    finally:
        pipe.close()
    pred = np.array([p.box for p in res.persons]).reshape(-1, 4)
    m = match_boxes(gt, pred)
    print("matched", {k: pred[v].round().tolist() for k, v in m.items()})
    assert len(m) == len(gt) == 2
    assert any(res.persons[v].box_only for v in m.values())


# ---------------------------------------------------------------- from one frame to the next
class _FakeSSD:
    """BlazePose's detector: the scripted face detections, whatever the regions."""

    def __init__(self, dets):
        self.dets = dets

    def detect(self, sampler, rois=None, min_score=None, **kw):
        return list(self.dets())


class _FakeBoxes:
    """The whole-body detector: scripted boxes, no tiles (a camera-sized image)."""

    def __init__(self, boxes):
        self.boxes = boxes

    def tiles(self, w, h):
        return []

    def detect(self, sampler, regions=None):
        return [Detection(np.array(b, np.float32), 0.9, np.zeros((0, 2), np.float32))
                for b in self.boxes]


def _fake_pipeline(people, dets, boxes, **kw):
    """A KeypointPipeline on the fake models (no ONNX model loaded): BlazePose's detector
    returns ``dets()``, the whole-body detector ``boxes``, the landmark model ``people``."""
    from types import SimpleNamespace

    from pose_perception.core.keypoint_pipeline import KeypointPipeline
    pipe = KeypointPipeline.__new__(KeypointPipeline)
    pipe.config = KeypointConfig(enable_face=False, enable_hands=False, parallel=False,
                                 detector_period_s=0, **kw)
    pipe._bodies = BodyStage(_FakeLandmarker(people), pipe.config)
    pipe._pose_det = SimpleNamespace(ssd=_FakeSSD(dets))
    pipe._person_det = _FakeBoxes(boxes)
    pipe._faces = pipe._face_det = pipe._hand_lm = pipe._gestures = pipe._pool = None
    pipe.reset()
    return pipe


def test_face_found_person_is_held_from_frame_to_frame():
    """The dancer's case in video: she is found through her face on the first detector frame
    (her crop overlaps her partner's, its pose flag is low) and the whole-body detector boxes
    the couple as one. Her partner's box overlaps hers, a third person fills ``max_persons``
    by the next detector frame (her crop cannot run again), yet she is published on every
    frame: held between detector frames, continued where BlazePose finds her face again, and
    dropped once someone's head lies on her face."""
    front = _Person(300, 100, 40, 0.95)
    hidden = _Person(220, 110, 40, 0.45)
    other = _Person(520, 100, 40, 0.95)
    people = [front, hidden, other]
    x0, y0 = hidden.xy[:, 0].min() - 10, front.xy[34, 1] - 10
    couple = (x0, y0, front.xy[:, 0].max() + 10, front.xy[31, 1] + 10)
    lone = (other.xy[:, 0].min() - 10, y0, other.xy[:, 0].max() + 10, other.xy[31, 1] + 10)
    face = hidden.detection(score=0.56)
    pipe = _fake_pipeline(people, lambda: [front.detection(), face], [couple, lone],
                          max_persons=2, detector_interval=10)
    rgb = np.zeros((H, W, 3), np.uint8)
    boxes = []
    for frame in range(25):
        if frame == 15:                 # her partner steps in front of her: his head on her face
            front.xy = _skeleton(*hidden.xy[0], 40)
            people.remove(hidden)
        res = pipe.process(rgb)
        found = [p for p in res.persons if not p.box_only]
        assert len(found) == 2, frame
        box_only = [p for p in res.persons if p.box_only]
        if frame < 15:
            assert len(box_only) == 1, frame          # she, on every frame
            boxes.append(box_only[0].box)
            assert box_only[0].box[0] < front.xy[0, 0] - 40      # her box, not the couple's
        else:
            assert box_only == [], frame              # she is that person now
    assert np.allclose(boxes, boxes[0])               # she stood still, and so does her box


def test_face_found_person_moves_with_her_face_and_ages_out():
    """Where BlazePose finds her face again, moved, her box moves with it (no landmark run);
    where it does not find it on a detector frame whose tile holds her face, she is dropped."""
    front = _Person(300, 100, 40, 0.95)
    hidden = _Person(220, 110, 40, 0.45)
    faces = [hidden.detection(score=0.56)]
    pipe = _fake_pipeline([front, hidden], lambda: [front.detection()] + faces, [],
                          max_persons=1, detector_interval=3)
    rgb = np.zeros((H, W, 3), np.uint8)
    # max_persons 1: her crop runs on the first frame only if there is room; here the first
    # frame's candidates fill it, so find her the way add_detections does when there is room
    pipe.config.max_persons = 2
    res = pipe.process(rgb)
    first = [p.box for p in res.persons if p.box_only]
    assert len(first) == 1
    pipe.config.max_persons = 1
    calls = pipe._bodies.landmarker.calls
    for _ in range(2):
        assert len([p for p in pipe.process(rgb).persons if p.box_only]) == 1
    faces[0] = hidden.detection(score=0.6, face=hidden.xy[0] + (6, 4))      # she moved a bit
    res = pipe.process(rgb)                                                  # detector frame
    moved = [p for p in res.persons if p.box_only]
    assert len(moved) == 1 and np.allclose(moved[0].box, first[0] + (6, 4, 6, 4))
    assert moved[0].score == pytest.approx(0.6)
    assert pipe._bodies.landmarker.calls - calls == 3       # the tracked crop's runs alone
    faces.clear()                                            # the detector loses her face
    for _ in range(2):
        assert len([p for p in pipe.process(rgb).persons if p.box_only]) == 1
    res = pipe.process(rgb)                                  # detector frame without her face
    assert not [p for p in res.persons if p.box_only]


def test_dancer_behind_her_partner_is_kept_from_frame_to_frame(shared_data):
    """The same photo as a still video, 32 frames (detector frames 0, 10, 20, 30; the periodic
    scans look at one tile in turn, and only one of the two finds her face): both dancers are
    matched on every frame, she box-only."""
    require_models()
    from pose_perception.apps.eval_body_face import load_coco, read_rgb
    from pose_perception.apps.eval_detect import match_boxes, person_boxes
    from pose_perception.core.keypoint_pipeline import KeypointPipeline
    root = shared_data / "people_dev" / "posetrack18"
    data = load_coco(root / "test_posetrack18_val.json")
    im = next(i for i in data["images"] if "009473" in i["file_name"])
    gt = person_boxes(data)[im["id"]]
    rgb = read_rgb(root / im["file_name"])
    pipe = KeypointPipeline(KeypointConfig())
    try:
        for frame in range(32):
            res = pipe.process(rgb)
            pred = np.array([p.box for p in res.persons]).reshape(-1, 4)
            m = match_boxes(gt, pred)
            assert len(m) == 2, frame
            assert any(res.persons[v].box_only for v in m.values()), frame
    finally:
        pipe.close()
