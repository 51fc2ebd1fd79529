"""Start/stop cycles of the node executables: start a graph of nodes, send SIGINT or SIGTERM at a
random moment (importing, loading models, spinning, publishing, ...), and collect every process
that did not exit 0 or printed a traceback. Used by test_ros_stop.py (a few cycles) and by hand:

    .venv/bin/python test/stop_cycles.py --cycles 50               # the node executables
    .venv/bin/python test/stop_cycles.py --cycles 50 --launch      # under `ros2 launch`

``--launch`` needs ``ros2`` with launch_ros on PATH (an apt ROS 2, or the upstream sources put on
the path for a local check); ``ros2 launch`` forwards SIGINT to every node as Ctrl-C does, and
its exit code and its "process has died" lines are checked too.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
STOP_WAIT_S = 20.0          # a process must be gone this long after the signal
BAD_OUTPUT = ("Traceback (most recent call last)", "process has died", "Unable to convert")


def node_commands(python: str = sys.executable) -> Dict[str, List[str]]:
    """The launch file's graph (camera -> pose_node -> safety monitor) plus the lifting node,
    through the installed entry scripts; the safety monitor's timer runs at 200 Hz so that a
    signal often lands inside a timer callback."""
    script = lambda name: [python, str(REPO / "scripts" / name)]  # noqa: E731
    return {
        "sample_camera_node": script("sample_camera_node"),
        "pose_node": script("pose_node") + ["--ros-args", "-p", "use_gpu:=false"],
        "safety_monitor_node": script("safety_monitor_node") + [
            "--ros-args", "-p", "rate_hz:=200.0", "-p",
            "static_transforms:=['base_link camera_color_optical_frame 0 0 1 -1.5708 0 -1.5708']"],
        "lifting_node": script("lifting_node"),
    }


@dataclass
class Failure:
    cycle: int
    name: str
    signal: str
    after_s: float
    returncode: Optional[int]
    output: str

    def __str__(self) -> str:
        lines = self.output.strip().splitlines()
        stacks = [i for i, line in enumerate(lines)
                  if line.startswith(("(still running", "Fatal Python error"))]
        # the last 12 lines of its own output, and the stacks of a hung or crashed one in full
        tail = "\n    ".join(lines[max(0, stacks[0] - 12):] if stacks else lines[-12:])
        return (f"cycle {self.cycle}: {self.name} got {self.signal} {self.after_s:.2f} s after "
                f"start, exit code {self.returncode}\n    {tail}")


def _env() -> Dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(100, 200)))
    env.setdefault("ROS_LOCALHOST_ONLY", "1")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


def catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has its own SIGTERM handler now (``SigCgt`` in /proc; True where
    that cannot be read: such a process is judged as one whose handler was installed). The entry
    scripts install the stop handlers for SIGINT and SIGTERM together, before their imports;
    before that only the interpreter's own start-up ran, where the signals' default action
    applies (and Python's own SIGINT handler)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except OSError:
        pass
    return True


def _ended_by_default_action(returncode: Optional[int], text: str, sig: signal.Signals) -> bool:
    """Ended as a Python process with no handler of its own ends on ``sig``: killed by it, or
    for SIGINT Python's KeyboardInterrupt (exit code -2 and a traceback, or 1 before Python 3.8)."""
    return returncode == -sig or (sig == signal.SIGINT and returncode in (1, -sig)
                                  and "KeyboardInterrupt" in text)


