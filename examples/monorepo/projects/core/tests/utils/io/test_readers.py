from core.utils.io import read_records, write_records


def test_round_trip(tmp_path):
    path = tmp_path / "records.yml"
    write_records(path, [{"id": 1, "name": "a"}])
    assert read_records(path) == [{"id": 1, "name": "a"}]


def test_empty_file_is_empty_list(tmp_path):
    path = tmp_path / "empty.yml"
    path.write_text("")
    assert read_records(path) == []
