"""``pose-perception bench --mediapipe``: our pipeline and MediaPipe 0.10.14 itself on the same
frames (issue 3: body + face at least as fast as MediaPipe pose + head-crop face mesh).

Checks the JSON's promised keys and that both sides found the built-in sample's person and face;
skips when the MediaPipe oracle environment cannot be created. The speed itself is not asserted
here (a shared CI machine's timings are noise); ``bench --mediapipe`` reports it.
"""
import json
from types import SimpleNamespace

import pytest

from model_env import require_models
from pose_perception import provision
from pose_perception.apps import bench

MEASURED = ("fps", "latency_ms", "people_per_frame", "faces_per_frame", "cpu_ms_per_frame",
            "cpu_utilisation")


@pytest.fixture(scope="module")
def oracle_and_models():
    require_models()
    try:
        provision.ensure_oracle_env()
    except (provision.ProvisionError, OSError) as e:
        pytest.skip(f"MediaPipe oracle environment unavailable: {e}")


@pytest.mark.models
def test_bench_mediapipe_compares_on_the_same_frames(oracle_and_models, capsys):
    assert bench.main(["--mediapipe", "--frames", "10", "--warmup", "3", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    r = json.loads(out[-1])
    table = "\n".join(out[:-1])
    assert "vs MediaPipe" in table and "speed ratio" in table

    mp, ours, body_face = r["mediapipe"], r, r["body_face"]
    for m in (mp, ours, body_face):
        for key in MEASURED:
            assert key in m, key
        lat = m["latency_ms"]
        assert m["fps"] > 0 and 0 < lat["p50"] <= lat["p95"] <= lat["max"]
        assert m["cpu_ms_per_frame"] > 0
        # the built-in sample shows one person, face visible, in every frame: both find them
        assert m["people_per_frame"] >= 0.9 and m["faces_per_frame"] >= 0.9, m
    assert mp["mediapipe"] == provision.MEDIAPIPE_VERSION
    assert mp["frames"] == r["frames"] == 10 and mp["warmup_frames"] == r["warmup_frames"] == 3
    assert mp["stack_frames"] >= 1 and mp["image_size"] == [640, 480]
    assert mp["threads"]["cores_usable"] >= 1
    # lifting ran in the main run, not in the body + face one
    assert r["lift_and_track"] and r["stages_mean"]["lift"] > 0
    assert body_face["stages_mean"]["lift"] == 0
    assert r["speed_ratio"] == pytest.approx(body_face["fps"] / mp["fps"], rel=0.01)
    assert r["speed_ratio_per_person"] == pytest.approx(
        r["speed_ratio"] * body_face["people_per_frame"] / mp["people_per_frame"], rel=0.01)


def test_bench_mediapipe_reports_an_unavailable_oracle(monkeypatch, capsys):
    """No oracle environment: our numbers still printed, a clear message, its own exit code."""
    def unavailable():
        raise provision.ProvisionError("installing the MediaPipe oracle environment failed")

    monkeypatch.setattr(provision, "ensure_oracle_env", unavailable)
    monkeypatch.setattr(bench, "measure", lambda *a, **k: _fake_measure())
    monkeypatch.setattr(bench, "make_perception", lambda *a, **k: _FakePerception())
    rc = bench.main(["--mediapipe", "--frames", "2", "--warmup", "1", "--no-lift", "--json"])
    assert rc == bench.EXIT_NO_MEDIAPIPE
    cap = capsys.readouterr()
    r = json.loads(cap.out.strip().splitlines()[-1])
    assert r["mediapipe"] is None and r["speed_ratio"] is None
    assert r["speed_ratio_per_person"] is None
    assert r["model_threads"] == {"pose_landmark_full": 2}
    assert "oracle environment is unavailable" in cap.err
    assert "MediaPipe: not measured" in cap.out


def test_bench_mediapipe_rejects_hands():
    with pytest.raises(SystemExit):
        bench.main(["--mediapipe", "--hands"])


class _FakePerception:
    provider = "CPUExecutionProvider"
    precision = "fp32"
    keypoints = SimpleNamespace(models=[SimpleNamespace(name="pose_landmark_full", threads=2)])

    def close(self):
        pass


def _fake_measure():
    lat = {"p50": 1.0, "p95": 2.0, "mean": 1.5, "max": 2.0}
    zeros = {s: 0.0 for s in bench.STAGES + bench.SPLIT}
    return {"fps": 100.0, "latency_ms": lat, "stages": zeros, "stages_p95": zeros,
            "stages_mean": zeros, "people_per_frame": 1.0, "faces_per_frame": 1.0,
            "cpu_ms_per_frame": 10.0, "cpu_utilisation": 1.0, "non_inference_share": 0.0,
            "overlap": True}
