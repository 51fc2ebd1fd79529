"""Bottom-up OpenPose decoding: part heatmaps + part affinity fields (PAFs) -> people.

Follows the CMU reference (and its PyTorch port): the stride-8 maps are upsampled (cubic), each
part heatmap is smoothed and its local maxima above ``peak_threshold`` become candidates (refined
to sub-pixel by a parabola), every limb's candidate pairs are scored by the line integral of the
limb's PAF (``paf_samples`` samples; > 80 % of them above ``paf_threshold`` and a mean, with a
distance prior, above 0), pairs are matched greedily per limb, and limbs sharing parts are merged
into people. People with fewer than ``min_parts`` parts or a mean score under ``min_mean_score`` are
dropped. Layouts: ``openpose18`` (COCO, 19 heatmaps incl. background + 38 PAF channels) and
``body25`` (26 + 52).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ._onnx import ModelMetadataError, TensorInfo, describe_outputs, outputs_of
from .layouts import OPENPOSE_TABLES
from .preprocess import InputNormaliser
from ..layouts import get_layout
from ..types import Keypoints, Person

CONCAT_ORDERS = ("heatmaps_first", "pafs_first")


@dataclass
class OpenPoseParams:
    stride: int = 8                # network output stride
    upsample: int = 2              # working-grid upsampling of the stride-8 maps (<= stride)
    peak_threshold: float = 0.1    # thre1
    paf_threshold: float = 0.05    # thre2
    paf_samples: int = 10          # mid_num
    min_parts: int = 4
    min_mean_score: float = 0.4
    smoothing_sigma: float = 3.0   # Gaussian smoothing of heatmaps, in input pixels


def find_peaks(heatmaps: np.ndarray, threshold: float, sigma: float
               ) -> List[np.ndarray]:
    """Per part (P, H, W): array (n, 3) of x, y (sub-pixel, grid units) and raw value."""
    peaks = []
    for hm in heatmaps:
        sm = cv2.GaussianBlur(hm, (0, 0), sigma) if sigma > 0.1 else hm
        pad = np.pad(sm, 1, constant_values=-np.inf)
        c = pad[1:-1, 1:-1]
        is_peak = ((c >= pad[:-2, 1:-1]) & (c >= pad[2:, 1:-1]) & (c >= pad[1:-1, :-2])
                   & (c >= pad[1:-1, 2:]) & (c > threshold))
        ys, xs = np.nonzero(is_peak)
        fx, fy = xs.astype(np.float64), ys.astype(np.float64)
        h, w = sm.shape
        inx = (xs > 0) & (xs < w - 1)
        iny = (ys > 0) & (ys < h - 1)
        if np.any(inx):
            l, m, r = (sm[ys[inx], xs[inx] - 1], sm[ys[inx], xs[inx]], sm[ys[inx], xs[inx] + 1])
            den = l - 2 * m + r
            fx[inx] += np.where(den < 0, 0.5 * (l - r) / np.where(den < 0, den, -1), 0.0)
        if np.any(iny):
            u, m, d = (sm[ys[iny] - 1, xs[iny]], sm[ys[iny], xs[iny]], sm[ys[iny] + 1, xs[iny]])
            den = u - 2 * m + d
            fy[iny] += np.where(den < 0, 0.5 * (u - d) / np.where(den < 0, den, -1), 0.0)
        peaks.append(np.column_stack([fx, fy, hm[ys, xs]]))
    return peaks


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    return ((img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy)
            + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy)


def score_limb(cand_a: np.ndarray, cand_b: np.ndarray, paf_x: np.ndarray, paf_y: np.ndarray,
               params: OpenPoseParams, grid_to_px: float, image_height_px: float
               ) -> List[Tuple[int, int, float]]:
    """Candidate connections (i, j, score) between part candidates A and B of one limb."""
    na, nb = len(cand_a), len(cand_b)
    if na == 0 or nb == 0:
        return []
    a, b = cand_a[:, None, :2], cand_b[None, :, :2]
    vec = b - a                                               # (na, nb, 2) grid units
    norm = np.linalg.norm(vec, axis=2)
    unit = vec / np.maximum(norm, 1e-9)[..., None]
    t = np.linspace(0.0, 1.0, params.paf_samples)
    pts = a[:, :, None, :] + vec[:, :, None, :] * t[None, None, :, None]   # (na, nb, S, 2)
    vx = _bilinear(paf_x, pts[..., 0], pts[..., 1])
    vy = _bilinear(paf_y, pts[..., 0], pts[..., 1])
    s = vx * unit[..., 0:1] + vy * unit[..., 1:2]             # (na, nb, S)
    norm_px = np.maximum(norm * grid_to_px, 1e-9)
    prior = np.minimum(0.5 * image_height_px / norm_px - 1.0, 0.0)
    score = s.mean(axis=2) + prior
    ok = ((s > params.paf_threshold).sum(axis=2) > 0.8 * params.paf_samples) & (score > 0) \
        & (norm > 0)
    ii, jj = np.nonzero(ok)
    return [(int(i), int(j), float(score[i, j])) for i, j in zip(ii, jj)]


def assemble(peaks: List[np.ndarray], limbs: Sequence[Tuple[int, int]],
             connections: List[List[Tuple[int, int, float]]], params: OpenPoseParams
             ) -> List[Tuple[np.ndarray, float]]:
    """Greedy matching per limb, then people from limbs sharing parts.

    Returns per person an index array (P,) into each part's candidates (-1 = missing) and the mean
    score (parts' peak values and limbs' PAF scores over the number of parts).
    """
    n_parts = len(peaks)
    people: List[dict] = []        # {'parts': array(P), 'score': float, 'count': int}
    for (pa, pb), cands in zip(limbs, connections):
        used_a, used_b = set(), set()
        chosen = []
        for i, j, s in sorted(cands, key=lambda c: -c[2]):
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            chosen.append((i, j, s))
            if len(chosen) >= min(len(peaks[pa]), len(peaks[pb])):
                break
        for i, j, s in chosen:
            found = [p for p in people if p["parts"][pa] == i or p["parts"][pb] == j]
            if len(found) == 1 or (len(found) == 2 and np.any(
                    (found[0]["parts"] >= 0) & (found[1]["parts"] >= 0))):
                p = found[0]
                if p["parts"][pb] != j:
                    if p["parts"][pb] < 0:
                        p["count"] += 1
                    p["parts"][pb] = j
                    p["score"] += peaks[pb][j, 2] + s
            elif len(found) == 2:                       # two disjoint people: merge
                p, q = found
                take = q["parts"] >= 0
                p["parts"][take] = q["parts"][take]
                p["count"] += q["count"]
                p["score"] += q["score"] + s
                people.remove(q)
            elif not found:
                parts = np.full(n_parts, -1, np.int64)
                parts[pa], parts[pb] = i, j
                people.append({"parts": parts, "count": 2,
                               "score": peaks[pa][i, 2] + peaks[pb][j, 2] + s})
    out = []
    for p in people:
        if p["count"] >= params.min_parts and p["score"] / p["count"] >= params.min_mean_score:
            out.append((p["parts"], p["score"] / p["count"]))
    return out


class OpenPoseDecoder:
    """Heatmaps (C, h, w) and PAFs (2L, h, w) of one image -> people in input pixels."""

    def __init__(self, layout: str, params: Optional[OpenPoseParams] = None):
        if layout not in OPENPOSE_TABLES:
            raise ValueError(f"OpenPose layout must be one of {sorted(OPENPOSE_TABLES)}, "
                             f"not '{layout}'")
        self.layout = layout
        self.n_parts = get_layout(layout).size
        self.limbs, self.paf_index, self.n_paf = OPENPOSE_TABLES[layout]
        self.params = params or OpenPoseParams()
        if not 1 <= self.params.upsample <= self.params.stride:
            raise ValueError(f"upsample must be in [1, stride={self.params.stride}]")

    def decode(self, heatmaps: np.ndarray, pafs: np.ndarray, valid_hw: Tuple[int, int]
               ) -> List[Tuple[np.ndarray, float]]:
        """People as (keypoints (P, 3): x, y in input pixels, peak score; NaN/0 where missing,
        person score). ``valid_hw`` is the unpadded image's height, width in input pixels."""
        prm = self.params
        up = prm.upsample
        step = prm.stride / up                                 # input pixels per grid cell
        hm = _resize(heatmaps[: self.n_parts], up)
        pf = _resize(pafs, up)
        peaks = find_peaks(hm, prm.peak_threshold, prm.smoothing_sigma / step)
        conns = [score_limb(peaks[a], peaks[b], pf[ix], pf[iy], prm, step, valid_hw[0])
                 for (a, b), (ix, iy) in zip(self.limbs, self.paf_index)]
        people = []
        for parts, score in assemble(peaks, self.limbs, conns, prm):
            kp = np.full((self.n_parts, 3), np.nan)
            kp[:, 2] = 0.0
            for p, idx in enumerate(parts):
                if idx >= 0:
                    x, y, s = peaks[p][idx]
                    kp[p] = ((x + 0.5) * step - 0.5, (y + 0.5) * step - 0.5, s)
            people.append((kp, score))
        return people


