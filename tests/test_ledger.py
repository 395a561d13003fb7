import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from prismrl.fileio import read_jsonl_prefix
from prismrl.ledger import KILLED_NOTE, RUNNING_FILE, phase, total

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux clear_refs")
def test_each_phase_reports_its_own_peak_memory_not_the_process_peak_so_far(tmp_path: Path):
    with phase("sft", tmp_path, params=1):
        big = torch.ones(400 * 2**20 // 4)  # 400 MiB, touched
        del big
    with phase("eval", tmp_path, params=1):
        pass
    sft, evaluation = read_jsonl_prefix(tmp_path / "ledger.jsonl")
    assert sft["peak_memory_gb"] - evaluation["peak_memory_gb"] > 0.3


def test_a_phase_killed_outright_keeps_its_cost_up_to_the_last_checkpoint(tmp_path: Path):
    """SIGKILL runs no exit code: the record the killed phase last checkpointed is appended, marked
    killed, when the next phase starts in the folder, so a phase resumed in a second process costs
    the sum of both."""
    killed_mid_phase = f"""
import os, signal, time
from prismrl import ledger
ledger.CHECKPOINT_SECONDS = 0.05
with ledger.phase("pass-rate", {str(tmp_path)!r}, params=10) as cost:
    cost.add(forward=7, generated=3)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    died = subprocess.run([sys.executable, "-c", killed_mid_phase], env={**os.environ, "PYTHONPATH": str(SRC)})
    assert died.returncode == -signal.SIGKILL
    assert (tmp_path / RUNNING_FILE).exists() and not (tmp_path / "ledger.jsonl").exists()

    with phase("pass-rate", tmp_path, params=10) as cost:
        cost.add(forward=1)
    killed, resumed = read_jsonl_prefix(tmp_path / "ledger.jsonl")
    assert killed["note"] == KILLED_NOTE and resumed["note"] == ""
    assert killed["wall_seconds"] >= 0.05 and (killed["forward_tokens"], killed["generated_tokens"]) == (7, 3)
    assert killed["flops"] == 2.0 * 10 * 10
    assert not (tmp_path / RUNNING_FILE).exists()
    assert total(tmp_path)["phases"]["pass-rate"]["tokens"] == 11


def test_a_phase_that_ends_leaves_no_checkpoint_behind(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("prismrl.ledger.CHECKPOINT_SECONDS", 0.01)
    with phase("sft", tmp_path, params=1):
        time.sleep(0.1)
    assert not (tmp_path / RUNNING_FILE).exists()
    with phase("eval", tmp_path, params=1):
        pass
    assert [r["note"] for r in read_jsonl_prefix(tmp_path / "ledger.jsonl")] == ["", ""]