def _finish(procs: Dict[str, subprocess.Popen], cycle: int, sig: signal.Signals,
            after: float, early: Dict[str, bool], report: "CycleReport") -> None:
    """Add the failures among ``procs`` to ``report``, and count those that ended by the signal's
    default action because it came before they had installed their handler (``early``)."""
    for name, p in procs.items():
        try:
            out, _ = p.communicate(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            stacks = _stacks(p.pid)
            p.kill()
            out, _ = p.communicate()
            out += f"\n(still running {STOP_WAIT_S:g} s after the signal: killed)\n".encode()
            out += stacks.encode()
        text = out.decode(errors="replace")
        if early[name] and _ended_by_default_action(p.returncode, text, sig):
            report.before_handler += 1
        elif p.returncode != 0 or any(b in text for b in BAD_OUTPUT):
            report.failures.append(Failure(cycle, name, sig.name, after, p.returncode, text))


def _threads(pid: int) -> str:
    """One line per thread of process ``pid`` from /proc: id, name, state (R running, S
    sleeping, D uninterruptible, Z zombie...) and the kernel function it waits in (wchan)."""
    lines = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as exc:
        return f"(no /proc/{pid}/task: {exc})"
    for tid in tids:
        def read(name: str) -> str:
            try:
                with open(f"/proc/{pid}/task/{tid}/{name}") as f:
                    return f.read().strip()
            except OSError:
                return "?"
        stat = read("stat")
        state = stat.rsplit(")", 1)[1].split()[0] if ")" in stat else "?"
        lines.append(f"  thread {tid} {read('comm')!r}: state {state}, wchan {read('wchan')}")
    return "threads (from /proc):\n" + "\n".join(lines)


def _stacks(pid: int) -> str:
    """Every thread's stack of a hung process (Python and native frames), where py-spy is
    installed (``pip install py-spy``; what it says on stderr too: it finds no Python thread
    in a process whose interpreter has finished), and each thread's state from /proc."""
    threads = _threads(pid)
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return f"(pip install py-spy to see where it hung)\n{threads}"
    try:
        done = subprocess.run([spy, "dump", "--native", "--pid", str(pid)], capture_output=True,
                              text=True, timeout=30)
        return f"{done.stdout}{done.stderr}\n{threads}"
    except (subprocess.SubprocessError, OSError) as exc:
        return f"(py-spy dump failed: {exc})\n{threads}"


def _default_signals() -> None:
    """In the child before its exec: SIGINT and SIGTERM as a terminal or ``ros2 launch`` leaves
    them (a shell's background job inherits SIGINT ignored, and a node signalled before it
    installed its handler would then run on)."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)


@dataclass
class CycleReport:
    failures: List[Failure]
    before_handler: int     # processes signalled before their handler was installed


def run_cycles(commands: Dict[str, Sequence[str]], cycles: int, max_delay_s: float,
               seed: int, min_delay_s: float = 0.0,
               signals: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)
               ) -> CycleReport:
    """``cycles`` times: start every command at once, wait a random time in [min_delay_s,
    max_delay_s], send all of them the same signal, chosen at random from ``signals``. A process
    must exit 0 without a traceback, unless the signal came while only the interpreter's own
    start-up had run (no SIGTERM handler of its own yet): then it may end by the signal's default
    action (counted in ``before_handler``)."""
    rng = random.Random(seed)
    report = CycleReport([], 0)
    env = _env()
    for cycle in range(cycles):
        procs = {name: subprocess.Popen(list(cmd), cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, preexec_fn=_default_signals)
                 for name, cmd in commands.items()}
        after = rng.uniform(min_delay_s, max_delay_s)
        sig = rng.choice(list(signals))
        time.sleep(after)
        early = {}
        for name, p in procs.items():
            early[name] = not catches_sigterm(p.pid)
            p.send_signal(sig)
        _finish(procs, cycle, sig, after, early, report)
    return report


def launch_command(extra: Sequence[str] = ()) -> List[str]:
    return ["ros2", "launch", "pose_perception", "pose_perception.launch.py", "safety:=true",
            "sample_camera:=true", "use_gpu:=false", *extra]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--max-delay", type=float, default=8.0,
                    help="latest moment of the signal after the start [s]")
    ap.add_argument("--min-delay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--launch", action="store_true",
                    help="one `ros2 launch` per cycle (SIGINT only, as Ctrl-C)")
    args = ap.parse_args(argv)
    # Ctrl-C on `ros2 launch`: launch gets SIGINT and forwards it to every node
    commands = {"ros2 launch": launch_command()} if args.launch else node_commands()
    signals = (signal.SIGINT,) if args.launch else (signal.SIGINT, signal.SIGTERM)
    report = run_cycles(commands, args.cycles, args.max_delay, args.seed, args.min_delay,
                        signals)
    for f in report.failures:
        print(f)
    runs = args.cycles * len(commands)
    print(f"seed {args.seed}: {len(report.failures)} of {runs} processes did not exit cleanly "
          f"({args.cycles} cycles; {report.before_handler} signalled during the interpreter's "
          "own start-up, before their handler, ended by the signal's default action)")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
