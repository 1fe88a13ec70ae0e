"""Runs the ```sh and ```python blocks of a Markdown file in order, as a new user would.

    python -m tests.docs.readme_runner README.md     # from the repository root

Every block runs in one fresh directory holding a copy of the repository (its
git-tracked and untracked, not ignored files), with `.venv` there pointing at
the running interpreter's environment and that environment's `bin/` first on
PATH, so `tfrl`, `python` and `.venv/bin/...` are the project's. A ```python
block is its own script; a ```sh block runs with `bash -e`. Other fence
languages never run. HTML comments on the lines right above a fence say how:

    <!-- readme-test: sub "OLD" "NEW" -->      replace text first (repeatable; OLD must occur)
    <!-- readme-test: background port=8501 --> start it, wait until 127.0.0.1:8501 accepts,
                                                stop its process group at the end
    <!-- readme-test: skip "reason" -->         never run it (a reason is required)

A ```sh block that runs `make` must be skipped (here `.venv` is the environment
running the tests, which `make` would reinstall). Scripts are padded so that line numbers
in tracebacks and in a failing shell command's report are the Markdown file's own.
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

__all__ = ["Block", "BlockFailed", "ReadmeError", "Session", "parse", "run_file"]

RUN_LANGUAGES = ("sh", "python")
BLOCK_TIMEOUT = 300.0  # seconds, per block
PORT_TIMEOUT = 120.0  # seconds a background block has to open its port
TAIL_LINES = 40

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)")
_ANNOTATION = re.compile(r"^\s*<!--\s*readme-test:(.*?)-->\s*$")
_MAKE = re.compile(r"^\s*make\b", re.M)
_FAILED_AT = re.compile(r"^readme-test: line (\d+): (.*)$", re.M)
# Outside git, never copied: the venv (linked instead), state of earlier runs.
_NOT_COPIED = {".git", ".venv", "runs", "saved_models", "__pycache__", ".pytest_cache"}


class ReadmeError(ValueError):
    """The Markdown's annotations are malformed (a bad annotation fails like a bad block)."""


class BlockFailed(AssertionError):
    """A block exited non-zero, timed out, or (background) never opened its port."""


@dataclasses.dataclass
class Block:
    """One fenced block: where it starts, its language, code and annotations."""

    path: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    subs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    port: int | None = None
    skip: str | None = None

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGUAGES and self.skip is None

    @property
    def name(self) -> str:
        return f"{os.path.basename(self.path)}:{self.line}-{self.lang}"

    def script(self) -> str:
        """The code after substitutions, padded so its lines keep their file numbers."""
        code = self.code
        for old, new in self.subs:
            code = code.replace(old, new)
        if self.lang == "sh":
            # Line 1 reports the failing command; the code starts on line self.line + 1.
            trap = "trap 'echo \"readme-test: line $LINENO: $BASH_COMMAND\" >&2' ERR"
            return trap + "\n" * self.line + code
        return "\n" * self.line + code


def _annotation(path: str, line: int, text: str, block: Block) -> None:
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ReadmeError(f"{path}:{line}: cannot read annotation {text.strip()!r}: {e}") from e
    kind, args = (words[0], words[1:]) if words else ("", [])
    if kind == "sub" and len(args) == 2:
        old, new = args
        if old not in block.code:
            raise ReadmeError(
                f"{path}:{line}: sub {old!r} does not occur in the block below it; "
                "update the annotation to the block's text."
            )
        block.subs.append((old, new))
    elif kind == "background" and len(args) == 1 and re.fullmatch(r"port=\d+", args[0]):
        block.port = int(args[0].split("=")[1])
    elif kind == "skip" and len(args) == 1 and args[0].strip():
        block.skip = args[0]
    else:
        raise ReadmeError(
            f"{path}:{line}: unknown annotation {text.strip()!r}; use "
            'sub "OLD" "NEW", background port=N or skip "reason".'
        )


