"""Append-only JSONL: readers never write; the file's writer cuts a torn tail before appending."""

from prismrl import ledger
from prismrl.fileio import JsonlAppender, read_jsonl_prefix, repair_jsonl


def test_reading_a_file_being_written_leaves_the_writers_line_alone(tmp_path):
    path = tmp_path / "probe.jsonl"
    whole = b'{"id": "a"}\n'
    half = b'{"id": "b", "sco'  # the writer is in the middle of this line
    path.write_bytes(whole + half)
    assert read_jsonl_prefix(path) == [{"id": "a"}]
    assert path.read_bytes() == whole + half


def test_the_writer_repairs_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\nnot json\n{"n": ')
    assert repair_jsonl(path) == [{"n": 1}, {"n": 2}]
    with JsonlAppender(path) as sink:
        sink.write({"n": 3})
    assert read_jsonl_prefix(path) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert repair_jsonl(tmp_path / "missing.jsonl") == [] and not (tmp_path / "missing.jsonl").exists()


def test_a_ledger_killed_mid_write_takes_the_next_phase_on_a_line_of_its_own(tmp_path):
    (tmp_path / ledger.LEDGER_FILE).write_text('{"phase": "sft", "wall_seconds": 1.0')
    with ledger.phase("eval", tmp_path, 10):
        pass
    assert [r["phase"] for r in read_jsonl_prefix(tmp_path / ledger.LEDGER_FILE)] == ["eval"]
