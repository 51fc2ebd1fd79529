"""pose_perception: people's body, face and hand keypoints in 3D for ROS 2.

The source package extends its path so that the generated ``pose_perception.msg`` of an installed
(colcon) build imports even when Python runs from the repository root. Importing the package loads
no shared library: the build's message libraries are preloaded (so that no
``source install/setup.bash`` is needed) only when ``pose_perception.msg`` is first imported.
"""
import importlib.abc
import pkgutil
import sys

__path__ = pkgutil.extend_path(__path__, __name__)
__version__ = "0.1.0"

_MESSAGES = __name__ + ".msg"
_message_libraries_loaded = False


def load_message_libraries() -> None:
    """dlopen install/<pkg>/lib/lib<pkg>__*.so (RTLD_GLOBAL) when that folder is not on the loader
    path, so the generated Python extensions find them. Harmless where setup.bash was sourced;
    runs once (importing ``pose_perception.msg`` calls it)."""
    global _message_libraries_loaded
    if _message_libraries_loaded:
        return
    _message_libraries_loaded = True
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


class _MessagesFinder(importlib.abc.MetaPathFinder):
    """Loads the message libraries just before ``pose_perception.msg`` is imported, then lets the
    ordinary finders import it (finds nothing itself)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == _MESSAGES:
            load_message_libraries()
        return None


if not any(isinstance(f, _MessagesFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _MessagesFinder())
