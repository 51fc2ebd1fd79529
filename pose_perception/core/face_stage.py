"""The face stage of the keypoint pipeline: 468-point meshes for each body's face (a crop
tracked from the last mesh, else a new crop from the head) and for faces without a body (tracked,
or new from the face detector), then each face's eyes and irises (``iris``). ROS-free."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from . import face as face_mod
from .crops import CropSampler, rect_bounds
from .iris import IrisLandmarker
from .ssd import Detection, box_iou
from .types import Face, FrameResult, Person, RotatedRect

# called with the faces of the speculated meshes as soon as they are known (see ``speculate``)
FacesFn = Callable[[List[Face]], None]


@dataclass
class FaceTrack:
    """A face without a body, carried to the next frame."""

    roi: RotatedRect


@dataclass
class Speculated:
    """Meshes run on the crops tracked from the previous frame (``FaceStage.speculate``)."""

    rois: List[RotatedRect] = field(default_factory=list)
    meshes: Optional[face_mod.FaceMeshes] = None
    # each crop's mesh as a Face, None below the presence threshold; ``run`` hands on these
    # very objects where it keeps the mesh (what ``on_faces`` did to them stays done)
    faces: List[Optional[Face]] = field(default_factory=list)


class FaceStage:
    """Meshes for the people's faces and for faces without a body, with the crops carried from
    frame to frame (``face_tracks``; a body's face crop lives in its pipeline track)."""

    def __init__(self, landmarker: "face_mod.FaceLandmarker",
                 recrop: Optional["face_mod.FaceDetector"], min_presence: float,
                 refine_new_crops: bool, iris: Optional[IrisLandmarker] = None,
                 iris_min_eye_px: float = 10.0) -> None:
        self.landmarker = landmarker
        self.recrop = recrop
        self.iris = iris                       # eyes and irises of every face found, if set
        self.iris_min_eye_px = iris_min_eye_px  # narrower eyes are not run
        self.min_presence = min_presence
        self.refine_new_crops = refine_new_crops
        self.face_tracks: List[FaceTrack] = []

    def speculate(self, sampler: CropSampler, tracks: Sequence[Any],
                  on_faces: Optional[FacesFn] = None) -> Speculated:
        """Meshes on the crops tracked from the previous frame's meshes (bodies' faces and faces
        without a body), before this frame's bodies are known: ``run`` uses those whose
        crop still agrees with the body's head. The faces found get their eyes (``iris``) here
        too; ``on_faces`` is then called with them, on this thread (e.g. to lift them to 3D
        while the body model runs on another)."""
        rois = [t.face_roi for t in tracks if t.face_roi is not None]
        rois += [ft.roi for ft in self.face_tracks]
        if not rois:
            return Speculated()
        meshes = self.landmarker.run(sampler, rois)
        faces = [meshes.face(j, sampler.width, sampler.height)
                 if meshes.presence[j] >= self.min_presence else None for j in range(len(rois))]
        self._read_eyes(sampler, [f for f in faces if f is not None])
        if on_faces is not None:
            on_faces([f for f in faces if f is not None])
        return Speculated(rois, meshes, faces)

    def run(self, sampler: CropSampler, persons: List[Person], tracks: List[Any],
            res: FrameResult, face_dets: Sequence[Detection], w: int, h: int,
            speculated: Optional[Speculated] = None) -> None:
        """Meshes for each body's face (tracked crop, else a new crop from the head) and for
        faces without a body (tracked, or new from the face detector). ``speculated``: meshes
        already run on some of these crops (``speculate``; matched by identity)."""
        rois, fresh, owner = [], [], []
        for i, p in enumerate(persons):
            roi, tracked = face_mod.face_roi_for_body(p.body.xy, tracks[i].face_roi, sampler,
                                                      self.recrop)
            if roi.width >= 2:
                rois.append(roi), fresh.append(not tracked), owner.append(i)
        for ft in self.face_tracks:
            if not face_mod.overlaps_any(rect_bounds(ft.roi), rois):
                rois.append(ft.roi), fresh.append(False), owner.append(-1)
        for d in face_dets:
            if not face_mod.overlaps_any(d.box, rois):
                rois.append(face_mod.roi_from_detection(d)), fresh.append(True), owner.append(-1)
        if not rois:
            self.face_tracks = []
            return
        meshes, ready = self._meshes(sampler, rois, speculated or Speculated())
        thr = self.min_presence
        # a body's tracked crop lost the face: start again from the head this frame
        retry = [k for k in range(len(rois)) if owner[k] >= 0 and not fresh[k]
                 and meshes.presence[k] < thr]
        if retry:
            again = self.landmarker.run(sampler, [face_mod.face_roi_for_body(
                persons[owner[k]].body.xy, None, sampler, self.recrop)[0] for k in retry])
            for j, k in enumerate(retry):
                meshes.replace(k, again, j)
                fresh[k], ready[k] = True, None
        if self.refine_new_crops:
            redo = [k for k in range(len(rois)) if fresh[k] and meshes.presence[k] >= thr]
            if redo:
                again = self.landmarker.run(sampler, [face_mod.roi_from_mesh(meshes.xyz[k, :, :2])
                                                      for k in redo])
                for j, k in enumerate(redo):
                    if again.presence[j] >= thr:
                        meshes.replace(k, again, j)
                        ready[k] = None
        face_tracks: List[FaceTrack] = []
        kept_boxes: List[np.ndarray] = []
        found = []
        for k in range(len(rois)):
            i = owner[k]
            if meshes.presence[k] < thr:
                if i >= 0:
                    tracks[i].face_roi = None
                continue
            f = ready[k] if ready[k] is not None else meshes.face(k, w, h)
            if kept_boxes and box_iou(f.box, np.stack(kept_boxes)).max() > 0.5:
                continue                      # a face-only track that is a body's face now
            kept_boxes.append(f.box)
            found.append(f)
            nxt = face_mod.roi_from_mesh(meshes.xyz[k, :, :2])
            if i >= 0:
                f.person_index, f.associated = i, True
                persons[i].face = f
                tracks[i].face_roi = nxt
            else:
                res.faces_without_body.append(f)
                face_tracks.append(FaceTrack(nxt))
        self.face_tracks = face_tracks
        self._read_eyes(sampler, [f for f in found if f.eyes is None])   # not speculated

    def _read_eyes(self, sampler: CropSampler, faces: List[Face]) -> None:
        """Eyes and irises of ``faces`` (``Face.eyes``), with the iris model."""
        if self.iris is not None and faces:
            for f, eyes in zip(faces, self.iris.run(sampler, [f.mesh.xy for f in faces],
                                                    self.iris_min_eye_px)):
                f.eyes = eyes

    def _meshes(self, sampler: CropSampler, rois: List[RotatedRect], speculated: Speculated
                ) -> Tuple[face_mod.FaceMeshes, List[Optional[Face]]]:
        """Meshes on ``rois``: taken from ``speculated`` where it ran on the same crop object,
        run now for the others; and per crop the speculated Face of that mesh (None where run
        now, or where a crop appears twice: a Face object goes to one place only)."""
        done = speculated.meshes
        where = ({id(r): j for j, r in enumerate(speculated.rois)} if done is not None else {})
        ready: List[Optional[Face]] = [None] * len(rois)
        todo = [k for k, r in enumerate(rois) if id(r) not in where]
        if len(todo) == len(rois):
            return self.landmarker.run(sampler, rois), ready
        meshes = face_mod.FaceMeshes(np.empty((len(rois), face_mod.NUM_POINTS, 3), np.float32),
                                     np.zeros(len(rois), np.float32), list(rois))
        spare = list(speculated.faces)
        for k, r in enumerate(rois):
            if id(r) in where:
                j = where[id(r)]
                meshes.replace(k, done, j)
                ready[k], spare[j] = spare[j], None
        if todo:
            now = self.landmarker.run(sampler, [rois[k] for k in todo])
            for j, k in enumerate(todo):
                meshes.replace(k, now, j)
        return meshes, ready
