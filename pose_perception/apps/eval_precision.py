"""Does a lower precision keep the keypoints' accuracy? (``pose-perception eval precision``)

Every image is run through the pipeline twice, in fp32 and in the precision under test (by default
``fp16-emulated``, which rounds every weight and tensor to fp16 and so checks fp16 on any CPU),
each time from a fresh start (detector, landmarks, faces, hands). The keypoints of the people,
faces and hands both runs find are compared:

- body: point distance / body size (square root of the keypoint box area), points with an fp32
  score >= 0.5;
- face: mesh point distance / the outer-eye-corner distance;
- hand: point distance / hand size;
- scores: largest difference of a presence or keypoint score;
- counts: people, faces or hands found by one run only.

The yardstick is the fp32 pipeline's own sensitivity to a one-pixel shift of the image (the
smallest change a real camera makes), the median over the four one-pixel shifts: a precision
keeps accuracy when the 95th percentile of each deviation, the largest score change and the
number of people, faces and hands gained or lost stay within the yardstick's. With
``per_model`` each model is also checked alone (the others in fp32). ROS-free.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..core.crops import points_box
from ..core.geometry import box_iou_matrix
from ..core.types import FrameResult
from .eval_body_face import greedy_match

KINDS = ("body", "face", "hand")
MIN_BODY_SCORE = 0.5
EYE_CORNERS = (33, 263)          # face468 outer eye corners
MATCH_IOU = 0.3


@dataclass
class Deviations:
    """Deviations between two runs over many images (normalised distances per kind)."""

    points: Dict[str, List[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    score: List[float] = field(default_factory=list)
    count_changes: int = 0

    def add(self, other: "Deviations") -> None:
        for k in KINDS:
            self.points[k].extend(other.points[k])
        self.score.extend(other.score)
        self.count_changes += other.count_changes

    def summary(self) -> dict:
        out: dict = {}
        for k in KINDS:
            v = np.asarray(self.points[k], np.float64)
            out[k] = ({"n": int(v.size), "p50": float(np.percentile(v, 50)),
                       "p95": float(np.percentile(v, 95)), "max": float(v.max())}
                      if v.size else {"n": 0})
        out["score_max"] = float(max(self.score)) if self.score else 0.0
        out["count_changes"] = int(self.count_changes)
        return out


def _pairs(ref_boxes: Sequence[np.ndarray], test_boxes: Sequence[np.ndarray]
           ) -> Tuple[List[Tuple[int, int]], int]:
    """Greedy IoU matching; returns (pairs, number of unmatched items on either side)."""
    if not len(ref_boxes) or not len(test_boxes):
        return [], len(ref_boxes) + len(test_boxes)
    match = greedy_match(box_iou_matrix(np.stack(ref_boxes), np.stack(test_boxes)), MATCH_IOU)
    return list(match.items()), len(ref_boxes) + len(test_boxes) - 2 * len(match)


def _size(xy: np.ndarray) -> float:
    b = points_box(xy)
    return float(np.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 1.0)))


def compare(ref: FrameResult, test: FrameResult, shift: Tuple[float, float] = (0.0, 0.0)
            ) -> Deviations:
    """Deviations of ``test`` from ``ref``; ``shift``: (dx, dy) the test image was shifted by
    (subtracted from its points)."""
    d = Deviations()
    off = np.asarray(shift, np.float32)
    # people with landmarks (box-only people have no keypoints to compare; the whole-body
    # detector stays fp32 under 'auto': it is not in FP16_KEEPS_ACCURACY)
    ref_people = [p for p in ref.persons if not p.box_only]
    test_people = [p for p in test.persons if not p.box_only]
    pairs, unmatched = _pairs([p.box for p in ref_people], [p.box - np.tile(off, 2)
                                                            for p in test_people])
    d.count_changes += unmatched
    for i, j in pairs:
        r, t = ref_people[i], test_people[j]
        seen = r.body.score >= MIN_BODY_SCORE
        err = np.linalg.norm(r.body.xy - (t.body.xy - off), axis=1) / _size(r.body.xy)
        d.points["body"].extend(err[seen].tolist())
        d.score.append(abs(r.score - t.score))
        d.score.append(float(np.abs(r.body.score - t.body.score).max()))
        hp, hu = _pairs([points_box(h.keypoints.xy) for h in r.hands],
                        [points_box(h.keypoints.xy - off) for h in t.hands])
        d.count_changes += hu
        for a, b in hp:
            hr, ht = r.hands[a], t.hands[b]
            e = np.linalg.norm(hr.keypoints.xy - (ht.keypoints.xy - off), axis=1)
            d.points["hand"].extend((e / _size(hr.keypoints.xy)).tolist())
            d.score.append(abs(hr.score - ht.score))
    fp, fu = _pairs([f.box for f in ref.faces], [f.box - np.tile(off, 2) for f in test.faces])
    d.count_changes += fu
    for i, j in fp:
        fr, ft = ref.faces[i], test.faces[j]
        iod = float(np.linalg.norm(fr.mesh.xy[EYE_CORNERS[0]] - fr.mesh.xy[EYE_CORNERS[1]]))
        e = np.linalg.norm(fr.mesh.xy - (ft.mesh.xy - off), axis=1) / max(iod, 1.0)
        d.points["face"].extend(e.tolist())
        d.score.append(abs(fr.score - ft.score))
    return d


def shifted(rgb: np.ndarray, dx: int = 1, dy: int = 1) -> np.ndarray:
    """The image moved by (dx, dy) whole pixels (edge pixels repeated)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(rgb, m, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REPLICATE)