def _resize(maps: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return np.ascontiguousarray(maps, np.float32)
    c, h, w = maps.shape
    hwc = np.ascontiguousarray(np.asarray(maps, np.float32).transpose(1, 2, 0))
    out = np.empty((h * factor, w * factor, c), np.float32)
    for s in range(0, c, 512):   # cv2.resize handles at most 512 channels
        r = cv2.resize(hwc[..., s:s + 512], (w * factor, h * factor),
                       interpolation=cv2.INTER_CUBIC)
        out[..., s:s + 512] = r.reshape(h * factor, w * factor, -1)
    return out.transpose(2, 0, 1)


def find_map_outputs(outputs: Sequence[TensorInfo], n_parts: int, n_paf: int, model_name: str,
                     concat_order: str = "heatmaps_first") -> Tuple[int, int, Optional[int]]:
    """(heatmap output index, PAF output index, split channel or None for separate outputs).

    Two outputs are matched by channel count (P or P + 1 heatmaps, ``n_paf`` PAF channels); one
    output of P + 1 + n_paf channels is split in ``concat_order``.
    """
    if concat_order not in CONCAT_ORDERS:
        raise ValueError(f"concat_order must be one of {CONCAT_ORDERS}, not '{concat_order}'")
    rank4 = [(i, o) for i, o in enumerate(outputs) if len(o.shape) == 4]
    hm = [i for i, o in rank4 if o.shape[1] in (n_parts, n_parts + 1)]
    pf = [i for i, o in rank4 if o.shape[1] == n_paf]
    if hm and pf:
        return hm[-1], pf[-1], None
    both = [i for i, o in rank4 if o.shape[1] == n_parts + 1 + n_paf]
    if both:
        split = n_parts + 1 if concat_order == "heatmaps_first" else n_paf
        return both[-1], both[-1], split
    raise ModelMetadataError(
        f"{model_name}: expected OpenPose outputs with {n_parts + 1} heatmap and {n_paf} PAF "
        f"channels (NCHW), or one of {n_parts + 1 + n_paf}; outputs: "
        f"{describe_outputs(outputs)} (does the layout match the model: openpose18 = COCO 19/38, "
        "body25 = 26/52?)")


class OpenPoseEstimator:
    """OpenPose ONNX model -> ``list[Person]`` (layout ``openpose18`` or ``body25``).

    The image is scaled to the input height (to fit the input when the model fixes its width too)
    and padded right/bottom to a multiple of the stride with grey 128, as the reference does.
    """

    def __init__(self, session, model_name: str, input_name: str, layout: str,
                 input_size: Tuple[int, int], fixed_size: bool, normaliser: InputNormaliser,
                 params: Optional[OpenPoseParams] = None, concat_order: str = "heatmaps_first"):
        self.session, self.input_name = session, input_name
        self.decoder = OpenPoseDecoder(layout, params)
        self.layout = layout
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.fixed_size, self.normaliser = bool(fixed_size), normaliser
        self.ihm, self.ipaf, self.split = find_map_outputs(
            outputs_of(session), self.decoder.n_parts, self.decoder.n_paf, model_name,
            concat_order)
        self.concat_order = concat_order

    def _prepare(self, rgb: np.ndarray) -> Tuple[np.ndarray, float, Tuple[int, int]]:
        h, w = rgb.shape[:2]
        w_in, h_in = self.input_size
        stride = self.decoder.params.stride
        scale = min(w_in / w, h_in / h) if self.fixed_size else h_in / h
        nw, nh = max(int(round(w * scale)), 1), max(int(round(h * scale)), 1)
        if self.fixed_size:
            pw, ph = w_in, h_in
        else:
            pw, ph = -(-nw // stride) * stride, -(-nh // stride) * stride
        img = np.full((ph, pw, 3), 128, np.uint8)
        img[:nh, :nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_CUBIC)
        return img, nw / w, (nh, nw)

    def _maps(self, raw: List[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        if self.split is None:
            return raw[self.ihm][0], raw[self.ipaf][0]
        both = raw[self.ihm][0]
        if self.concat_order == "heatmaps_first":
            return both[: self.split], both[self.split:]
        return both[self.split:], both[: self.split]

    def estimate(self, rgb: np.ndarray) -> List[Person]:
        img, scale, valid_hw = self._prepare(rgb)
        raw = self.session.run(None, {self.input_name: self.normaliser([img])})
        heatmaps, pafs = self._maps(raw)
        people = []
        for kp, score in self.decoder.decode(heatmaps, pafs, valid_hw):
            # resized image pixel u <-> original x: u = (x + 0.5) * scale - 0.5
            xy = (kp[:, :2] + 0.5) / scale - 0.5
            found = ~np.isnan(xy[:, 0])
            box = np.concatenate([np.min(xy[found], axis=0), np.max(xy[found], axis=0)])
            people.append(Person(body=Keypoints(self.layout, xy, np.clip(kp[:, 2], 0, 1)),
                                 box=box.astype(np.float32),
                                 score=float(np.clip(kp[found, 2].mean(), 0, 1))))
        return people
