"""Accuracy of the keypoint stage on annotated images (COCO-format files), full images, no GT boxes.

``eval body``: COCO person keypoints. Every image is processed whole (multi-person, no ground
truth boxes used). Predictions (BlazePose-33 mapped to COCO-17) are matched one-to-one to the
ground-truth persons with keypoints, greedily by OKS. Reported (fractions in 0-1):

- ``pck_all_gt``: share of labelled GT keypoints within 0.2 x max(w, h) of the GT box, over all
  GT persons (an unmatched person's keypoints all count as misses);
- ``pck_matched``: the same over matched persons only;
- ``mean_oks``: mean OKS (COCO sigmas) over all GT persons (0 for unmatched ones);
- ``ap``: COCO keypoint AP (pycocotools), when pycocotools is installed;
- ``persons_found`` / ``persons_gt``: GT persons matched with OKS >= ``min_oks`` / GT persons.

``eval face``: 68-point iBUG annotations (COCO style). The face mesh's iBUG-68 view is compared
with each GT face (the predicted face whose points are nearest); NME is normalised by the
distance of GT points 36 and 45 (outer eye corners), averaged over found faces: ``nme68`` over all
68 points, ``nme51`` over the inner 51 (17-67; the mesh has no face-outline points).
``faces_found`` / ``faces_gt``: GT faces with a predicted face whose mean error is below half the
inter-ocular distance. ROS-free.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.layouts import COCO17_SIGMAS
from ..core.precision import PRECISIONS

PCK_ALPHA = 0.2


# ---------------------------------------------------------------------------- helpers
def load_coco(path) -> dict:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    for key in ("images", "annotations"):
        if key not in data:
            raise ValueError(f"{path}: not a COCO annotation file (no '{key}')")
    return data


def read_rgb(path) -> np.ndarray:
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def oks(pred_xy: np.ndarray, gt: np.ndarray, area: float,
        sigmas: np.ndarray = COCO17_SIGMAS) -> float:
    """COCO object keypoint similarity of (17, 2) predictions with (17, 3) GT ``x, y, v``."""
    vis = gt[:, 2] > 0
    if not vis.any():
        return 0.0
    d2 = ((pred_xy - gt[:, :2]) ** 2).sum(1)
    k2 = (2 * sigmas) ** 2
    e = d2 / (2.0 * max(area, 1e-9) * k2 + np.spacing(1))
    return float(np.exp(-e)[vis].mean())


def pck_hits(pred_xy: np.ndarray, gt: np.ndarray, bbox: Sequence[float],
             alpha: float = PCK_ALPHA) -> Tuple[int, int]:
    """(hits, labelled) for one person: labelled GT points within alpha x max(w, h)."""
    vis = gt[:, 2] > 0
    thr = alpha * max(bbox[2], bbox[3])
    d = np.linalg.norm(pred_xy - gt[:, :2], axis=1)
    return int((d[vis] <= thr).sum()), int(vis.sum())


def greedy_match(sim: np.ndarray, min_sim: float) -> Dict[int, int]:
    """GT index -> prediction index, greedily by decreasing similarity (rows = GT)."""
    out: Dict[int, int] = {}
    if sim.size == 0:
        return out
    used = set()
    for flat in np.argsort(-sim, axis=None):
        g, p = np.unravel_index(flat, sim.shape)
        if sim[g, p] < min_sim:
            break
        if g in out or p in used:
            continue
        out[int(g)] = int(p)
        used.add(int(p))
    return out


def _make_pipeline(pipeline, **overrides):
    if pipeline is not None:
        return pipeline
    from ..core.keypoint_pipeline import KeypointConfig, KeypointPipeline
    return KeypointPipeline(KeypointConfig(**overrides))


def _image_files(data: dict, images_dir) -> List[Tuple[int, Path]]:
    root = Path(images_dir)
    return [(im["id"], root / im["file_name"]) for im in data["images"]]


# ---------------------------------------------------------------------------- body
def eval_body(images_dir, annotations, pipeline=None, min_oks: float = 0.1,
              with_ap: bool = True) -> dict:
    """Body keypoint accuracy (see module docstring). ``pipeline``: a KeypointPipeline (a default
    one with faces off is made when None)."""
    data = load_coco(annotations)
    pl = _make_pipeline(pipeline, enable_face=False, enable_hands=False)
    gts: Dict[int, list] = {}
    for a in data["annotations"]:
        if a.get("iscrowd", 0) or a.get("num_keypoints", 0) <= 0:
            continue
        gts.setdefault(a["image_id"], []).append(a)
    hits = labelled = hits_m = labelled_m = 0
    oks_all: List[float] = []
    found = 0
    results = []
    per_image = []
    for image_id, path in _image_files(data, images_dir):
        pl.reset()
        fr = pl.process(read_rgb(path))
        people = [p for p in fr.persons if not p.box_only]   # box-only people have no joints
        preds = [p.coco17() for p in people]
        for p, person in zip(preds, people):
            kps = np.concatenate([p.xy, np.full((17, 1), 2.0)], 1)
            results.append({"image_id": image_id, "category_id": 1,
                            "keypoints": kps.reshape(-1).round(2).tolist(),
                            "score": float(person.score * p.score.mean())})
        gt_list = gts.get(image_id, [])
        garr = [np.asarray(a["keypoints"], np.float64).reshape(17, 3) for a in gt_list]
        sim = np.array([[oks(p.xy, g, a["area"]) for p in preds]
                        for g, a in zip(garr, gt_list)]).reshape(len(gt_list), len(preds))
        match = greedy_match(sim, min_oks)
        for gi, (g, a) in enumerate(zip(garr, gt_list)):
            n = int((g[:, 2] > 0).sum())
            labelled += n
            if gi in match:
                h, _ = pck_hits(preds[match[gi]].xy, g, a["bbox"])
                hits += h
                hits_m += h
                labelled_m += n
                oks_all.append(float(sim[gi, match[gi]]))
                found += 1
            else:
                oks_all.append(0.0)
        per_image.append({"image_id": image_id, "predicted": len(preds), "gt": len(gt_list),
                          "matched": len(match)})
    out = {
        "pck_all_gt": hits / labelled if labelled else float("nan"),
        "pck_matched": hits_m / labelled_m if labelled_m else float("nan"),
        "mean_oks": float(np.mean(oks_all)) if oks_all else float("nan"),
        "ap": coco_keypoint_ap(data, results) if with_ap else None,
        "persons_found": found,
        "persons_gt": len(oks_all),
        "images": per_image,
    }
    return out


def coco_keypoint_ap(data: dict, results: List[dict]) -> Optional[float]:
    """COCO keypoint AP (OKS 0.50:0.95) with pycocotools; None when it is not installed."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    if not results:
        return 0.0
    gt = dict(data)
    gt.setdefault("info", {})
    gt.setdefault("licenses", [])
    gt.setdefault("categories", [{"id": 1, "name": "person"}])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        dt = coco.loadRes(results)
        ev = COCOeval(coco, dt, "keypoints")
        ev.params.imgIds = sorted({im["id"] for im in data["images"]})
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ap = float(ev.stats[0])
    return ap if ap >= 0 else None


