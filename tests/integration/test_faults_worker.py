"""Redis faults seen by a worker (issue 10, defects 1, 2 and 8): an error
reply keeps the finished outcomes, a fetch whose reply was lost does not
strand its job, and an orphaned worker with Redis gone gives up after
shutdown_timeout. Each test starts a redis-server of its own."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest
import redis

from conftest import alive, free_port, wait_until
from test_jobs import handler


class OwnRedis:
    """A redis-server on a free loopback port, stopped by pid."""

    def __init__(self, workdir, *extra):
        self.port, self.dir, self.extra = free_port(), workdir, list(extra)
        self.proc = None
        self.start()

    def start(self, *more, wait=True):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--repl-diskless-sync-delay", "0",
             *self.extra, *more],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait:
            wait_until(self.ready, 20, what="redis-server")

    def ready(self):
        try:
            return self.conn().ping()
        except redis.RedisError:
            return False

    def conn(self):
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def own_redis(tmpdir_path):
    started = []

    def start(*extra, sub="a"):
        d = os.path.join(tmpdir_path, sub)
        os.makedirs(d, exist_ok=True)
        started.append(OwnRedis(d, *extra))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def push(r, cls, jid):
    now = time.time()
    r.lpush("queue:default", json.dumps({"retry": True, "queue": "default", "class": cls,
                                         "args": [], "jid": jid, "created_at": now,
                                         "enqueued_at": now}))
    r.sadd("queues", "default")


def working_jobs(r):
    return sum(r.llen(k) for k in r.scan_iter("forq:working:*"))


def runs(path):
    return open(path).read().split() if os.path.exists(path) else []


# ---- defect 1: an error reply keeps the finished outcomes -------------------

def fault_noreplicas(rds, own_redis):
    rds.conn().config_set("min-replicas-to-write", 1)
    return lambda: rds.conn().config_set("min-replicas-to-write", 0)


def fault_busy(rds, own_redis):
    """A read-only script of another client runs past busy-reply-threshold."""
    rds.conn().config_set("busy-reply-threshold", 100)
    spin = ("local function now() local t = redis.call('TIME') return t[1] * 1e6 + t[2] end "
            "local t0 = now() while now() - t0 < 2500000 do end return 1")
    t = threading.Thread(target=lambda: rds.conn().eval(spin, 0))
    t.start()
    time.sleep(0.3)
    return t.join


def fault_readonly(rds, own_redis):
    """A failover the wrong way round: rds becomes a replica of a copy of itself."""
    copy = own_redis(sub="copy")
    c = copy.conn()
    c.replicaof("127.0.0.1", rds.port)
    wait_until(lambda: c.info("replication")["master_link_status"] == "up", 20, what="sync")
    c.replicaof("no", "one")
    rds.conn().replicaof("127.0.0.1", copy.port)
    return lambda: rds.conn().replicaof("no", "one")


def fault_loading(rds, own_redis):
    """A restart with persistence whose load takes about two seconds."""
    r = rds.conn()
    r.execute_command("DEBUG", "POPULATE", 2000, "filler")
    r.save()
    rds.stop()
    rds.start("--key-load-delay", "1000", "--loading-process-events-interval-bytes", "1024",
              wait=False)
    return lambda: wait_until(rds.ready, 30, what="redis loaded")


@pytest.mark.parametrize("fault", [fault_noreplicas, fault_busy, fault_readonly, fault_loading],
                         ids=["NOREPLICAS", "BUSY", "READONLY", "LOADING"])
def test_error_reply_keeps_finished_outcomes(forq, own_redis, tmpdir_path, fault):
    rds = own_redis("--enable-debug-command", "local")
    r = rds.conn()
    started, go, ran = (os.path.join(tmpdir_path, n) for n in ("started", "go", "ran"))
    h = handler(tmpdir_path, "fail.sh", f"touch {started}\nwhile [ ! -e {go} ]; do sleep 0.05; done\n"
                f"echo $FORQ_JID >> {ran}\nexit 1\n")
    f = forq(env={"REDIS_URL": rds.url},
             config=f'[forq]\nprocesses = 1\n[job "Fails"]\nexec = {h}\n')
    f.wait_workers(1)
    push(r, "Fails", "a" * 24)
    wait_until(lambda: os.path.exists(started), 10, what="job started")
    end = fault(rds, own_redis)
    open(go, "w").close()            # the job fails: its retry is written into the fault
    time.sleep(2.0)
    end()
    r = rds.conn()
    wait_until(lambda: not working_jobs(r) and r.zcard("retry") == 1, 20,
               what=f"the retry recorded:\n{f.text()[-3000:]}")
    assert runs(ran) == ["a" * 24]
    assert f.lines("redis unavailable; reconnecting with backoff")
    assert not f.lines("batch script failed")


# ---- defect 2: a fetch whose reply was lost --------------------------------

def test_lost_fetch_reply_does_not_strand_the_job(forq, own_redis, tmpdir_path):
    """DEBUG SLEEP inside MULTI, after the LPUSH that wakes the blocked worker:
    Redis moves the job into the working list only after the worker's 5 s
    timeout, and the reply is lost."""
    rds = own_redis("--enable-debug-command", "local")
    ran = os.path.join(tmpdir_path, "ran")
    h = handler(tmpdir_path, "rec.sh", f"echo $FORQ_JID >> {ran}\n")
    f = forq(env={"REDIS_URL": rds.url},
             config=f'[forq]\nprocesses = 1\n[job "Rec"]\nexec = {h}\n')
    f.wait_workers(1)
    time.sleep(0.5)                  # blocked in BRPOPLPUSH
    r = rds.conn()
    t0 = time.monotonic()
    pipe = r.pipeline(transaction=True)
    push(pipe, "Rec", "b" * 24)
    pipe.execute_command("DEBUG", "SLEEP", "6")
    pipe.execute()
    wait_until(lambda: runs(ran), 12, what=f"the job run:\n{f.text()[-3000:]}")
    assert time.monotonic() - t0 < 14
    wait_until(lambda: not working_jobs(r), 10, what="the job acknowledged")
    assert runs(ran) == ["b" * 24] and r.llen("queue:default") == 0
    assert f.lines(r"job found in the working list; running it.* jid=b{24}")


# ---- defect 8: an orphaned worker with Redis gone --------------------------

def test_orphaned_worker_with_redis_gone_gives_up(forq, own_redis, tmpdir_path):
    rds = own_redis()
    r = rds.conn()
    h = handler(tmpdir_path, "slow.sh", f"touch {tmpdir_path}/s.$FORQ_JID\nsleep 1.5\n")
    f = forq(env={"REDIS_URL": rds.url},
             config=f'[forq]\nprocesses = 2\nshutdown_timeout = 4\n[job "Slow"]\nexec = {h}\n')
    workers = [p for pids in f.wait_workers(2).values() for p in pids]
    for jid in ("c" * 24, "d" * 24):
        push(r, "Slow", jid)
    wait_until(lambda: len([n for n in os.listdir(tmpdir_path) if n.startswith("s.")]) == 2,
               10, what="both jobs started")
    rds.stop()
    os.kill(f.pid, signal.SIGKILL)   # only the master: the workers are orphans
    f.wait_log("worker stopping", count=2, timeout=5)   # TERMed as their parent died
    time.sleep(1.5)                  # each sees that it is an orphan (checked each second)
    os.kill(workers[0], signal.SIGTERM)   # a TERM while stopping ends it now
    wait_until(lambda: not alive(workers[0]), 3, what="the TERMed orphan exits")
    assert alive(workers[1])              # the other waits for shutdown_timeout...
    wait_until(lambda: not alive(workers[1]), 9, what="the other orphan exits")
    assert len(f.lines("master gone: stopping, giving up on redis")) == 2
    gave_up = f.lines("orphaned worker gives up on redis")
    assert len(gave_up) == 2 and all("outcomes_not_written=1" in l for l in gave_up), f.text()
