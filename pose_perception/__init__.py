"""pose_perception: people's body, face and hand keypoints in 3D for ROS 2.

The source package extends its path so that the generated ``pose_perception.msg`` of an installed
(colcon) build imports even when Python runs from the repository root, and it preloads that
build's message libraries so that no ``source install/setup.bash`` is needed to use them.
"""
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
__version__ = "0.1.0"


def _preload_message_libraries() -> None:
    """dlopen install/<pkg>/lib/lib<pkg>__*.so (RTLD_GLOBAL) when that folder is not on the loader
    path, so the generated Python extensions find them. Harmless where setup.bash was sourced."""
    import ctypes
    import glob
    import os

    for entry in __path__:
        libdir = os.path.normpath(os.path.join(entry, "..", "..", "..", "..", "lib"))
        libs = sorted(glob.glob(os.path.join(libdir, f"lib{__name__}__*.so")))
        if not libs or libdir in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep):
            continue
        pending = libs
        while pending:  # dependency order unknown: retry until no more progress
            failed = []
            for lib in pending:
                try:
                    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
                except OSError:
                    failed.append(lib)
            if len(failed) == len(pending):
                break
            pending = failed


_preload_message_libraries()
