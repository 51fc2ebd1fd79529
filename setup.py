"""pip-installable ROS-free core (``pip install .``): the keypoint models, depth lifting, tracking,
safety logic and the ``pose-perception`` command. The ROS 2 nodes and messages are built with
colcon (CMakeLists.txt); see README.md."""
from setuptools import find_packages, setup

setup(
    name="pose_perception",
    version="0.1.0",
    packages=find_packages(include=["pose_perception", "pose_perception.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.23", "opencv-python-headless>=4.8", "onnxruntime>=1.17", "onnx>=1.15",
        "scipy>=1.10", "transforms3d>=0.4", "PyYAML>=6",
    ],
    extras_require={
        "test": ["pytest>=7.4", "hypothesis>=6.80", "pycocotools>=2.0.7"],
        "demo": ["matplotlib>=3.7", "rosbags>=0.11"],
    },
    entry_points={"console_scripts": ["pose-perception = pose_perception.cli:main"]},
    license="Apache-2.0",
)
