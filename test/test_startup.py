"""ros.startup: the start-up phases a node reports in its "ready" line (issue 17, defect 7)."""
import time

from pose_perception.ros.startup import StartupClock, process_age_s


def test_phases_add_up_to_the_process_age():
    age = process_age_s()
    assert 0.0 < age < 24 * 3600          # this test process started a while ago, not before boot
    clock = StartupClock()
    clock.mark("imports")
    time.sleep(0.05)
    clock.mark("models")
    phases = dict(clock.phases())
    assert phases["imports"] >= age - 0.5 and phases["models"] >= 0.05
    assert abs(sum(phases.values()) - clock.marks[-1][1]) < 1e-9
    text = clock.summary()
    assert text.startswith(f"{clock.marks[-1][1]:.1f} s since the process started: imports ")
    assert ", models 0.1 s" in text or ", models 0.0 s" in text
