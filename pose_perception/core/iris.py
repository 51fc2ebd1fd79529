"""Eye contours and irises from MediaPipe's ``iris_landmark`` model on crops derived from the
face mesh (as MediaPipe's iris graph makes them). ROS-free.

Each eye's crop is the square around its two corners (mesh vertices 33/133 for the person's
right eye, 362/263 for the left), rotated so that the corners lie on a horizontal line, 2.3x
the corner distance. The model is trained on one eye side: the person's left eye is mirrored
(a crop with a negative width), so the model's points come back to the image through the same
crop matrix. Output per eye: 71 eye-contour/brow points and 5 iris points (centre first, then
four on the iris edge), in image pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from .crops import CropSampler, to_tensor, transform_points
from .inference import OnnxModel
from .types import RotatedRect

INPUT = 64
ROI_SCALE = 2.3
NUM_CONTOUR = 71
NUM_IRIS = 5
# mesh vertices: (outer corner, inner corner, upper lid, lower lid) of the person's right and
# left eye
EYE_VERTICES = ((33, 133, 159, 145), (263, 362, 386, 374))


@dataclass
class EyeLandmarks:
    """Both eyes of one face (index 0: the person's right eye, 1: left), image pixels."""

    iris: np.ndarray        # (2, 5, 2) iris centre + 4 edge points
    contour: np.ndarray     # (2, 71, 2) eye contour and brow points
    eye_width_px: np.ndarray  # (2,) corner-to-corner distance on the mesh
    # (2, 4, 2) the mesh's outer corner, inner corner, upper and lower lid of each eye, as they
    # were when the crops were made (later stages may smooth the mesh: compare the irises with
    # these)
    mesh_points: np.ndarray


def eye_rois(mesh_xy: np.ndarray) -> List[RotatedRect]:
    """The two eye crops (right eye, then the mirrored left eye) from a 468-point mesh."""
    out = []
    for side, (outer, inner, _, _) in enumerate(EYE_VERTICES):
        a, b = mesh_xy[outer], mesh_xy[inner]
        # along the eye from the image-left corner to the image-right one (before mirroring)
        p0, p1 = (a, b) if side == 0 else (b, a)
        rot = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
        side_len = ROI_SCALE * float(np.hypot(*(p1 - p0)))
        c = (p0 + p1) / 2.0
        w = -side_len if side == 1 else side_len      # the left eye is mirrored
        out.append(RotatedRect(float(c[0]), float(c[1]), w, side_len, rot))
    return out


class IrisLandmarker:
    """``iris_landmark`` on both eyes of each face (one model call per eye: batch 1)."""

    def __init__(self, model: OnnxModel) -> None:
        model.check_input_shape((None, INPUT, INPUT, 3))
        self.model = model
        self.i_contour = model.find_output(where=lambda s: s[-1] == NUM_CONTOUR * 3)
        self.i_iris = model.find_output(where=lambda s: s[-1] == NUM_IRIS * 3)
        self._u8 = np.empty((INPUT, INPUT, 3), np.uint8)
        self._in = np.empty((1, INPUT, INPUT, 3), np.float32)

    def run(self, sampler: CropSampler, meshes_xy: Sequence[np.ndarray],
            min_eye_px: float = 0.0) -> List[EyeLandmarks]:
        """Eye landmarks for each (468, 2) mesh. Eyes narrower than ``min_eye_px`` (corner to
        corner) are not run (too small to read a gaze from): their points are NaN."""
        out = []
        for mesh in meshes_xy:
            iris = np.full((2, NUM_IRIS, 2), np.nan, np.float32)
            contour = np.full((2, NUM_CONTOUR, 2), np.nan, np.float32)
            points = np.asarray(mesh, np.float32)[np.asarray(EYE_VERTICES)].copy()
            width = np.linalg.norm(points[:, 0] - points[:, 1], axis=1).astype(np.float32)
            for k, roi in enumerate(eye_rois(mesh)):
                if not width[k] >= min_eye_px:
                    continue
                m = sampler.crop(roi, self._u8, border="replicate")
                to_tensor(self._u8, self._in[0])
                res = self.model.run(self._in)
                iris[k] = transform_points(m, res[self.i_iris].reshape(NUM_IRIS, 3)[:, :2])
                contour[k] = transform_points(m, res[self.i_contour]
                                              .reshape(NUM_CONTOUR, 3)[:, :2])
            out.append(EyeLandmarks(iris, contour, width, points))
        return out
