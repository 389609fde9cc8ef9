"""The master's connection sends several commands before it is up (AUTH
and SELECT; with Sentinel also ROLE): their replies often come in one read,
and every one of them must be taken (they once stalled until the connect
timed out, so a password with a db other than 0 never connected)."""
import os
import subprocess
import tempfile

from conftest import free_port, wait_until


def test_master_connects_with_password_and_db(forq, tmpdir_path):
    port = free_port()
    d = tempfile.mkdtemp(dir=tmpdir_path)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--requirepass", "pw",
                             "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        f = forq("-P", "1", env={"REDIS_URL": f"redis://:pw@127.0.0.1:{port}/3"})
        f.wait_log(r"became leader", timeout=4)  # the connect timeout is 5 s
        assert not f.lines(r"connect timed out")
        assert "pw@" not in f.text()
    finally:
        proc.terminate()
        proc.wait(10)
