"""Harness for whole-process tests: starts the real forq binary (and, for the
tests that need one, a real redis-server on a free loopback port), and stops
everything it started by pid. Nothing here uses pkill/killall."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FORQ_BUILD", os.path.join(ROOT, "build"))
FORQ = os.path.join(BUILD, "forq")
TESTPLUG = os.path.join(BUILD, "libforq_testplug.so")


def proc_children(pid):
    """Direct children of pid, from /proc."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def proc_title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for kid in proc_children(todo.pop()):
            out.append(kid)
            todo.append(kid)
    return out


def alive(pid):
    st = proc_state(pid)
    return st is not None and st != "Z"


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Forq:
    """One forq master started by a test, with its log captured to a file."""

    def __init__(self, tmpdir, args, env=None, config=None, wrap=None):
        self.tmpdir = tmpdir
        self.logpath = os.path.join(tmpdir, f"forq-{time.monotonic_ns()}.log")
        self.config_path = None
        argv = [FORQ] + list(args)
        if config is not None:
            # One file per node: a second node rewriting a shared file could
            # be read half-written by the first.
            self.config_path = os.path.join(tmpdir, f"forq-{time.monotonic_ns()}.ini")
            with open(self.config_path, "w") as f:
                f.write(config)
            argv += ["-C", self.config_path]
        if wrap:
            argv = list(wrap) + argv
        full_env = dict(os.environ)
        for k in list(full_env):
            if k.startswith("FORQ_") or k in ("REDIS_URL", "REDIS_PROVIDER"):
                del full_env[k]
        full_env.update(env or {})
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.seen = set()

    # -- observation --------------------------------------------------
    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def lines(self, pattern=None):
        rx = re.compile(pattern) if pattern else None
        return [l for l in self.text().splitlines() if not rx or rx.search(l)]

    def wait_log(self, pattern, count=1, timeout=10.0):
        return wait_until(lambda: len(self.lines(pattern)) >= count and self.lines(pattern),
                          timeout, what=f"{count}x /{pattern}/ in log:\n{self.text()[-3000:]}")

    def master_pid(self):
        """The forq master: the process itself, or (when wrapped) its child."""
        return self.pid

    def workers(self, master=None):
        """{slot: pid} of live workers, read from their process titles."""
        master = master or self.master_pid()
        out = {}
        for kid in proc_children(master):
            title = proc_title(kid) or ""
            m = re.match(r"forq: worker\[(\d+)\]", title)
            if m and alive(kid):
                self.seen.add(kid)
                out.setdefault(int(m.group(1)), []).append(kid)
        return out

    def worker_titles(self, master=None):
        master = master or self.master_pid()
        return sorted(t for t in (proc_title(k) for k in proc_children(master))
                      if t and t.startswith("forq: worker"))

    def wait_workers(self, n, timeout=10.0, state="idle"):
        def ok():
            titles = self.worker_titles()
            good = [t for t in titles if t.endswith(state)]
            return len(titles) == n and len(good) == n and self.workers()
        return wait_until(ok, timeout, what=f"{n} workers {state}; titles={self.worker_titles()}\n"
                          f"{self.text()[-2000:]}")

    def signal(self, sig):
        os.kill(self.master_pid(), sig)

    def wait_exit(self, timeout=15.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"forq did not exit in {timeout}s:\n{self.text()[-3000:]}")

    # -- cleanup --------------------------------------------------------
    def stop(self):
        known = set(self.seen)
        if self.proc.poll() is None:
            known.update(descendants(self.pid))
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        for pid in known:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not [p for p in known if alive(p)], 10, what="killed processes gone")
        self.log.close()


@pytest.fixture
def tmpdir_path():
    with tempfile.TemporaryDirectory(prefix="forq-test-") as d:
        yield d


@pytest.fixture
def forq(tmpdir_path, redis_server):
    """Factory: forq(args, env=..., config=...) -> Forq, stopped after the test.
    REDIS_URL points at this test's own redis-server unless env overrides it."""
    started = []

    def start(*args, env=None, config=None, wrap=None):
        env = dict({"REDIS_URL": redis_server}, **(env or {}))
        f = Forq(tmpdir_path, args, env=env, config=config, wrap=wrap)
        started.append(f)
        return f

    yield start
    for f in started:
        f.stop()
    for f in started:
        leftovers = [p for p in f.seen if alive(p)]
        assert not leftovers, f"processes left behind: {leftovers}"
        assert_no_sanitizer_report(f.text())


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def assert_no_sanitizer_report(text):
    """Under the ASan/UBSan build every process's stderr lands in the log;
    a report from any of them (a worker's leak at exit included) fails."""
    for mark in SANITIZER_MARKS:
        assert mark not in text, text[text.index(mark) - 200:][:4000]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server(tmpdir_path):
    """A throwaway redis-server on a free loopback port, stopped by pid."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", tmpdir_path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up():
            with socket.create_connection(("127.0.0.1", port), 0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        wait_until(lambda: _try(up), 10, what="redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _try(fn):
    try:
        return fn()
    except OSError:
        return False
