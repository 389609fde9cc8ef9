"""The assured-execution chaos test (bounded to about a minute): 20,000 jobs
record their jid in files while Redis first answers BUSY for a while
(another client's long script) and then stalls past the workers' 5 s
timeout (DEBUG SLEEP: the replies of the calls it then runs are lost), and
afterwards workers are SIGKILLed at random every ~100 ms, one whole node is
SIGKILLed while a second keeps running, and Redis (append-only file, fsync
always) is restarted once. No job may sit in a working list after the
faults, and every jid must be recorded: zero lost. Duplicates are counted
and printed."""
import json
import os
import random
import signal
import subprocess
import threading
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
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
             "--busy-reply-threshold", "100", "--enable-debug-command", "local"],
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

    def in_background(self, *command):
        """Runs command on a connection of its own; returns the thread."""
        t = threading.Thread(target=redis.Redis(port=self.port, socket_timeout=30).execute_command,
                             args=command)
        t.start()
        return t

    def busy(self, seconds):
        """A read-only script that keeps Redis answering BUSY for seconds."""
        spin = ("local function now() local t = redis.call('TIME') return t[1] * 1e6 + t[2] end "
                "local t0 = now() while now() - t0 < tonumber(ARGV[1]) do end return 1")
        return self.in_background("EVAL", spin, 0, int(seconds * 1e6))


def workers_of(master):
    return [k for k in proc_children(master) if (proc_title(k) or "").startswith("forq: worker")]


def in_working_lists(r):
    return {(k, job) for k in r.scan_iter("forq:working:*") for job in r.lrange(k, 0, -1)}


def recorded(rec_dir):
    """(distinct jids, runs) recorded by the jobs."""
    jids = []
    for name in os.listdir(rec_dir):
        with open(os.path.join(rec_dir, name)) as f:
            jids += f.read().split()
    return len(set(jids)), len(jids)


def redis_faults(rds, r, enqueue):
    """BUSY, then a stall whose replies are lost, each while jobs flow. Jobs
    take 2 ms: any job still in a working list 3 s after the faults is
    stranded (an outcome thrown away, a fetch nobody knows of) and would
    wait for its worker to exit."""
    enqueue(3000)
    time.sleep(0.3)
    rds.busy(1.0).join()
    time.sleep(2.5)                  # the workers' backoff ends: they fetch again
    enqueue(3000)
    time.sleep(0.1)
    stall = rds.in_background("DEBUG", "SLEEP", "5.5")
    time.sleep(6.5)
    stall.join()
    before = in_working_lists(r)
    time.sleep(3)
    stranded = before & in_working_lists(r)
    assert not stranded, f"{len(stranded)} jobs stranded: {sorted(stranded)[:5]}"


def test_chaos_no_job_is_lost(forq, tmpdir_path):
    rds = AofRedis(tmpdir_path)
    try:
        run_chaos(forq, rds, os.path.join(tmpdir_path, "runs"))
    finally:
        rds.stop()


def run_chaos(forq, rds, rec_dir):
    url = f"redis://127.0.0.1:{rds.port}/0"
    os.mkdir(rec_dir)
    env = {"REDIS_URL": url, "FORQ_TEST_RECORD_DIR": rec_dir, "FORQ_TEST_RECORD_MS": "2"}
    cfg = ("[forq]\nprocesses = 4\nnode_dead_after = 3\nsweep_interval = 0.5\nshutdown_timeout = 5\n"
           "leader_ttl = 3\nleader_renew = 1\n")
    a = forq("--prefork", "-r", TESTPLUG, "--log-level", "warn", env=env, config=cfg)
    b = forq("--prefork", "-r", TESTPLUG, "--log-level", "warn", env=env, config=cfg)
    a.wait_workers(4)
    b.wait_workers(4)
    r = redis.Redis(port=rds.port, decode_responses=True)
    now = time.time()
    jobs = [json.dumps({"retry": True, "queue": "default", "class": "TestJob",
                        "args": ["record", i], "jid": f"{i:024x}", "created_at": now,
                        "enqueued_at": now}) for i in range(JOBS)]

    def enqueue(n):
        pipe = r.pipeline(transaction=False)
        for i in range(0, min(n, len(jobs)), 1000):
            pipe.lpush("queue:default", *jobs[i:min(i + 1000, n)])
        pipe.sadd("queues", "default")
        pipe.execute()
        del jobs[:n]

    redis_faults(rds, r, enqueue)
    enqueue(len(jobs))               # the rest for the kills
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
            return recorded(rec_dir)[0] >= JOBS
        except redis.ConnectionError:
            return False
    try:
        wait_until(finished, 60, interval=0.2, what="every job recorded")
    finally:
        seen, runs = recorded(rec_dir)
        dead = r.zcard("dead")
        print(f"\nchaos: {JOBS} jobs, redis busy and stalled, {kills} worker kills, node A killed, "
              f"redis restarted; "
              f"recorded {seen}, lost {JOBS - seen}, runs {runs}, duplicates {runs - seen}, "
              f"poison pills in dead {dead}, {time.monotonic() - t0:.1f} s after the faults; "
              f"jobs adopted after lost replies "
              f"{len(a.lines('job found in the working list') + b.lines('job found in the working list'))}")
    assert seen == JOBS
    assert alive(b.pid)
    # B leads once A's lease lapses and then sweeps A, whether or not A still
    # had jobs in flight when it died.
    b.wait_log("node stopped beating; recovering its jobs", timeout=30)
