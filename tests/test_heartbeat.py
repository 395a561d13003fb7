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
    with pytest.warns(KilledRunWarning, match=rf"pid {child.pid}\) stopped at step 3 of 10.*without an error: it was killed"):
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


@pytest.mark.parametrize("peak, cause", [(22.5, "OOM killer is the likely cause"), (8.0, "more likely a kill from outside")])
def test_the_likely_cause_follows_the_memory_it_had_reached(tmp_path, monkeypatch, peak, cause):
    import json

    import prismrl.heartbeat as heartbeat

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that is no longer running
    monkeypatch.setattr(heartbeat, "machine_memory_gb", lambda: 24.0)
    monkeypatch.setattr(heartbeat, "cgroup_oom_kills", lambda: None)
    beat_file = tmp_path / ".rl.running.json"
    beat_file.write_text(
        json.dumps({"pid": child.pid, "host": "elsewhere", "started": 0, "time": 600, "peak_rss_gb": peak, "step": "step 2 of 8, rollout"})
    )
    message = previous_run_message(beat_file, "rl")
    assert "stopped at step 2 of 8, rollout, 10 min after" in message and cause in message
