"""A run killed without a word (SIGKILL: the OOM killer) is reported by the next run in its folder."""

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest

from prismrl.heartbeat import Heartbeat, KilledRunWarning, previous_run_message

SLEEPER = """
import sys, time
from prismrl.heartbeat import Heartbeat
beat = Heartbeat(sys.argv[1], "sft").__enter__()
beat(step="step 3 of 10")
time.sleep(120)
"""


def test_a_sigkilled_run_is_reported_on_resume(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", SLEEPER, str(tmp_path)])
    beat_file = tmp_path / ".sft.running.json"
    deadline = time.time() + 60
    while not (beat_file.exists() and "step 3" in beat_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    assert previous_run_message(beat_file, "sft") is None  # still alive: nothing to report
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with pytest.warns(KilledRunWarning, match=rf"pid {child.pid}\) stopped at step 3 of 10.*OOM killer"):
        with Heartbeat(tmp_path, "sft") as beat:
            beat(step="step 4 of 10")
    assert not beat_file.exists()


def test_an_error_leaves_nothing_to_report(tmp_path):
    with pytest.raises(ValueError):
        with Heartbeat(tmp_path, "rl"):
            raise ValueError("a bug shows its own traceback")
    assert not (tmp_path / ".rl.running.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Heartbeat(tmp_path, "rl"):
            pass
