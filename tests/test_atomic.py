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


def test_temp_files_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    """A writer killed mid-write (here SIGKILL) left its temp file forever; the next write of
    the same file removes it, and leaves live writers' and recent unknown temp files alone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "entry.json"
    code = (
        "import sys, time\n"
        "from saematch.atomic import atomic_write\n"
        "def write(f):\n"
        "    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(600)\n"
        "atomic_write(sys.argv[1], write)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "writing"
    (left,) = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    unknown = tmp_path / ".entry.json.abc123.tmp"  # a temp file this code cannot attribute
    unknown.write_text("?")
    hour_ago = time.time() - 3600
    for p in (left, unknown):
        os.utime(p, (hour_ago, hour_ago))
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert not left.exists()  # its writer is dead
    assert unknown.exists()  # may be another machine's live writer: kept for a day
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(unknown, (day_ago, day_ago))
    atomic_write_text(path, "newer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.json"]


def test_a_live_writers_temp_file_is_kept(tmp_path):
    import os
    import time

    from saematch.atomic import host_tag, is_stale_temp

    live = tmp_path / f".x.json.saematch-{os.getppid()}@{host_tag()}.abcd1234.tmp"
    live.write_text("writing")
    old = time.time() - 3600
    os.utime(live, (old, old))
    assert not is_stale_temp(live)
