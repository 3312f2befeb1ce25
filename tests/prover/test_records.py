"""`prover/records.py`: append-only JSONL results survive a run killed mid-write."""

from __future__ import annotations

from prover.records import ResultsWriter, read_results


def test_a_record_written_after_a_torn_line_is_kept(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"theorem": "a"}\n{"theorem": "b", "sta', encoding="utf-8")  # killed mid-write
    writer = ResultsWriter(path)
    writer.write({"theorem": "b"})
    writer.close()
    assert read_results(path) == [{"theorem": "a"}, {"theorem": "b"}]
    writer = ResultsWriter(path)  # a whole last line is left alone
    writer.write({"theorem": "c"})
    writer.close()
    assert read_results(path) == [{"theorem": "a"}, {"theorem": "b"}, {"theorem": "c"}]


def test_a_new_file_starts_with_the_first_record(tmp_path):
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    writer.write({"theorem": "a"})
    writer.close()
    assert path.read_text(encoding="utf-8") == '{"theorem": "a"}\n'
