"""Redis faults around the leader's sweep and the master's recovery (issue
#10, defects 3, 4 and 9): a sweep stops writing the moment its lease or the
swept node's death is no longer true; a recovery step Redis answers with an
error (LOADING) is retried, not skipped; a stop that could not write its
outcomes says how many."""
import json
import os
import signal
import socket
import subprocess
import time

import redis

from conftest import free_port, wait_until
from test_jobs import handler, push, rconn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = "deadhost:4242:0123456789ab"  # a node that died with jobs in its lists
LANES, PER_LANE = 2, 30000
CFG = ("[forq]\nprocesses = 1\nshutdown_timeout = 2\nnode_dead_after = 2\n"
       "sweep_interval = 0.5\nleader_ttl = 2\nleader_renew = 0.5\n")


def lua(name):
    with open(os.path.join(ROOT, "src", "lua", name)) as f:
        return f.read()


def strand(r):
    """B is registered, its key is gone, its lanes hold many jobs of a queue
    no worker reads (so every move shows in queue:parked)."""
    r.sadd("forq:nodes", B)
    for lane in range(LANES):
        jobs = [json.dumps({"class": "Parked", "queue": "parked", "args": [i],
                            "jid": f"{lane:04x}{i:020x}"}) for i in range(PER_LANE)]
        for k in range(0, PER_LANE, 5000):
            r.lpush(f"forq:working:{B}:{lane}", *jobs[k:k + 5000])


def left(r):
    return [r.llen(f"forq:working:{B}:{lane}") for lane in range(LANES)]


def sweeping(r):
    """Waits until the sweep is moving B's jobs, mid-round."""
    wait_until(lambda: sum(left(r)) < LANES * PER_LANE, 30, interval=0.002,
               what="the sweep moving the dead node's jobs")


def test_lose_and_forget_write_nothing_for_a_stale_lease_or_a_live_node(redis_server):
    r = rconn(redis_server)
    job = '{"class":"X","queue":"q","jid":"j1"}'
    r.rpush(f"forq:working:{B}:0", job)
    r.set("forq:leader", "node-b|7")

    def lose(lease):
        return r.eval(lua("lose.lua"), 6, f"forq:working:{B}:0", "queues", "dead",
                      "forq:lost:j1", "forq:leader", f"forq:node:{B}", job, "q", "queue:",
                      "front", "0", "3", "60", "{}", "0", "0", "10", lease, "", "", "0", "0")

    def forget(lease):
        return r.eval(lua("forget.lua"), 5, "forq:leader", f"forq:node:{B}", "forq:nodes",
                      "forq:sweep:strikes", "processes", lease, B)

    r.sadd("forq:nodes", B)
    assert lose("node-a|6") == ["fenced", 0] and forget("node-a|6") == "fenced"
    r.set(f"forq:node:{B}", "1")
    assert lose("node-b|7") == ["alive", 0] and forget("node-b|7") == "alive"
    assert r.llen(f"forq:working:{B}:0") == 1 and r.sismember("forq:nodes", B)
    # A node's own lane (no lease) is not fenced: its key exists, and
    # another node leads.
    assert lose("") == ["requeued", 0] and r.lrange("queue:q", 0, -1) == [job]
    r.delete(f"forq:node:{B}")
    assert forget("node-b|7") == "forgotten" and not r.sismember("forq:nodes", B)


def test_leader_paused_mid_sweep_moves_nothing_after_its_lease_is_gone(forq, redis_server):
    r = rconn(redis_server)
    strand(r)
    a = forq(config=CFG)
    sweeping(r)
    os.kill(a.pid, signal.SIGSTOP)
    try:
        # Its lease runs out while it is stopped and another node takes it.
        wait_until(lambda: not r.exists("forq:leader"), 10, what="the lease to expire")
        r.set("forq:leader", "othernode:1:abc|999", px=60000)
        before, parked = left(r), r.llen("queue:parked")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    a.wait_log("leadership lost", timeout=10)
    time.sleep(1.0)
    assert left(r) == before and r.llen("queue:parked") == parked, (before, left(r))
    assert sum(before) > PER_LANE                # paused mid-round
    assert a.lines("no longer the leader|recovery of other nodes' jobs stopped")


def test_sweep_stops_when_the_swept_node_is_alive_again(forq, redis_server):
    r = rconn(redis_server)
    strand(r)
    a = forq(config=CFG)
    sweeping(r)
    r.set(f"forq:node:{B}", "back", px=60000)    # its master beats again
    time.sleep(0.3)                              # a call in flight may land
    before = left(r)
    time.sleep(1.0)
    assert left(r) == before, (before, left(r))
    assert a.lines("recovery of a node's jobs stopped: the node is alive again")
    assert r.sismember("forq:nodes", B)


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


def test_stop_without_redis_says_how_many_outcomes_were_not_written(forq, tmpdir_path):
    srv = OwnRedis(tmpdir_path)
    srv.start()
    try:
        wait_until(srv.loaded, 10, what="redis")
        h = handler(tmpdir_path, "job.sh", "sleep 2\n")
        f = forq(config=f'[forq]\nprocesses = 2\nshutdown_timeout = 1\n[job "Short"]\nexec = {h}\n',
                 env={"REDIS_URL": srv.url})
        f.wait_workers(2, timeout=20)
        jids = [push(srv.url, "Short") for _ in range(2)]
        f.wait_workers(2, state="busy Short", timeout=10)
        srv.kill()                               # the outcomes cannot be written
        for jid in jids:
            f.wait_log(f"job done.* jid={jid}", timeout=10)
        f.signal(signal.SIGTERM)
        assert f.wait_exit(20) == 0
        line = f.wait_log("outcomes not written", timeout=1)[0]
        assert "outcomes=2" in line and "after the orphan sweep" in line, line
    finally:
        srv.kill()
