"""The assured-execution chaos test (bounded to about a minute): 20,000 jobs
record their jid in Redis while workers are SIGKILLed at random every
~100 ms, one whole node is SIGKILLed while a second keeps running, and
Redis (append-only file, fsync always) is restarted once. Every jid must be
recorded: zero lost. Duplicates are counted and printed."""
import json
import os
import random
import signal
import subprocess
import time

import redis

from conftest import TESTPLUG, alive, free_port, proc_children, proc_title, wait_until

JOBS = 20_000


class AofRedis:
    def __init__(self, workdir):
        self.port, self.dir = free_port(), workdir
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 20, what="redis-server")

    def ping(self):
        try:
            return redis.Redis(port=self.port).ping()
        except redis.ConnectionError:
            return False

    def restart(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)


def workers_of(master):
    return [k for k in proc_children(master) if (proc_title(k) or "").startswith("forq: worker")]


def test_chaos_no_job_is_lost(forq, tmpdir_path):
    rds = AofRedis(tmpdir_path)
    try:
        run_chaos(forq, rds)
    finally:
        rds.stop()


def run_chaos(forq, rds):
    url = f"redis://127.0.0.1:{rds.port}/0"
    env = {"REDIS_URL": url, "FORQ_TEST_RECORD_PORT": str(rds.port), "FORQ_TEST_RECORD_MS": "2"}
    cfg = ("[forq]\nprocesses = 4\nnode_dead_after = 3\nsweep_interval = 0.5\nshutdown_timeout = 5\n"
           "leader_ttl = 3\nleader_renew = 1\n")
    a = forq("--prefork", "-r", TESTPLUG, "--log-level", "warn", env=env, config=cfg)
    b = forq("--prefork", "-r", TESTPLUG, "--log-level", "warn", env=env, config=cfg)
    a.wait_workers(4)
    b.wait_workers(4)
    r = redis.Redis(port=rds.port, decode_responses=True)
    pipe = r.pipeline(transaction=False)
    now = time.time()
    jobs = [json.dumps({"retry": True, "queue": "default", "class": "TestJob",
                        "args": ["record", i], "jid": f"{i:024x}", "created_at": now,
                        "enqueued_at": now}) for i in range(JOBS)]
    for i in range(0, JOBS, 1000):
        pipe.lpush("queue:default", *jobs[i:i + 1000])
    pipe.sadd("queues", "default")
    pipe.execute()

    rng = random.Random(1234)
    t0 = time.monotonic()
    killed_node = restarted = False
    kills = 0
    while time.monotonic() - t0 < 15:
        time.sleep(rng.uniform(0.05, 0.15))
        masters = [b.pid] if killed_node else [a.pid, b.pid]
        victims = [w for m in masters for w in workers_of(m)]
        if victims:
            try:
                os.kill(rng.choice(victims), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        if not killed_node and time.monotonic() - t0 > 3:
            for pid in [a.pid] + proc_children(a.pid):   # node A dies whole
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed_node = True
        if not restarted and time.monotonic() - t0 > 6:
            rds.restart()
            restarted = True

    def finished():
        try:
            if r.llen("queue:default"):
                return False
            if any(r.llen(k) for k in r.scan_iter("forq:working:*")):
                return False
            return r.scard("chaos:seen") >= JOBS
        except redis.ConnectionError:
            return False
    try:
        wait_until(finished, 60, interval=0.2, what="every job recorded")
    finally:
        seen = r.scard("chaos:seen")
        runs = sum(int(v) for v in r.hvals("chaos:runs"))
        dead = r.zcard("dead")
        print(f"\nchaos: {JOBS} jobs, {kills} worker kills, node A killed, redis restarted; "
              f"recorded {seen}, lost {JOBS - seen}, runs {runs}, duplicates {runs - seen}, "
              f"poison pills in dead {dead}, {time.monotonic() - t0:.1f} s")
    assert seen == JOBS
    assert alive(b.pid)
    # B leads once A's lease lapses and then sweeps A, whether or not A still
    # had jobs in flight when it died.
    b.wait_log("node stopped beating; recovering its jobs", timeout=30)
