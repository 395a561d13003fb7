import os
from pathlib import Path

import pytest
import torch

from prismrl.fileio import read_jsonl_prefix
from prismrl.ledger import phase


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux clear_refs")
def test_each_phase_reports_its_own_peak_memory_not_the_process_peak_so_far(tmp_path: Path):
    with phase("sft", tmp_path, params=1):
        big = torch.ones(400 * 2**20 // 4)  # 400 MiB, touched
        del big
    with phase("eval", tmp_path, params=1):
        pass
    sft, evaluation = read_jsonl_prefix(tmp_path / "ledger.jsonl")
    assert sft["peak_memory_gb"] - evaluation["peak_memory_gb"] > 0.3