SHIFTS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def median_summary(summaries: Sequence[dict]) -> dict:
    """The per-field median of several ``Deviations.summary()`` results."""
    out: dict = {}
    for k in KINDS:
        have = [s[k] for s in summaries if s[k]["n"]]
        out[k] = ({f: float(np.median([h[f] for h in have])) for f in ("p50", "p95", "max")}
                  if have else {"n": 0})
        if have:
            out[k]["n"] = int(np.median([h["n"] for h in have]))
    out["score_max"] = float(np.median([s["score_max"] for s in summaries]))
    out["count_changes"] = float(np.median([s["count_changes"] for s in summaries]))
    return out


def keeps_accuracy(test: dict, yardstick: dict) -> bool:
    """Every kind's p95 deviation, the largest score change and the people/faces/hands gained
    or lost within the yardstick's."""
    if test["count_changes"] > yardstick["count_changes"]:
        return False
    for k in KINDS:
        if test[k]["n"] and yardstick[k]["n"] and test[k]["p95"] > yardstick[k]["p95"]:
            return False
    return test["score_max"] <= yardstick["score_max"]


# ---------------------------------------------------------------------------- images
def read_images(paths: Iterable[Path], limit: Optional[int] = None
                ) -> List[Tuple[str, np.ndarray]]:
    """(name, RGB uint8) of the 8-bit colour images among ``paths`` (folders searched
    recursively for .png/.jpg/.jpeg; depth and grey images skipped)."""
    files: List[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*")
                            if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such image or folder: {p}")
    out = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is None or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            continue
        out.append((str(f), cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
        if limit and len(out) >= limit:
            break
    return out


# ---------------------------------------------------------------------------- the check
def _run(pipeline, images: Sequence[Tuple[str, np.ndarray]], shift: Tuple[int, int] = (0, 0)
         ) -> List[FrameResult]:
    out = []
    for _, rgb in images:
        pipeline.reset()
        out.append(pipeline.process(shifted(rgb, *shift) if any(shift) else rgb))
    return out


def _against(ref: List[FrameResult], test: List[FrameResult],
             shift: Tuple[int, int] = (0, 0)) -> dict:
    total = Deviations()
    for r, t in zip(ref, test):
        total.add(compare(r, t, shift))
    return total.summary()


def check_precision(images: Sequence[Tuple[str, np.ndarray]], precision: str = "fp16-emulated",
                    config=None, per_model: bool = True) -> dict:
    """The comparison described in the module docstring. ``config``: a KeypointConfig for
    both runs (default: faces and hands on, CPU; the whole-body person detector off: it is not
    checked here and stays fp32 under 'auto', see ``precision.FP16_KEEPS_ACCURACY``)."""
    from ..core.keypoint_pipeline import KeypointConfig, KeypointPipeline

    base = config or KeypointConfig(enable_face=True, enable_hands=True, providers=("cpu",),
                                    person_detector=False)
    fp32 = KeypointPipeline(replace(base, precision="fp32", precision_models=()))
    ref = _run(fp32, images)
    yardstick = median_summary([_against(ref, _run(fp32, images, sh), sh) for sh in SHIFTS])
    models = [m.name for m in fp32.models]
    result = {"precision": precision, "images": len(images), "provider": fp32.provider,
              "yardstick_1px_shift": yardstick, "models": {}}
    test = KeypointPipeline(replace(base, precision=precision, precision_models=()))
    lower = "fp16-emulated" if precision == "fp16-emulated" else "fp16"
    if lower not in test.precision:
        raise RuntimeError(f"{precision} is not in use here (provider {test.provider}, precision "
                           f"{test.precision}): nothing to compare. fp16 needs a GPU provider; "
                           f"on a CPU check fp16-emulated")
    result["precision_in_use"] = test.precision
    result["all_models"] = _against(ref, _run(test, images))
    result["all_models"]["keeps_accuracy"] = keeps_accuracy(result["all_models"], yardstick)
    for name in (models if per_model else []):
        one = KeypointPipeline(replace(base, precision=precision, precision_models=(name,)))
        s = _against(ref, _run(one, images))
        s["keeps_accuracy"] = keeps_accuracy(s, yardstick)
        result["models"][name] = s
    return result


def _fmt(s: dict) -> str:
    parts = []
    for k in KINDS:
        if s[k]["n"]:
            parts.append(f"{k} p95 {s[k]['p95']:.4f} max {s[k]['max']:.4f}")
    parts.append(f"score max {s['score_max']:.4f}")
    parts.append(f"count changes {s['count_changes']:g}")
    return "; ".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``pose-perception eval precision [--images PATH ...] [--precision P] [--json]``."""
    p = argparse.ArgumentParser(
        prog="pose-perception eval precision",
        description="compare the keypoints of a lower precision with fp32 on real images "
                    "(deviations normalised by body size, eye distance, hand size)")
    p.add_argument("--images", nargs="*", default=[],
                   help="images or folders (searched recursively; depth images skipped). "
                        "Default: the built-in sample photo")
    p.add_argument("--precision", default="fp16-emulated",
                   help="precision under test: fp16-emulated (any CPU) or fp16 (a GPU "
                        "provider; give --providers)")
    p.add_argument("--providers", default="cpu", help="onnxruntime providers, best first")
    p.add_argument("--limit", type=int, default=None, help="at most this many images")
    p.add_argument("--no-per-model", action="store_true",
                   help="only all models together (faster)")
    p.add_argument("--json", action="store_true", help="print one JSON object (last line)")
    args = p.parse_args(argv)

    from ..core.keypoint_pipeline import KeypointConfig
    if args.images:
        images = read_images(args.images, args.limit)
    else:
        from ..sources.sample import sample_photos
        images = sample_photos("default")
    if not images:
        print("no colour images found", file=sys.stderr)
        return 2
    cfg = KeypointConfig(enable_face=True, enable_hands=True, person_detector=False,
                         providers=tuple(s for s in args.providers.split(",") if s))
    try:
        res = check_precision(images, args.precision, cfg, per_model=not args.no_per_model)
    except RuntimeError as exc:
        print(f"pose-perception eval precision: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(res))
        return 0
    print(f"{res['precision']} ({res['precision_in_use']}) against fp32 on {res['images']} "
          f"images, provider {res['provider']}; deviations as fractions of body size, eye "
          f"distance, hand size")
    print(f"  yardstick: fp32, image shifted 1 px (median of 4 shifts): "
          f"{_fmt(res['yardstick_1px_shift'])}")
    s = res["all_models"]
    print(f"  all models {res['precision']}: {_fmt(s)} -> "
          f"{'keeps' if s['keeps_accuracy'] else 'LOSES'} accuracy")
    for name, s in res["models"].items():
        print(f"  only {name}: {_fmt(s)} -> {'keeps' if s['keeps_accuracy'] else 'LOSES'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
