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


def test_a_folder_is_replaced_whole_or_left_as_it_was(tmp_path):
    import pytest

    from prismrl.fileio import atomic_dir

    target = tmp_path / "final"
    with atomic_dir(target) as staging:
        (staging / "weights").write_text("v1")
    assert (target / "weights").read_text() == "v1"
    with pytest.raises(RuntimeError), atomic_dir(target) as staging:
        (staging / "weights").write_text("half of v2")
        raise RuntimeError("killed mid-save")
    assert (target / "weights").read_text() == "v1"
    with atomic_dir(target) as staging:
        (staging / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]  # no staging or old copy left
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)