# ---------------------------------------------------------------------------- face
def nme(pred: np.ndarray, gt: np.ndarray, points: Sequence[int] = range(68)) -> float:
    """Mean point error over ``points`` normalised by the GT outer-eye-corner distance (36-45)."""
    norm = float(np.linalg.norm(gt[36, :2] - gt[45, :2]))
    idx = list(points)
    return float(np.linalg.norm(pred[idx] - gt[idx, :2], axis=1).mean() / max(norm, 1e-9))


def eval_face(images_dir, annotations, pipeline=None) -> dict:
    """Face landmark accuracy on 68-point annotations (see module docstring)."""
    data = load_coco(annotations)
    pl = _make_pipeline(pipeline, enable_face=True, enable_hands=False)
    gts: Dict[int, list] = {}
    for a in data["annotations"]:
        if len(a.get("keypoints", ())) == 68 * 3:
            gts.setdefault(a["image_id"], []).append(a)
    e68, e51, found, total = [], [], 0, 0
    per_face = []
    for image_id, path in _image_files(data, images_dir):
        pl.reset()
        fr = pl.process(read_rgb(path))
        preds = [f.ibug68().xy for f in fr.faces]
        for a in gts.get(image_id, []):
            total += 1
            g = np.asarray(a["keypoints"], np.float64).reshape(68, 3)
            if not preds:
                per_face.append({"image_id": image_id, "found": False})
                continue
            errs = [nme(p, g) for p in preds]
            best = int(np.argmin(errs))
            if errs[best] > 0.5:
                per_face.append({"image_id": image_id, "found": False})
                continue
            found += 1
            e68.append(errs[best])
            e51.append(nme(preds[best], g, range(17, 68)))
            per_face.append({"image_id": image_id, "found": True, "nme68": e68[-1],
                             "nme51": e51[-1]})
    return {
        "nme68": float(np.mean(e68)) if e68 else float("nan"),
        "nme51": float(np.mean(e51)) if e51 else float("nan"),
        "faces_found": found,
        "faces_gt": total,
        "faces": per_face,
    }


