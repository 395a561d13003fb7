import importlib.util
import sys
from pathlib import Path

from prismrl.data.format import encode_messages
from prismrl.models import load_tokenizer


def _script():
    spec = importlib.util.spec_from_file_location("token_lengths", Path(__file__).resolve().parents[1] / "scripts" / "token_lengths.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_token_lengths_counts_what_a_max_length_would_cut(trajectory_file, trajectories, monkeypatch, capsys):
    tokenizer = load_tokenizer("tiny")
    lengths = sorted(len(encode_messages(t.messages, tokenizer)[0]) for t in trajectories)
    middle = lengths[len(lengths) // 2]
    monkeypatch.setattr(sys, "argv", ["token_lengths.py", str(trajectory_file), "--model", "tiny", "--limits", f"0,{middle},{lengths[-1]}"])
    _script().main()
    out = capsys.readouterr().out
    assert f"max {lengths[-1]}" in out.splitlines()[0]
    assert "assistant turns: n 12" in out and "max 4" in out.splitlines()[1]
    assert "over 0: 12 of 12" in out
    assert f"over {middle}: {sum(n > middle for n in lengths)} of 12" in out
    assert f"over {lengths[-1]}: 0 of 12" in out
    assert "  unknown: n 12" in out