def parse(text: str, path: str = "README.md") -> list[Block]:
    """Every fenced block of `text` with the annotations above it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: list[tuple[int, str]] = []  # annotations waiting for their fence
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        note = _ANNOTATION.match(lines[i])
        if note:
            pending.append((i + 1, note.group(1)))
            i += 1
            continue
        if not fence:
            if pending and lines[i].strip():
                raise ReadmeError(f"{path}:{pending[0][0]}: annotation is not right above a fence.")
            i += 1
            continue
        ticks, lang = fence.group(1), fence.group(2)
        end = i + 1
        while end < len(lines) and not lines[end].startswith(ticks):
            end += 1
        if end == len(lines):
            raise ReadmeError(f"{path}:{i + 1}: fence is never closed.")
        block = Block(path, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n")
        for line, note_text in pending:
            _annotation(path, line, note_text, block)
        if pending and lang not in RUN_LANGUAGES:
            raise ReadmeError(
                f"{path}:{pending[0][0]}: annotation above a ```{lang} block, which never runs."
            )
        if block.runs and block.lang == "sh" and _MAKE.search(block.code):
            raise ReadmeError(
                f"{path}:{block.line}: a ```sh block that runs `make` needs "
                '<!-- readme-test: skip "reason" -->: make installs into .venv, which here '
                "is the environment running the tests."
            )
        pending = []
        blocks.append(block)
        i = end + 1
    if pending:
        raise ReadmeError(f"{path}:{pending[0][0]}: annotation is not right above a fence.")
    return blocks


def _copy_repository(repo: str, dest: str) -> None:
    """Copies the files a fresh clone would have (tracked and untracked, not ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [f for f in listed.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(repo):
            dirs[:] = [d for d in dirs if d not in _NOT_COPIED and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(root, n), repo) for n in names]
    for rel in files:
        src = os.path.join(repo, rel)
        if not os.path.isfile(src):  # deleted but not yet committed
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def _tail(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def _stop(proc: subprocess.Popen) -> str:
    """Ends a block's whole process group; returns what it printed."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            out, _ = proc.communicate(timeout=wait)
            return out or ""
        except subprocess.TimeoutExpired:
            continue
    out, _ = proc.communicate()
    return out or ""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Session:
    """A fresh work directory in which a file's blocks run one after another.

    Args:
        repo: the repository to copy (the Markdown file's directory by default in
            `run_file`).
        block_timeout: seconds one block may take. Default `BLOCK_TIMEOUT`.
    """

    def __init__(self, repo: str, block_timeout: float = BLOCK_TIMEOUT):
        self.block_timeout = block_timeout
        self._tmp = tempfile.mkdtemp(prefix="readme-test-")
        self.workdir = os.path.join(self._tmp, "repo")
        self._scripts = os.path.join(self._tmp, "blocks")
        os.makedirs(self._scripts)
        _copy_repository(repo, self.workdir)
        os.symlink(sys.prefix, os.path.join(self.workdir, ".venv"))
        bin_dir = os.path.dirname(sys.executable)
        env = dict(os.environ)
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # show what a user sees
        env.update(
            PATH=bin_dir + os.pathsep + env.get("PATH", ""),
            VIRTUAL_ENV=sys.prefix,
            # The copy's package wins over an editable install of another checkout.
            PYTHONPATH=os.pathsep.join(filter(None, [self.workdir, env.get("PYTHONPATH")])),
            MPLBACKEND="Agg",
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        self._background: list[tuple[Block, subprocess.Popen]] = []

    def _command(self, block: Block) -> list[str]:
        script = os.path.join(self._scripts, f"line{block.line}.{block.lang}")
        with open(script, "w") as f:
            f.write(block.script())
        interpreter = ["bash", "-e"] if block.lang == "sh" else [sys.executable]
        return [*interpreter, script]

    def _popen(self, block: Block) -> subprocess.Popen:
        return subprocess.Popen(
            self._command(block),
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, stopped as one
        )

    def _failure(self, block: Block, why: str, output: str) -> BlockFailed:
        where = f"{block.path}:{block.line}"
        failed_at = _FAILED_AT.findall(output)
        if failed_at:
            line, command = failed_at[-1]
            where = f"{block.path}:{line}"
            why += f" at `{command}`"
        return BlockFailed(
            f"{where}: the ```{block.lang} block starting on line {block.line} {why}.\n"
            f"--- its output (last {TAIL_LINES} lines) ---\n{_tail(output)}"
        )

    def run(self, block: Block) -> str:
        """Runs one block (nothing if it does not run); returns its output."""
        if not block.runs:
            return ""
        if block.port is not None and _port_open(block.port):
            raise BlockFailed(
                f"{block.path}:{block.line}: port {block.port} is already in use, so this "
                "background block's server could not be told apart from another; free it."
            )
        proc = self._popen(block)
        if block.port is not None:
            return self._wait_for_port(block, proc)
        try:
            out, _ = proc.communicate(timeout=self.block_timeout)
        except subprocess.TimeoutExpired:
            out = _stop(proc)
            raise self._failure(block, f"ran over {self.block_timeout:.0f} s", out) from None
        if proc.returncode != 0:
            raise self._failure(block, f"exited with status {proc.returncode}", out)
        return out

    def _wait_for_port(self, block: Block, proc: subprocess.Popen) -> str:
        self._background.append((block, proc))
        deadline = time.monotonic() + PORT_TIMEOUT
        while not _port_open(block.port):
            if proc.poll() is not None:
                out, _ = proc.communicate()
                raise self._failure(
                    block,
                    f"exited with status {proc.returncode} before port {block.port} "
                    "accepted connections",
                    out,
                )
            if time.monotonic() > deadline:
                raise self._failure(
                    block,
                    f"did not open port {block.port} within {PORT_TIMEOUT:.0f} s",
                    _stop(proc),
                )
            time.sleep(0.2)
        return ""

    def close(self) -> None:
        """Stops background blocks and removes the work directory."""
        while self._background:
            _, proc = self._background.pop()
            if proc.poll() is None:
                _stop(proc)
            else:
                proc.communicate()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_file(path: str, repo: str | None = None, block_timeout: float = BLOCK_TIMEOUT) -> None:
    """Runs every block of the Markdown file at `path` in order; raises at the first failure."""
    with open(path) as f:
        blocks = parse(f.read(), path)
    with Session(repo or os.path.dirname(os.path.abspath(path)), block_timeout) as session:
        for block in blocks:
            if block.runs:
                start, cpu = time.perf_counter(), _children_cpu()
                session.run(block)
                print(
                    f"{block.name}: ok in {time.perf_counter() - start:.1f} s "
                    f"({_children_cpu() - cpu:.1f} s CPU)",
                    flush=True,
                )


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["README.md"]:
        run_file(arg)
