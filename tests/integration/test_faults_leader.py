"""Redis faults around the master's recovery (issue #10): a recovery step
Redis answers with an error (LOADING) is retried, not skipped."""
import os
import signal
import socket
import subprocess

import redis

from conftest import free_port, wait_until
from test_jobs import handler, push, rconn


class OwnRedis:
    """A redis-server of the test's own, to kill and restart (persisted to
    an RDB in tmpdir)."""

    def __init__(self, tmpdir):
        self.port, self.dir, self.proc = free_port(), tmpdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.accepts, 10, what="redis-server listening")

    def accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    def loaded(self):
        try:
            return redis.Redis(port=self.port).ping()
        except (redis.BusyLoadingError, redis.ConnectionError):
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def test_worker_recovery_retries_while_redis_is_loading(forq, tmpdir_path):
    srv = OwnRedis(tmpdir_path)
    srv.start()
    try:
        r = rconn(srv.url)
        wait_until(srv.loaded, 10, what="redis")
        for k in range(0, 12000, 4000):          # a data set that loads slowly
            r.mset({f"pad:{i}": "x" for i in range(k, k + 4000)})
        marks = os.path.join(tmpdir_path, "runs")
        h = handler(tmpdir_path, "job.sh", f'echo x >> {marks}\n'
                    f'if [ "$(wc -l < {marks})" -ge 2 ]; then exit 0; fi\nsleep 60\n')
        f = forq(config=f'[forq]\nprocesses = 1\n[job "Slow"]\nexec = {h}\n',
                 env={"REDIS_URL": srv.url})
        workers = f.wait_workers(1, timeout=20)
        jid = push(srv.url, "Slow")
        wait_until(lambda: os.path.exists(marks), 10, what="the job running")
        r.save()                                 # its working list is in the RDB
        back = 'redis connected" conn=master'
        seen = len(f.lines(back))
        srv.kill()
        srv.start("--key-load-delay", "400", "--loading-process-events-interval-bytes", "1024")
        assert not srv.loaded()                  # answers LOADING for seconds
        f.wait_log(back, count=seen + 1, timeout=10)
        os.kill(workers[0][0], signal.SIGKILL)   # its lane is recovered while loading
        wait_until(srv.loaded, 30, what="redis loaded")
        # Not left in the lane as if it were empty: it runs again.
        f.wait_log(f"job done.* jid={jid}", timeout=20)
        assert f.lines("jobs of a dead worker recovered.* requeued=1")
        assert f.lines("recovery step failed; retrying.*LOADING")
    finally:
        srv.kill()
