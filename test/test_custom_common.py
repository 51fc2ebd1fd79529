"""Helpers shared by the custom-model tests (tiny ONNX graphs), and tests of the extra layouts."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from pose_perception.core.custom import layouts as cl
from pose_perception.core.layouts import COCO17_NAMES, get_layout, register_layout
from pose_perception.core.types import Keypoints

Out = Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]


def const_model(path: Path, input_shape: Sequence[Union[int, str]], outputs: Dict[str, Out],
                metadata: Optional[Dict[str, str]] = None) -> Path:
    """An ONNX model whose outputs are constants that still depend on the input.

    Each output is ``(A, B)``: ``A * m + B * (1 - m)`` (batch-broadcast), or ``A`` (= ``(A, A)``),
    where ``m`` is the first element (channel 0 of pixel (0, 0)) of each input sample, so a test
    image can select ``A`` (m = 1) or ``B`` (m = 0), e.g. for a crop and its mirror image.
    """
    nodes, inits = [], []
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, list(input_shape))
    inits += [numpy_helper.from_array(np.array([0, 0, 0], np.int64), "s0"),
              numpy_helper.from_array(np.array([1, 1, 1], np.int64), "s1"),
              numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
              numpy_helper.from_array(np.array(1.0, np.float32), "one")]
    nodes.append(helper.make_node("Slice", ["image", "s0", "s1", "axes"], ["m4"]))
    outs = []
    for name, val in outputs.items():
        a, b = (val if isinstance(val, tuple) else (val, None))
        a = np.asarray(a, np.float32)
        rank = a.ndim
        inits.append(numpy_helper.from_array(np.array([-1] + [1] * (rank - 1), np.int64),
                                             f"{name}_rs"))
        nodes.append(helper.make_node("Reshape", ["m4", f"{name}_rs"], [f"{name}_m"]))
        inits.append(numpy_helper.from_array(a, f"{name}_A"))
        b = a if b is None else np.asarray(b, np.float32)
        inits.append(numpy_helper.from_array(b, f"{name}_B"))
        nodes.append(helper.make_node("Sub", ["one", f"{name}_m"], [f"{name}_im"]))
        nodes.append(helper.make_node("Mul", [f"{name}_A", f"{name}_m"], [f"{name}_a"]))
        nodes.append(helper.make_node("Mul", [f"{name}_B", f"{name}_im"], [f"{name}_b"]))
        nodes.append(helper.make_node("Add", [f"{name}_a", f"{name}_b"], [name]))
        shape = ["N"] + list(a.shape[1:]) if isinstance(input_shape[0], str) else list(a.shape)
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(nodes, "const", [x], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def gaussian_maps(centers: np.ndarray, h: int, w: int, sigma: float = 2.0) -> np.ndarray:
    """(K, h, w) Gaussians (peak 1) at sub-pixel ``centers`` (K, 2) given as (x, y) cells."""
    ys, xs = np.mgrid[0:h, 0:w]
    c = np.asarray(centers, np.float64)
    return np.exp(-((xs[None] - c[:, 0, None, None]) ** 2 + (ys[None] - c[:, 1, None, None]) ** 2)
                  / (2 * sigma ** 2)).astype(np.float32)


def mmpose_forward(xy: np.ndarray, box: Sequence[float], input_wh: Tuple[int, int],
                   padding: float = 1.25, udp: bool = False) -> np.ndarray:
    """Image pixels -> network-input pixels for MMPose's top-down crop (independent re-derivation:
    box centre, box enlarged to the input aspect ratio, times padding)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    ar = input_wh[0] / input_wh[1]
    if w / h > ar:
        h = w / ar
    else:
        w = h * ar
    sw, sh = w * padding, h * padding
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if udp:     # MMPose's get_udp_warp_matrix: (size - 1) / scale per axis
        kx, ky = (input_wh[0] - 1) / sw, (input_wh[1] - 1) / sh
        return np.column_stack([(xy[:, 0] - cx) * kx + (input_wh[0] - 1) / 2,
                                (xy[:, 1] - cy) * ky + (input_wh[1] - 1) / 2])
    k = input_wh[0] / sw
    return np.column_stack([(xy[:, 0] - cx) * k + input_wh[0] / 2,
                            (xy[:, 1] - cy) * k + input_wh[1] / 2])


