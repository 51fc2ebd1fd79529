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

:meth:`StampOrder.judge` turns a verdict into what the node reports: the diagnostics counter to
increment and the warning or note to publish.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional, Tuple

PROCESS, STALE, RESTART, JUMP = "process", "stale", "restart", "jump"
# an image stamped this much before the last processed one means time restarted (bag loop)
BACKWARDS_JUMP_S = 1.0
# a gap between processed stamps longer than this (or than the trackers' max_age_s, when larger)
# is reported as a time jump: people's tracks restart
FORWARD_JUMP_S = 1.0


@dataclass(frozen=True)
class Admission:
    """What to do with a frame and what to report about it (see :meth:`StampOrder.judge`)."""

    process: bool                   # False: drop the frame
    counter: Optional[str] = None   # diagnostics counter to increment
    issue: Optional[str] = None     # issue key ("time": a warning, "time_jump": a note)
    warn: bool = False              # the issue is a warning (else a note, level OK)
    text: str = ""


class StampOrder:
    """See the module docstring."""

    def __init__(self, backwards_jump_s: float = 1.0, forward_jump_s: float = 1.0) -> None:
        self.backwards_jump_s = float(backwards_jump_s)
        self.forward_jump_s = float(forward_jump_s)
        self._lock = threading.Lock()
        self._newest_arrival: Optional[float] = None
        self._epoch: Optional[float] = None          # first stamp after a restart
        self._last: Optional[float] = None           # last admitted stamp

    @classmethod
    def for_tracking(cls, max_age_s: Optional[float] = None) -> "StampOrder":
        """The node's rules: a restart is a step back of more than BACKWARDS_JUMP_S; a jump is a
        step forward of more than FORWARD_JUMP_S or the trackers' ``max_age_s``, when larger."""
        forward = FORWARD_JUMP_S if max_age_s is None else max(FORWARD_JUMP_S, float(max_age_s))
        return cls(BACKWARDS_JUMP_S, forward)

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

    def judge(self, stamp: float) -> Admission:
        """:meth:`admit`'s verdict as an :class:`Admission`. A stale pair (the synchroniser handed
        over an older pair after a newer one, or a colour image went alone before its depth came)
        is dropped and counted ("stale pairs"; the camera's own stamps going backwards is warned
        about on arrival); a restart (bag loop, restarted camera) and a jump forward beyond the
        trackers' memory are processed, counted ("time jumps") and reported: the restart as a
        warning, the jump as a note (a stalled camera is worth knowing about, but the frame
        itself is fine)."""
        verdict, gap = self.admit(stamp)
        if verdict == STALE:
            return Admission(False, "stale pairs")
        if verdict == RESTART:
            return Admission(True, "time jumps", "time", True,
                             f"image stamps went backwards (bag loop or restarted camera?) by "
                             f"{gap:.1f} s: tracking starts over")
        if verdict == JUMP:
            return Admission(True, "time jumps", "time_jump", False,
                             f"image stamps jumped forward (camera stalled, frames lost or bag "
                             f"skipped?) by {gap:.1f} s (> {self.forward_jump_s:g} s): people's "
                             "tracks start over")
        return Admission(True)


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
