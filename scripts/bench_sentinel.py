"""The sentinel section of scripts/bench: one master, one replica and three
sentinels (quorum 2) on free loopback ports, forq on redis+sentinel://.

  - time from the master's SIGKILL until the replica is promoted, and until
    forq runs a job pushed after the kill (a Sentinel client pushes one every
    10 ms), with down-after-milliseconds 1000 (3 runs) and with Sentinel's
    default 30000 (1 run, ~35 s)
  - NoopJob jobs/s with min_replicas = 0 and = 1, interleaved, median of 3
"""
import json
import os
import signal
import statistics
import subprocess
import threading
import time

import redis
import redis.sentinel

NAME = "mymaster"


class Cluster:
    def __init__(self, tmp, free_port, down_after_ms):
        self.tmp, self.procs = tmp, []
        self.master_port = self._redis(free_port(), "master")
        self.replica_port = self._redis(free_port(), "replica", "--replicaof", "127.0.0.1",
                                        str(self.master_port))
        self._wait(lambda: redis.Redis(port=self.replica_port).info("replication")[
            "master_link_status"] == "up", 10, "replica linked")
        self.sentinel_ports = []
        for i in range(3):
            port = free_port()
            conf = os.path.join(tmp, f"sentinel{i}.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                        f"sentinel monitor {NAME} 127.0.0.1 {self.master_port} 2\n"
                        f"sentinel down-after-milliseconds {NAME} {down_after_ms}\n"
                        f"sentinel failover-timeout {NAME} 10000\n")
            self.procs.append(subprocess.Popen(["redis-sentinel", conf],
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
            self.sentinel_ports.append(port)
        self._wait(self._ready, 30, "sentinels ready")
        self.url = (f"redis+sentinel://{','.join(f'127.0.0.1:{p}' for p in self.sentinel_ports)}"
                    f"/{NAME}/0")
        self.r = redis.Redis(port=self.master_port)  # drain()'s client

    def _redis(self, port, name, *extra):
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", d, *extra],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        if name == "master":
            self.master = p
        self._wait(lambda: redis.Redis(port=port).ping(), 10, name)
        return port

    @staticmethod
    def _wait(pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if pred():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for {what}")

    def _ready(self):
        for p in self.sentinel_ports:
            s = redis.Redis(port=p, decode_responses=True)
            if len(s.execute_command("SENTINEL", "SENTINELS", NAME)) != 2:
                return False
            if not s.execute_command("SENTINEL", "REPLICAS", NAME):
                return False
        return redis.Redis(port=self.replica_port).info("replication")[
            "master_link_status"] == "up"

    def client(self):
        s = redis.sentinel.Sentinel([("127.0.0.1", p) for p in self.sentinel_ports],
                                    socket_timeout=1)
        return s.master_for(NAME, socket_timeout=1)

    def promoted(self):
        s = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        addr = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME)
        return addr and addr[1] == str(self.replica_port)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)


def recorded(rec):
    out = set()
    for name in os.listdir(rec):
        with open(os.path.join(rec, name)) as f:
            out.update(f.read().split())
    return out


def failover_time(bench, build, tmp, down_after_ms):
    """(seconds to promotion, seconds until a job pushed after the kill ran)."""
    c = Cluster(tmp, bench.free_port, down_after_ms)
    rec = os.path.join(tmp, "runs")
    os.mkdir(rec)
    f = bench.Forq(build, ["-P", "2", "--prefork", "-r",
                           os.path.join(build, "libforq_testplug.so"), "--log-level", "warn"],
                   {"REDIS_URL": c.url, "FORQ_TEST_RECORD_DIR": rec}, tmp)
    pushed = {}  # jid -> monotonic time pushed
    stop = threading.Event()

    def pusher():
        r, n = c.client(), 0
        while not stop.is_set():
            jid = f"{n:024x}"
            job = json.dumps({"retry": True, "queue": "default", "class": "TestJob",
                              "args": ["record"], "jid": jid, "created_at": time.time(),
                              "enqueued_at": time.time()})
            try:
                r.lpush("queue:default", job)
                pushed[jid] = time.monotonic()
                n += 1
            except redis.RedisError:
                pass
            time.sleep(0.01)

    t = threading.Thread(target=pusher, daemon=True)
    try:
        f.wait_idle(2)
        t.start()
        time.sleep(1)
        c.master.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        c._wait(c.promoted, 120, "promotion")
        promoted = time.monotonic() - t0

        def flowing():
            done = recorded(rec)
            return any(jid in done for jid, at in list(pushed.items()) if at > t0)
        c._wait(flowing, 120, "jobs flowing again")
        return promoted, time.monotonic() - t0
    finally:
        stop.set()
        t.join(5)
        f.stop()
        c.stop()


def run(bench, build, tmp):
    fast = []
    for i in range(3):
        d = os.path.join(tmp, f"fast{i}")
        os.mkdir(d)
        fast.append(failover_time(bench, build, d, 1000))
    print("sentinel failover, down-after-milliseconds 1000, SIGKILL of the master: replica "
          f"promoted after median {statistics.median(p for p, _ in fast):.1f} s, forq runs jobs "
          f"again after median {statistics.median(j for _, j in fast):.1f} s (runs: "
          f"{', '.join(f'{j:.1f}' for _, j in fast)})")
    d = os.path.join(tmp, "default")
    os.mkdir(d)
    p, j = failover_time(bench, build, d, 30000)
    print(f"sentinel failover, default down-after-milliseconds 30000: replica promoted after "
          f"{p:.1f} s, forq runs jobs again after {j:.1f} s")

    d = os.path.join(tmp, "replicas")
    os.mkdir(d)
    c = Cluster(d, bench.free_port, 1000)
    noop = os.path.join(build, "plugins", "libforq_noop.so")
    rates = {0: [], 1: []}
    try:
        for _ in range(3):
            for n in (0, 1):
                cfg = f"[forq]\nmin_replicas = {n}\n"
                rates[n].append(bench.drain(build, c, d, 50_000, ["--prefork", "-r", noop],
                                            config=cfg))
    finally:
        c.stop()
    for n in (0, 1):
        print(f"NoopJob throughput over redis+sentinel://, 50,000 jobs, --processes 2, "
              f"min_replicas = {n}: median {statistics.median(rates[n]):,.0f} jobs/s (runs: "
              f"{', '.join(f'{x:,.0f}' for x in rates[n])})")