# ---------------------------------------------------------------------------- CLI
def _parser(what: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"pose-perception eval {what}",
                                description=f"{what} keypoint accuracy on annotated images")
    p.add_argument("--images", required=True, help="folder with the images")
    p.add_argument("--annotations", required=True, help="COCO-format annotation file")
    p.add_argument("--json", action="store_true", help="print one JSON object (last line)")
    p.add_argument("--providers", default="tensorrt,cuda,cpu",
                   help="onnxruntime providers, best first (default: tensorrt,cuda,cpu)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="model precision (fp16: GPU providers only; fp16-emulated: fp16's "
                        "rounding on any CPU)")
    return p


def _config(args, **kw):
    from ..core.keypoint_pipeline import KeypointConfig, KeypointPipeline
    cfg = KeypointConfig(providers=tuple(s for s in args.providers.split(",") if s),
                         threads=args.threads, precision=args.precision, **kw)
    return KeypointPipeline(cfg)


def _print(summary: dict, keys: Sequence[str], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(summary))
        return
    print(title)
    for k in keys:
        v = summary[k]
        txt = "n/a" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
        print(f"  {k:<14} {txt}")


def main_eval_body(argv: Optional[Sequence[str]] = None) -> int:
    """``pose-perception eval body --images DIR --annotations FILE [--json]``."""
    args = _parser("body").parse_args(argv)
    res = eval_body(args.images, args.annotations,
                    _config(args, enable_face=False, enable_hands=False))
    _print(res, ("pck_all_gt", "pck_matched", "mean_oks", "ap", "persons_found", "persons_gt"),
           args.json, "body keypoints (COCO-17 view of BlazePose-33), full images")
    return 0


def main_eval_face(argv: Optional[Sequence[str]] = None) -> int:
    """``pose-perception eval face --images DIR --annotations FILE [--json]``."""
    args = _parser("face").parse_args(argv)
    res = eval_face(args.images, args.annotations,
                    _config(args, enable_face=True, enable_hands=False))
    _print(res, ("nme68", "nme51", "faces_found", "faces_gt"), args.json,
           "face landmarks (iBUG-68 view of the 468-point mesh), full images")
    return 0


if __name__ == "__main__":  # pragma: no cover
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    fn = {"body": main_eval_body, "face": main_eval_face}.get(what)
    if fn is None:
        sys.exit("usage: python -m pose_perception.apps.eval_body_face body|face --images DIR "
                 "--annotations FILE [--json]")
    sys.exit(fn(sys.argv[2:]))