def mmpose_inverse(uv: np.ndarray, box: Sequence[float], input_wh: Tuple[int, int],
                   padding: float = 1.25, udp: bool = False) -> np.ndarray:
    """Inverse of :func:`mmpose_forward` (it is affine: solved from three mapped points)."""
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    dst = mmpose_forward(src, box, input_wh, padding, udp)
    a = np.column_stack([dst[1] - dst[0], dst[2] - dst[0]])      # d(uv) / d(xy)
    return np.linalg.solve(a, (np.asarray(uv, np.float64) - dst[0]).T).T


# ------------------------------------------------------------------------------------------
# tests of the extra layouts


@pytest.mark.parametrize("name,size", [("coco_wholebody133", 133), ("halpe26", 26),
                                       ("wflw98", 98), ("openpose18", 18), ("body25", 25)])
def test_custom_layouts_registered(name, size):
    lay = get_layout(name)
    assert lay.size == size
    assert len(set(lay.names)) == size
    for a, b in lay.edges:
        assert 0 <= a < size and 0 <= b < size and a != b


@pytest.mark.parametrize("name", ["coco17", "coco_wholebody133", "halpe26", "wflw98", "ibug68",
                                  "openpose18", "body25"])
def test_flip_permutation_is_an_involution(name):
    perm = cl.flip_permutation(name)
    assert np.array_equal(perm[perm], np.arange(len(perm)))
    assert not np.array_equal(perm, np.arange(len(perm)))      # something is swapped
    names = get_layout(name).names
    for i, j in enumerate(perm):    # left/right names swap to each other
        if "left" in names[i]:
            assert names[j] == names[i].replace("left", "right")


def test_face_flip_pairs_mirror_the_geometry():
    # iBUG: jaw 0 <-> 16, eye corners 36 <-> 45, mouth corners 48 <-> 54; nose tip 30 fixed
    p = cl.flip_permutation("ibug68")
    assert (p[0], p[36], p[48], p[30], p[8]) == (16, 45, 54, 30, 8)
    w = cl.flip_permutation("wflw98")
    assert (w[0], w[16], w[60], w[96], w[54], w[57]) == (32, 16, 72, 97, 54, 57)
    wb = cl.flip_permutation("coco_wholebody133")
    assert wb[91] == 112 and wb[23] == 39 and wb[17] == 20


def test_maps_to_coco17_keep_joint_names():
    for layout, mapping in cl.TO_COCO17.items():
        names = get_layout(layout).names
        assert tuple(names[i] for i in mapping) == COCO17_NAMES, layout
    kp = Keypoints("body25", np.arange(50, dtype=np.float32).reshape(25, 2), np.ones(25))
    c = cl.to_coco17(kp)
    assert c.layout == "coco17"
    assert np.allclose(c.xy[5], kp.xy[5]) and np.allclose(c.xy[6], kp.xy[2])  # shoulders


def test_wflw98_to_ibug68_keeps_corners():
    m = cl.WFLW98_TO_IBUG68
    assert len(m) == 68 and len(set(m)) == 68
    # outer eye corners and mouth corners correspond
    assert (m[36], m[45], m[48], m[54], m[0], m[16], m[8]) == (60, 72, 76, 82, 0, 32, 16)
    kp = Keypoints("wflw98", np.random.default_rng(0).random((98, 2)), np.ones(98))
    assert cl.to_ibug68(kp).layout == "ibug68"


def test_registration_is_idempotent_and_conflicts_are_refused():
    cl.register_custom_layouts()
    with pytest.raises(ValueError):
        register_layout(get_layout("halpe26").__class__("halpe26", ("a", "b")))
