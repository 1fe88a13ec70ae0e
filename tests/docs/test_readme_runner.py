import os
import pathlib
import socket
import time

import pytest

from tests.docs.readme_runner import BlockFailed, ReadmeError, Session, parse, run_file

FENCE = "```"


def write(tmp_path, text):
    path = tmp_path / "GUIDE.md"
    path.write_text(text.replace("'''", FENCE))
    return str(path)


def test_blocks_run_in_order_in_one_directory_with_subs(tmp_path):
    path = write(
        tmp_path,
        """# Guide

'''sh
echo first > order.txt
'''

<!-- readme-test: sub "steps=100000" "steps=3" -->
'''python
steps=100000
with open("order.txt", "a") as f:
    f.write(f"second {steps}\\n")
'''

'''text
this is output and never runs: exit 1
'''

<!-- readme-test: skip "needs a GPU" -->
'''sh
exit 1
'''

'''sh
grep -x "second 3" order.txt
test -x .venv/bin/python && command -v tfrl
'''
""",
    )
    blocks = parse(pathlib.Path(path).read_text(), path)
    assert [(b.line, b.lang, b.runs) for b in blocks] == [
        (3, "sh", True),
        (8, "python", True),
        (14, "text", False),
        (19, "sh", False),
        (23, "sh", True),
    ]
    assert blocks[3].skip == "needs a GPU"
    run_file(path, repo=str(tmp_path))


def test_a_broken_snippet_fails_with_its_line_and_output(tmp_path):
    path = write(
        tmp_path,
        """Intro.

'''sh
echo fine
echo about to fail
ls no-such-file
echo never printed
'''
""",
    )
    with pytest.raises(BlockFailed) as e:
        run_file(path, repo=str(tmp_path))
    message = str(e.value)
    assert message.startswith(f"{path}:6: the {FENCE}sh block starting on line 3 exited")
    assert "at `ls no-such-file`" in message
    assert "about to fail" in message and "never printed" not in message


def test_a_broken_python_snippet_fails_with_its_traceback_line(tmp_path):
    path = write(tmp_path, "'''python\nimport os\n\nos.no_such_thing\n'''\n")
    with pytest.raises(BlockFailed, match=r"exited with status 1") as e:
        run_file(path, repo=str(tmp_path))
    assert "line 4, in <module>" in str(e.value)
    assert "has no attribute 'no_such_thing'" in str(e.value)


def test_a_block_over_its_time_is_stopped(tmp_path):
    path = write(tmp_path, "'''sh\nsleep 60\n'''\n")
    start = time.monotonic()
    with pytest.raises(BlockFailed, match=r"ran over 1 s"):
        run_file(path, repo=str(tmp_path), block_timeout=1)
    assert time.monotonic() - start < 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_background_block_serves_later_blocks_and_is_stopped(tmp_path):
    port = free_port()
    path = write(
        tmp_path,
        f"""<!-- readme-test: background port={port} -->
'''sh
echo $$ > server.pid
python -m http.server {port} --bind 127.0.0.1
'''

'''sh
curl -sf http://127.0.0.1:{port}/server.pid > /dev/null
'''
""",
    )
    blocks = parse(pathlib.Path(path).read_text(), path)
    with Session(str(tmp_path)) as session:
        for block in blocks:
            session.run(block)
        pid = int(pathlib.Path(session.workdir, "server.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- readme-test: sub \"absent\" \"x\" -->\n'''sh\necho\n'''\n", "does not occur"),
        ("<!-- readme-test: skip -->\n'''sh\necho\n'''\n", "unknown annotation"),
        ("<!-- readme-test: background -->\n'''sh\necho\n'''\n", "unknown annotation"),
        ("<!-- readme-test: skip \"x\" -->\n\nText.\n'''sh\necho\n'''\n", "not right above"),
        ("<!-- readme-test: skip \"x\" -->\n'''text\nout\n'''\n", "never runs"),
        ("'''sh\necho\n", "never closed"),
        ("'''sh\nmake demo\n'''\n", "runs `make` needs"),
    ],
)
def test_malformed_annotations_are_errors(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ReadmeError, match=message):
        parse(pathlib.Path(path).read_text(), path)


def test_background_port_already_in_use_is_an_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write(
            tmp_path, f"<!-- readme-test: background port={port} -->\n'''sh\nsleep 9\n'''\n"
        )
        with pytest.raises(BlockFailed, match=f"port {port} is already in use"):
            run_file(path, repo=str(tmp_path))
