"""The one test on the real built-in model (slow: converts the GGUF once, ~25 s; run with -m slow)."""

import math

import pytest

from prismrl.data.demo import DEMO_FILE
from prismrl.data.io import load_trajectories


@pytest.mark.slow
def test_probe_builtin_model_on_shipped_trajectories(tmp_path):
    from importlib.resources import files

    from prismrl.models import load_model
    from prismrl.prism.runner import run_probe

    import os

    import torch

    torch.set_num_threads(os.cpu_count())  # the suite pins 1 thread for its tiny models
    trajectories, _ = load_trajectories(str(files("prismrl.data") / DEMO_FILE))
    model, tokenizer, name = load_model("builtin:smollm2-135m", device="cpu")
    assert model.config.num_hidden_layers == 30
    summary = run_probe(model, tokenizer, trajectories[:3], tmp_path, name, max_length=512, progress=False)
    assert summary.n_probed == 3 and not summary.flagged
    import json

    records = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    for record in records:
        assert len(record["norms"]) == 210
        assert all(math.isfinite(n) and n > 0 for n in record["norms"])
        assert 0 < record["loss"] < 20
