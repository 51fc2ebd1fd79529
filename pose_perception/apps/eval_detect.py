"""``pose-perception eval detect``: does the package find every person? Person recall of the
published person boxes against COCO-style person boxes (any keypoint layout, or none).

A ground-truth person is found when a published person box (landmark people and box-only people
alike) has IoU >= 0.5 with their box, one-to-one, greedily by IoU. Reported: recall, recall by
ground-truth box height (< 100, 100-200, >= 200 px), unmatched published boxes per image, people
found / ground truth. Each image is a fresh start (no tracking from an earlier image). Several
``--images``/``--annotations`` pairs are evaluated together.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..core.precision import PRECISIONS
from ..core.geometry import box_iou_matrix
from .eval_body_face import greedy_match, load_coco, read_rgb

MIN_IOU = 0.5
HEIGHT_BINS = (("<100", 0.0, 100.0), ("100-200", 100.0, 200.0), (">=200", 200.0, np.inf))


def person_boxes(data: dict) -> Dict[int, np.ndarray]:
    """Image id -> (N, 4) ``x0, y0, x1, y1`` ground-truth person boxes (crowd regions and
    annotations marked ``ignore`` left out; categories other than 'person' too, when the file
    names its categories)."""
    person_ids = {c["id"] for c in data.get("categories", []) if c.get("name") == "person"}
    out: Dict[int, List[List[float]]] = {im["id"]: [] for im in data["images"]}
    for a in data["annotations"]:
        if a.get("iscrowd") or a.get("ignore") or "bbox" not in a:
            continue
        if person_ids and a.get("category_id") not in person_ids:
            continue
        x, y, w, h = (float(v) for v in a["bbox"][:4])
        if w > 0 and h > 0:
            out.setdefault(a["image_id"], []).append([x, y, x + w, y + h])
    return {k: np.asarray(v, np.float64).reshape(-1, 4) for k, v in out.items()}


def match_boxes(gt: np.ndarray, pred: np.ndarray, min_iou: float = MIN_IOU) -> Dict[int, int]:
    """GT index -> prediction index: one-to-one, greedily by IoU, IoU >= ``min_iou``."""
    if not len(gt) or not len(pred):
        return {}
    return greedy_match(box_iou_matrix(gt, pred), min_iou)


def eval_detect(pairs: Sequence[tuple], perception) -> dict:
    """Recall of ``perception`` (a core ``Perception``) on (images folder, annotation file)
    pairs; see the module docstring."""
    found_by_bin = {name: [0, 0] for name, _, _ in HEIGHT_BINS}
    found = total = unmatched = images = 0
    per_image = []
    for images_dir, annotation_file in pairs:
        data = load_coco(annotation_file)
        gts = person_boxes(data)
        for im in data["images"]:
            perception.reset()
            res = perception.process(read_rgb(Path(images_dir) / im["file_name"]), 0.0)
            pred = np.asarray([p.box for p in res.persons], np.float64).reshape(-1, 4)
            gt = gts.get(im["id"], np.zeros((0, 4)))
            m = match_boxes(gt, pred)
            heights = gt[:, 3] - gt[:, 1]
            for g, hgt in enumerate(heights):
                for name, lo, hi in HEIGHT_BINS:
                    if lo <= hgt < hi:
                        found_by_bin[name][1] += 1
                        found_by_bin[name][0] += int(g in m)
            found += len(m)
            total += len(gt)
            unmatched += len(pred) - len(m)
            images += 1
            per_image.append({"file": im["file_name"], "persons_gt": len(gt),
                              "persons_found": len(m), "published": len(pred),
                              "box_only": sum(1 for p in res.persons if p.box_only),
                              "unmatched": len(pred) - len(m)})
    return {
        "recall": found / total if total else None,
        "recall_by_height": {name: (f / n if n else None)
                             for name, (f, n) in found_by_bin.items()},
        "persons_by_height": {name: n for name, (_, n) in found_by_bin.items()},
        "false_positives_per_image": unmatched / images if images else None,
        "persons_found": found,
        "persons_gt": total,
        "images": images,
        "per_image": per_image,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pose-perception eval detect",
                                description="person recall of the published person boxes on "
                                            "COCO-style person boxes")
    p.add_argument("--images", action="append", required=True,
                   help="folder with the images (repeat, paired with --annotations)")
    p.add_argument("--annotations", action="append", required=True,
                   help="COCO-style annotation file with person bboxes (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object (last line)")
    p.add_argument("--providers", default="tensorrt,cuda,cpu",
                   help="onnxruntime providers, best first (default: tensorrt,cuda,cpu)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads per model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--max-persons", type=int, default=None,
                   help="people with landmarks per frame (default: the node's default)")
    p.add_argument("--no-person-detector", action="store_true",
                   help="BlazePose's face-anchored detector only (the package before the "
                        "whole-body detector)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if len(args.images) != len(args.annotations):
        print("eval detect: give as many --images as --annotations")
        return 2
    from ..core.keypoint_pipeline import KeypointConfig
    from ..core.perception import Perception, PerceptionConfig
    kw = {"providers": tuple(s for s in args.providers.split(",") if s),
          "threads": args.threads, "precision": args.precision,
          "person_detector": not args.no_person_detector}
    if args.max_persons is not None:
        kw["max_persons"] = args.max_persons
    per = Perception(PerceptionConfig(keypoints=KeypointConfig(**kw)))
    try:
        res = eval_detect(list(zip(args.images, args.annotations)), per)
    finally:
        per.close()
    if args.json:
        print(json.dumps(res))
        return 0
    print("person detection: published person boxes vs ground truth (IoU >= 0.5, one-to-one)")
    for row in res["per_image"]:
        print(f"  {row['file']:<48} found {row['persons_found']}/{row['persons_gt']}  "
              f"published {row['published']} (box-only {row['box_only']}), "
              f"unmatched {row['unmatched']}")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"  recall                    {fmt(res['recall'])} "
          f"({res['persons_found']}/{res['persons_gt']})")
    for name, v in res["recall_by_height"].items():
        print(f"  recall, height {name:<8}  {fmt(v)} (of {res['persons_by_height'][name]})")
    print(f"  unmatched per image       {fmt(res['false_positives_per_image'])}")
    return 0
