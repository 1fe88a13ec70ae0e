import os
import stat

import pytest

from tfrl.atomic import atomic_directory, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_directory_is_readable_by_others_as_mkdir_would_make_it(tmp_path, umask_022):
    # An export read by TF Serving running as another user needs 0755, not tempfile's 0700.
    target = tmp_path / "model" / "1"
    with atomic_directory(str(target)) as tmp, open(os.path.join(tmp, "saved_model.pb"), "w") as f:
        f.write("x")
    assert _mode(target) == 0o755


def test_atomic_file_gets_the_umask_mode_not_0600(tmp_path, umask_022):
    path = tmp_path / "results.md"
    atomic_write_text(str(path), "hello")
    assert path.read_text() == "hello"
    assert _mode(path) == 0o644


def test_failed_atomic_directory_leaves_nothing(tmp_path):
    target = tmp_path / "model" / "1"
    with pytest.raises(RuntimeError), atomic_directory(str(target)):
        raise RuntimeError("boom")
    assert not target.exists()
    assert os.listdir(tmp_path / "model") == []
