"""core.frame_order: which frames pose_node processes (issue 17, defects 5 and 6), ROS-free."""
from pose_perception.core.frame_order import (BACKWARDS_JUMP_S, FORWARD_JUMP_S, JUMP, PROCESS,
                                              RESTART, STALE, DepthWait, StampOrder)


def test_stale_pairs_restarts_and_jumps():
    o = StampOrder(backwards_jump_s=1.0, forward_jump_s=1.0)
    for t in (10.0, 10.05, 10.1, 12.0):               # the camera's images, in order
        assert o.arrived(t) is None
    assert o.admit(10.0) == (PROCESS, 0.0)
    assert o.admit(10.1)[0] == PROCESS
    # an older pair handed over after a newer one, or the same frame again: stale
    assert o.admit(10.05)[0] == STALE and o.admit(10.1)[0] == STALE
    assert o.last_processed == 10.1
    # far back without the camera going back: still stale (an old pair, not a restart)
    assert o.admit(2.0)[0] == STALE
    assert o.admit(12.0) == (JUMP, 12.0 - 10.1)
    # the camera's stamps restart (bag loop): its first frames are a new epoch
    assert o.arrived(3.0) is None
    verdict, gap = o.admit(3.0)
    assert verdict == RESTART and gap == 9.0
    assert o.admit(3.03)[0] == PROCESS


def test_the_camera_s_own_stamps_going_backwards():
    o = StampOrder(backwards_jump_s=1.0)
    assert o.arrived(5.0) is None and o.arrived(5.1) is None
    assert o.arrived(5.1) == 0.0                      # duplicated
    assert abs(o.arrived(5.0) - 0.1) < 1e-12          # out of order
    assert o.arrived(5.2) is None
    assert o.arrived(1.0) is None                     # a restart is not "out of order"
    assert o.arrived(1.1) is None


def test_colour_goes_alone_only_after_colour_came_for_wait_s_without_pairs():
    w = DepthWait(0.5)
    # a stream without depth: alone once it has lasted wait_s
    assert [w.colour(i, i * 0.1) for i in range(8)] == [False] * 6 + [True] * 2
    w.paired()                                        # depth flows again
    assert w.colour("x", 0.85) is False
    # after a pause, a colour image waits for its depth ...
    w = DepthWait(0.5)
    assert w.colour("a", 0.0) is False
    assert w.colour("b", 3.0) is False and w.due(3.2) is None
    w.paired()                                        # ... which came: nothing goes alone
    assert w.due(4.0) is None
    # ... and goes alone when none comes within wait_s (a colour-only camera at 0.3 Hz)
    assert w.colour("c", 10.0) is False
    assert w.due(10.4) is None and w.due(10.6) == "c" and w.due(10.7) is None


def test_the_node_s_rules_follow_the_trackers_memory():
    o = StampOrder.for_tracking(None)
    assert (o.backwards_jump_s, o.forward_jump_s) == (BACKWARDS_JUMP_S, FORWARD_JUMP_S)
    assert StampOrder.for_tracking(0.2).forward_jump_s == FORWARD_JUMP_S   # never below
    assert StampOrder.for_tracking(3.0).forward_jump_s == 3.0


def test_judge_says_what_to_count_and_report():
    o = StampOrder.for_tracking(2.0)
    first = o.judge(10.0)
    assert first.process and first.counter is None and first.issue is None
    stale = o.judge(9.9)
    assert not stale.process and stale.counter == "stale pairs" and stale.issue is None
    jump = o.judge(12.5)                                   # 2.5 s > max_age_s 2 s: a note
    assert jump.process and jump.counter == "time jumps"
    assert jump.issue == "time_jump" and not jump.warn and "by 2.5 s (> 2 s)" in jump.text
    assert o.judge(12.6).issue is None                      # ordinary step
    o.arrived(12.6)
    o.arrived(3.0)                                          # the camera restarted
    restart = o.judge(3.0)
    assert restart.process and restart.counter == "time jumps"
    assert restart.issue == "time" and restart.warn and "backwards" in restart.text
    assert "by 9.6 s" in restart.text
