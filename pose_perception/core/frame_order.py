"""Which camera frames to process, and when (ROS-free; pose_node's policy, thread-safe).

:class:`StampOrder` watches two sequences of image stamps:

- the camera's own, in arrival order (:meth:`StampOrder.arrived`): an image not newer than an
  earlier one means the *camera's* stamps went backwards (duplicated or out of order), which is
  worth a warning; a step back of more than ``backwards_jump_s`` is a restart (a bag loop, a
  restarted camera) and starts a new epoch;
- the frames about to be processed (:meth:`StampOrder.admit`): an approximate-time synchroniser
  may hand over an older colour/depth pair after a newer one (message_filters' does; so does a
  colour image processed alone whose depth came later). Such a pair is *stale*: dropped without
  a warning (the caller counts it). A pair of a new epoch is a restart (processed, tracking starts
  over); a step forward of more than ``forward_jump_s`` is noted.

:class:`DepthWait` decides when a colour image goes to the pipeline without depth: only when
colour images have come for ``wait_s`` without any synchronised pair. A colour image after a
pause (camera idle, single frames sent now and then) waits for its depth instead of being
processed alone at once: its pair, formed a moment later, is the frame to process.
"""
from __future__ import annotations

import threading
from typing import Optional, Tuple

PROCESS, STALE, RESTART, JUMP = "process", "stale", "restart", "jump"


class StampOrder:
    """See the module docstring."""

    def __init__(self, backwards_jump_s: float = 1.0, forward_jump_s: float = 1.0) -> None:
        self.backwards_jump_s = float(backwards_jump_s)
        self.forward_jump_s = float(forward_jump_s)
        self._lock = threading.Lock()
        self._newest_arrival: Optional[float] = None
        self._epoch: Optional[float] = None          # first stamp after a restart
        self._last: Optional[float] = None           # last admitted stamp

    @property
    def last_processed(self) -> Optional[float]:
        return self._last

    def arrived(self, stamp: float) -> Optional[float]:
        """A camera image stamped ``stamp`` arrived. Returns how far it lies behind the newest
        earlier stamp (0 for a duplicate) when the camera's stamps went backwards by at most
        ``backwards_jump_s``; None otherwise (newer, or a restart, which starts a new epoch)."""
        with self._lock:
            newest = self._newest_arrival
            if newest is None or stamp > newest:
                self._newest_arrival = stamp
                return None
            back = newest - stamp
            if back > self.backwards_jump_s:
                self._newest_arrival = self._epoch = stamp
                return None
            return back

    def admit(self, stamp: float) -> Tuple[str, float]:
        """(verdict, gap [s]) for a frame about to be processed: PROCESS, STALE (not newer than
        the last admitted frame: drop it), RESTART (first frame of a new epoch, ``gap`` s back)
        or JUMP (``gap`` s after the last frame, more than ``forward_jump_s``). Every verdict but
        STALE makes ``stamp`` the last admitted one."""
        with self._lock:
            last = self._last
            if last is None:
                self._last = stamp
                return PROCESS, 0.0
            if stamp <= last:
                epoch = self._epoch
                if epoch is not None and stamp >= epoch and last - stamp > self.backwards_jump_s:
                    self._last, self._epoch = stamp, None
                    return RESTART, last - stamp
                return STALE, last - stamp
            self._last = stamp
            if stamp - last > self.forward_jump_s:
                return JUMP, stamp - last
            return PROCESS, stamp - last


class DepthWait:
    """When a colour image is processed alone (see the module docstring). Times are seconds of a
    monotonic clock."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = float(wait_s)
        self._lock = threading.Lock()
        self._streak_start: Optional[float] = None   # first colour image without a pair since
        self._last_colour: Optional[float] = None
        self._waiting: Optional[Tuple[object, float]] = None   # (image, arrival) held for depth

    def paired(self) -> None:
        """A synchronised colour/depth pair was formed: depth flows, nothing goes alone."""
        with self._lock:
            self._streak_start = None
            self._waiting = None

    def colour(self, image: object, now: float) -> bool:
        """A colour image arrived and formed no pair (yet). True: process it alone now (colour
        has come for ``wait_s`` without any pair); else it is held for its depth and
        :meth:`due` hands it over once ``wait_s`` passed without a pair."""
        with self._lock:
            pause = self._last_colour is None or now - self._last_colour > self.wait_s
            self._last_colour = now
            if self._streak_start is None or pause:
                self._streak_start = now
            if now - self._streak_start > self.wait_s:
                self._waiting = None
                return True
            self._waiting = (image, now)
            return False

    def due(self, now: float) -> Optional[object]:
        """The held colour image once ``wait_s`` passed without a pair (then forgotten)."""
        with self._lock:
            if self._waiting is None or now - self._waiting[1] <= self.wait_s:
                return None
            image, self._waiting = self._waiting[0], None
            return image
