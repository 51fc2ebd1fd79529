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


def test_each_node_of_a_process_reports_its_own_phases():
    """Two nodes in one process (one_process, a test): the second one's line lists the
    process's marks and its own, not the first node's again."""
    clock = StartupClock()
    clock.mark("interpreter + imports", process=True)
    first = clock.begin()
    clock.mark("models")
    clock.mark("topics")
    time.sleep(0.05)
    second = clock.begin()
    time.sleep(0.05)
    clock.mark("models")
    clock.mark("topics")
    names = [name for name, _ in clock.phases(second)]
    assert names == ["interpreter + imports", "models", "topics"]
    phases = clock.phases(second)
    assert 0.05 <= phases[1][1] < 0.09           # from the second node's begin, not before
    assert [name for name, _ in clock.phases(first)] == names + ["models", "topics"]
    assert clock.summary(second).count("models") == 1
