import pytest

from saematch.atomic import atomic_write, atomic_write_text


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "x.json"
    atomic_write_text(path, "old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_text_mode_honours_newline(tmp_path):
    path = atomic_write(tmp_path / "t.csv", lambda f: f.write("a\r\nb\n"), text=True, newline="")
    assert path.read_bytes() == b"a\r\nb\n"
