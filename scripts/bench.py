"""forq's benchmarks: figures, not pass/fail tests. Each section starts its own
redis-server on a free loopback port and its own forq, and stops both by pid.

  supervisor  respawn latency after SIGKILL (20 kills), PSS of 4 workers with a
              64 MiB plugin table (--prefork vs --no-prefork), idle RSS
  throughput  100,000 NoopJobs with --processes 2; exec handler jobs/s (/bin/true)
  latency     idle enqueue-to-start latency p50/p99 over 1,000 jobs
  http        NoopJob throughput and CPU per job with http_listen on and
              /metrics scraped every second vs off, alternating rounds in one
              run (--http-jobs N jobs per round, --http-rounds R rounds each)
  recovery    SIGKILL of a busy worker -> its job out of the dead lane (20 kills);
              SIGKILL of a whole node -> another node has its job (defaults: 30 s/10 s)
  sidekiq     Sidekiq 6.4.1 x2, plain and with reliable fetch, against forq,
              interleaved, median of 3 each (scripts/bench_sidekiq.py)
  cluster     three nodes, default lease settings: leader failover and cluster
              daemon takeover after TERM and after SIGKILL of the holder; cron
              firing delay after the tick (every-second entry, 30 s)
  tls         forq over rediss:// (TLS, client certificate) against redis:// on
              redis-servers started in the same run: jobs/s and CPU per job of
              forq and of redis-server, interleaved, medians of 3
              (scripts/bench_tls.py; --tls-jobs N, default 100,000)
  sentinel    master, replica, three sentinels: SIGKILL of the master -> replica
              promoted and forq running jobs again, with down-after 1 s (3 runs)
              and Sentinel's default 30 s (1 run); NoopJob jobs/s with
              min_replicas = 0 vs 1 (scripts/bench_sentinel.py)
  ruby        the Ruby plugin against Sidekiq 6.4.1 x2 on the same Ruby jobs:
              100,000 no-op Sidekiq::Workers and 20,000 no-op ActiveJobs
              (jobs/s, CPU s per 1000 jobs), PSS of 4 workers with
              tests/apps/rails_app against 4 Sidekiq processes
              (scripts/bench_ruby/bench_ruby.py; --ruby-jobs N for quick runs)
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, workdir, extra=()):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.r = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                if self.r.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def children(pid):
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                stat = open(f"/proc/{e}/stat").read()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(e))
    return out


def title(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0].decode()
    except OSError:
        return ""


def workers(master):
    out = {}
    for k in children(master):
        m = re.match(r"forq: worker\[(\d+)\] (\w+)", title(k))
        if m:
            out[int(m.group(1))] = (k, m.group(2))
    return out


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError(f"timed out waiting for {what}")


class Forq:
    def __init__(self, build, args, env, workdir, config=None):
        argv = [os.path.join(build, "forq"), *args]
        if config:
            path = os.path.join(workdir, "bench.ini")
            with open(path, "w") as f:
                f.write(config)
            argv += ["-C", path]
        self.log = open(os.path.join(workdir, "forq.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **env), start_new_session=True)
        self.pid = self.proc.pid

    def wait_idle(self, n, timeout=20):
        return wait_for(lambda: (w := workers(self.pid)) and len(w) == n and
                        all(s == "idle" for _, s in w.values()) and w, timeout, "idle workers")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def pss_kb(pid):
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values, p):
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


# ---- supervisor ---------------------------------------------------------------

def bench_respawn(build, plug, tmp, rds):
    stamps = os.path.join(tmp, "stamps")
    os.mkdir(stamps)
    n = 20
    f = Forq(build, ["-P", str(n), "--prefork", "-r", plug],
             {"REDIS_URL": rds.url, "FORQ_TEST_STAMP_DIR": stamps}, tmp)
    try:
        w = f.wait_idle(n)
        time.sleep(10.5)   # older than the 10 s "young death" window: healthy
        lat = []
        for slot in range(n):
            pid = w[slot][0]
            t0 = time.time_ns()
            os.kill(pid, signal.SIGKILL)
            def new_stamp():
                for name in os.listdir(stamps):
                    s, p = name.split(".")
                    if int(s) == slot and int(p) != pid:
                        txt = open(os.path.join(stamps, name)).read().strip()
                        return txt and int(txt)
                return None
            stamp = wait_for(new_stamp, 10, "replacement stamp")
            lat.append((stamp - t0) / 1e6)
            time.sleep(0.05)
        print(f"respawn latency (SIGKILL -> replacement running, {n} kills): "
              f"median {statistics.median(lat):.2f} ms, max {max(lat):.2f} ms")
    finally:
        f.stop()


def bench_pss(build, plug, tmp, rds):
    res = {}
    for mode in ("--prefork", "--no-prefork"):
        f = Forq(build, ["-P", "4", mode, "-r", plug],
                 {"REDIS_URL": rds.url, "FORQ_TEST_TABLE_MB": "64"}, tmp)
        try:
            w = f.wait_idle(4, timeout=60)
            time.sleep(0.5)
            workers_pss = sum(pss_kb(p) for p, _ in w.values())
            res[mode] = (workers_pss, pss_kb(f.pid))
        finally:
            f.stop()
    for mode, (wp, mp) in res.items():
        print(f"PSS with a 64 MiB plugin table, 4 workers {mode}: workers {wp / 1024:.1f} MiB, "
              f"master {mp / 1024:.1f} MiB, total {(wp + mp) / 1024:.1f} MiB")


def bench_idle_rss(build, tmp, rds):
    f = Forq(build, ["-P", "1"], {"REDIS_URL": rds.url}, tmp)
    try:
        w = f.wait_idle(1)
        time.sleep(1)
        print(f"idle RSS: master {rss_kb(f.pid) / 1024:.1f} MiB, "
              f"worker {rss_kb(w[0][0]) / 1024:.1f} MiB")
    finally:
        f.stop()


# ---- throughput ------------------------------------------------------------------

def enqueue_noop(r, count, cls="NoopJob", queue="default"):
    """Sidekiq's bulk format: one LPUSH per batch, the same enqueued_at. The
    jobs are staged under another key and RENAMEd onto the queue at the end,
    so every system sees all of them at the same instant (RENAME wakes the
    blocked fetchers), and the clock starts when this returns."""
    now = time.time()
    staging = "bench:staging"
    pipe = r.pipeline(transaction=False)
    pipe.delete(staging)
    batch = []
    for i in range(count):
        batch.append(json.dumps({"retry": True, "queue": queue, "class": cls, "args": [i],
                                 "jid": f"{i:024x}", "created_at": now, "enqueued_at": now},
                                separators=(",", ":")))
        if len(batch) == 1000:
            pipe.lpush(staging, *batch)
            batch = []
    if batch:
        pipe.lpush(staging, *batch)
    pipe.execute()
    r.sadd("queues", queue)
    r.rename(staging, f"queue:{queue}")


def drain(build, rds, tmp, count, args, env=None, config=None):
    r = rds.r
    f = Forq(build, ["-P", "2", "--log-level", "warn", *args], dict({"REDIS_URL": rds.url},
             **(env or {})), tmp, config=config)
    try:
        f.wait_idle(2)
        enqueue_noop(r, count, cls=(env or {}).get("BENCH_CLASS", "NoopJob"))
        t0 = time.monotonic()
        def done():
            if r.llen("queue:default"):
                return False
            return all(r.llen(k) == 0 for k in r.scan_iter("forq:working:*"))
        wait_for(done, 600, "queue drained")
        took = time.monotonic() - t0
        # Every job ran exactly as counted (stats flush with the 5 s beat).
        wait_for(lambda: int(r.get("stat:processed") or 0) >= count, 30, "stat:processed")
        processed, failed = int(r.get("stat:processed")), int(r.get("stat:failed") or 0)
        if processed != count or failed or r.zcard("retry") or r.zcard("dead"):
            raise RuntimeError(f"forq: processed {processed}, failed {failed}; expected {count}")
    finally:
        f.stop()
        r.flushall()
    return count / took


def bench_throughput(build, tmp, rds):
    noop = os.path.join(build, "plugins", "libforq_noop.so")
    rates = [drain(build, rds, tmp, 100_000, ["--prefork", "-r", noop]) for _ in range(3)]
    print(f"NoopJob throughput, 100,000 jobs, --processes 2: median {statistics.median(rates):,.0f}"
          f" jobs/s (runs: {', '.join(f'{x:,.0f}' for x in rates)})")
    cfg = '[forq]\n[job "TrueJob"]\nexec = /bin/true\n'
    rates = [drain(build, rds, tmp, 5_000, [], {"BENCH_CLASS": "TrueJob"}, cfg) for _ in range(3)]
    print(f"exec handler (/bin/true) throughput, 5,000 jobs, --processes 2: median "
          f"{statistics.median(rates):,.0f} jobs/s")


def cpu_seconds(pids):
    """utime + stime of the given live processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


SCRAPER = """
import sys, time, urllib.request
port, log = sys.argv[1], sys.argv[2]
while True:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        n = len(resp.read())
    with open(log, "a") as f:
        f.write(f"{n}\\n")
    time.sleep(1.0)
"""


def drain_http(build, rds, tmp, count, scraped):
    """One NoopJob drain; with scraped, http_listen is on and a client GETs
    /metrics every second meanwhile. (jobs/s, master+workers CPU s per job,
    master CPU s per job, scrapes)."""
    noop = os.path.join(build, "plugins", "libforq_noop.so")
    port = free_port()
    # Both with a file, the same but for the one key.
    cfg = "[forq]\n" + (f"http_listen = 127.0.0.1:{port}\n" if scraped else "")
    r = rds.r
    f = Forq(build, ["-P", "2", "--log-level", "warn", "--prefork", "-r", noop],
             {"REDIS_URL": rds.url}, tmp, config=cfg)
    # The scraper is a process of its own: a thread here would share the GIL
    # with the loop that watches the queue drain.
    log = os.path.join(tmp, "scrapes")
    scraper = None
    try:
        w = f.wait_idle(2)
        pids = [f.pid] + [pid for pid, _ in w.values()]
        enqueue_noop(r, count)
        cpu0, mcpu0, t0 = cpu_seconds(pids), cpu_seconds(pids[:1]), time.monotonic()
        if scraped:
            scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, str(port), log])

        def done():
            if r.llen("queue:default"):
                return False
            return all(r.llen(k) == 0 for k in r.scan_iter("forq:working:*"))
        wait_for(done, 600, "queue drained")
        took, cpu = time.monotonic() - t0, cpu_seconds(pids) - cpu0
        mcpu = cpu_seconds(pids[:1]) - mcpu0
        wait_for(lambda: int(r.get("stat:processed") or 0) >= count, 30, "stat:processed")
        if int(r.get("stat:processed")) != count or r.zcard("retry") or r.zcard("dead"):
            raise RuntimeError("forq did not run every job exactly once")
    finally:
        if scraper:
            scraper.kill()
            scraper.wait()
        f.stop()
        r.flushall()
    scrapes = len(open(log).read().split()) if scraped else 0
    if scraped:
        os.unlink(log)
    return count / took, cpu / count, mcpu / count, scrapes


def bench_http(build, tmp, rds, jobs, rounds):
    on, off, scrapes = [], [], 0
    for i in range(2 * rounds):
        scraped = i % 4 in (1, 2)  # off, on, on, off, off, on...: drift cancels out
        rate, cpu, mcpu, n = drain_http(build, rds, tmp, jobs, scraped)
        (on if scraped else off).append((rate, cpu, mcpu))
        scrapes += n
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    print(f"NoopJob throughput, {jobs:,} jobs x {rounds} rounds each, --processes 2, "
          f"alternating: http_listen off median {med(off, 0):,.0f} jobs/s "
          f"({med(off, 1) * 1e6:.2f} us CPU/job, master {med(off, 2) * 1e9:.1f} ns), "
          f"on + /metrics every 1 s ({scrapes} scrapes) median {med(on, 0):,.0f} jobs/s "
          f"({med(on, 1) * 1e6:.2f} us CPU/job, master {med(on, 2) * 1e9:.1f} ns): "
          f"throughput on/off {med(on, 0) / med(off, 0):.3f}, "
          f"CPU/job on/off {med(on, 1) / med(off, 1):.3f}")
    print("  rounds off: " + ", ".join(f"{x:,.0f}" for x, *_ in off) +
          "; on: " + ", ".join(f"{x:,.0f}" for x, *_ in on))
    scrape_cost(build, rds, tmp)


def scrape_cost(build, rds, tmp, n=2000):
    """The master's CPU per /metrics scrape, idle node, n scrapes in a row:
    the steady cost of being scraped, free of the noise of a drain."""
    import urllib.request
    port = free_port()
    f = Forq(build, ["-P", "2", "--log-level", "warn"], {"REDIS_URL": rds.url}, tmp,
             config=f"[forq]\nhttp_listen = 127.0.0.1:{port}\n")
    try:
        f.wait_idle(2)
        size = 0
        cpu0, t0 = cpu_seconds([f.pid]), time.monotonic()
        for _ in range(n):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                size = len(resp.read())
        cpu, took = cpu_seconds([f.pid]) - cpu0, time.monotonic() - t0
    finally:
        f.stop()
        r = rds.r
        r.flushall()
    print(f"  /metrics scrape: {cpu / n * 1e6:.0f} us of master CPU each ({size:,} bytes, "
          f"{n} scrapes in {took:.2f} s, clock ticks of {1e3 / os.sysconf('SC_CLK_TCK'):.0f} ms)")


def bench_latency(build, plug, tmp, rds):
    path = os.path.join(tmp, "latency")
    f = Forq(build, ["-P", "2", "--prefork", "-r", plug, "--log-level", "warn"],
             {"REDIS_URL": rds.url, "FORQ_TEST_LATENCY_FILE": path}, tmp)
    try:
        f.wait_idle(2)
        time.sleep(1.5)
        for i in range(1000):
            rds.r.lpush("queue:default", json.dumps(
                {"class": "TestJob", "args": [i], "jid": f"{i:024x}", "queue": "default",
                 "enqueued_at": time.time()}))
            time.sleep(0.01)
        wait_for(lambda: os.path.exists(path) and
                 len(open(path).read().split()) >= 1000, 30, "1000 latencies")
        lat = [float(x) * 1000 for x in open(path).read().split()]
        print(f"idle enqueue-to-start latency over {len(lat)} jobs: p50 {pct(lat, 50):.2f} ms, "
              f"p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms")
    finally:
        f.stop()


def busy_lane(r, identity, jid=None):
    """The working list that holds a job (with that jid), or None."""
    for k in r.scan_iter(f"forq:working:{identity}:*"):
        if r.llen(k) and (jid is None or any(jid.encode() in p for p in r.lrange(k, 0, -1))):
            return k
    return None


def node_identity(r, pid):
    for m in r.smembers("processes"):
        m = m.decode()
        if m.split(":")[1] == str(pid):
            return m
    return None


def busy_pids(master):
    return {p for p, st in workers(master).values() if st == "busy"}


def bench_local_requeue(build, tmp, rds):
    """Each kill hits a different worker (so no slot is in respawn backoff);
    the requeued job simply runs on in another worker."""
    n = 20
    cfg = f'[forq]\nprocesses = {2 * n + 1}\n[job "Sleep"]\nexec = /bin/sleep 60\n'
    f = Forq(build, ["--log-level", "warn", "-t", "1"], {"REDIS_URL": rds.url}, tmp, config=cfg)
    r = rds.r
    lat = []
    try:
        f.wait_idle(2 * n + 1, timeout=60)
        ident = wait_for(lambda: node_identity(r, f.pid), 10, "registration")
        for i in range(n):
            jid = f"{i:024x}"
            before = busy_pids(f.pid)
            r.lpush("queue:default", json.dumps({"class": "Sleep", "args": [], "queue": "default",
                                                 "jid": jid}))
            lane = wait_for(lambda: busy_lane(r, ident, jid), 10, "job running")
            pid = wait_for(lambda: next(iter(busy_pids(f.pid) - before), None), 10, "busy worker")
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: r.llen(lane) == 0, 10, "requeue")
            lat.append((time.monotonic() - t0) * 1000)
            wait_for(lambda: busy_lane(r, ident, jid), 10, "job running again")
        print(f"local requeue (SIGKILL of a busy worker -> job off its lane, {n} kills): "
              f"median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms")
    finally:
        f.stop()


def bench_node_death(build, tmp, rds):
    rds.r.flushall()   # no job left over from the previous section
    cfg = '[forq]\nprocesses = 1\n[job "Sleep"]\nexec = /bin/sleep 60\n'
    a = Forq(build, ["--log-level", "warn"], {"REDIS_URL": rds.url}, tmp, config=cfg)
    b = None
    r = rds.r
    try:
        a.wait_idle(1)
        ida = wait_for(lambda: node_identity(r, a.pid), 10, "registration of A")
        r.lpush("queue:default", json.dumps({"class": "Sleep", "args": [], "queue": "default",
                                             "jid": "f" * 24}))
        lane = wait_for(lambda: busy_lane(r, ida), 10, "A running it")
        b = Forq(build, ["--log-level", "warn"], {"REDIS_URL": rds.url}, tmp, config=cfg)
        b.wait_idle(1)
        # A fresh Redis makes the first sweep round pause judging for one
        # node_dead_after (a restart and a first start look alike): measure
        # the steady state of a running cluster.
        wait_for(lambda: r.exists("forq:sweep:runid") and not r.exists("forq:sweep:settle"),
                 90, "the sweep to settle")
        time.sleep(0.5)
        t0 = time.monotonic()
        for pid in [a.pid] + children(a.pid):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: r.llen(lane) == 0, 120, "node A's job recovered")
        took = time.monotonic() - t0
        print(f"node-death recovery (SIGKILL of a node -> its job requeued by another node, "
              f"node_dead_after 30 s, sweep 10 s): {took:.1f} s")
    finally:
        a.stop()
        if b:
            b.stop()


def holder_of(r, key, nodes):
    v = r.get(key)
    if not v:
        return None
    ident = v.decode().rsplit("|", 1)[0]
    return next((n for n in nodes if f":{n.pid}:" in ident), None)


def bench_failover(build, tmp, rds, what, graceful_runs, crash_runs):
    """what: "leader" (forq:leader) or "daemon" (forq:daemon:d, a cluster
    daemon /bin/sleep): time from TERM/SIGKILL of the holder's master until
    another node holds the lease."""
    r = rds.r
    r.flushall()
    key = "forq:leader" if what == "leader" else "forq:daemon:d"
    cfg = "[forq]\nprocesses = 1\n"
    if what == "daemon":
        cfg += '[daemon "d"]\nexec = /bin/sleep 100000\n'
    nodes = [Forq(build, ["--log-level", "warn"], {"REDIS_URL": rds.url}, tmp, config=cfg)
             for _ in range(3)]
    try:
        for kind, runs in (("graceful (TERM)", graceful_runs), ("crash (SIGKILL)", crash_runs)):
            took = []
            for _ in range(runs):
                old = wait_for(lambda: holder_of(r, key, nodes), 60, "a holder")
                time.sleep(1)
                t0 = time.monotonic()
                if kind.startswith("graceful"):
                    old.proc.send_signal(signal.SIGTERM)
                else:
                    for pid in [old.pid] + children(old.pid):
                        os.kill(pid, signal.SIGKILL)
                new = wait_for(lambda: (n := holder_of(r, key, nodes)) and n is not old and n,
                               120, "a new holder")
                took.append(time.monotonic() - t0)
                assert new is not old
                old.stop()
                nodes.remove(old)
                nodes.append(Forq(build, ["--log-level", "warn"], {"REDIS_URL": rds.url}, tmp,
                                  config=cfg))
            label = ("leader failover, leader_ttl 30 s" if what == "leader" else
                     "cluster daemon takeover, daemon_ttl 30 s, daemon_acquire 5 s")
            print(f"{label}, {kind}: " + ", ".join(f"{t:.2f}" for t in took) + " s")
    finally:
        for n in nodes:
            n.stop()


def bench_cron_delay(build, tmp, rds, seconds=30):
    rds.r.flushall()
    cfg = ('[forq]\nprocesses = 1\n[cron "tick"]\nschedule = * * * * * *\nclass = Tick\n'
           'queue = ticks\n')
    node = Forq(build, ["--log-level", "warn"], {"REDIS_URL": rds.url}, tmp, config=cfg)
    try:
        time.sleep(seconds)
    finally:
        node.stop()
    late = sorted((j["enqueued_at"] - j["cron_tick"]) * 1000
                  for j in (json.loads(p) for p in rds.r.lrange("queue:ticks", 0, -1)))
    print(f"cron firing delay after the tick ({len(late)} ticks, Redis TIME to push): "
          f"p50 {pct(late, 50):.2f} ms, p99 {pct(late, 99):.2f} ms, max {late[-1]:.2f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("sections", nargs="*",
                    default=["supervisor", "throughput", "http", "latency", "recovery", "sidekiq",
                             "cluster", "tls", "sentinel", "ruby"])
    ap.add_argument("--ruby-jobs", type=int,
                    default=int(os.environ.get("FORQ_BENCH_RUBY_JOBS", 100_000)),
                    help="ruby: no-op Sidekiq::Worker jobs, ActiveJobs are a fifth "
                         "(env FORQ_BENCH_RUBY_JOBS; default 100,000)")
    ap.add_argument("--ruby-runs", type=int,
                    default=int(os.environ.get("FORQ_BENCH_RUBY_RUNS", 3)),
                    help="ruby: interleaved runs of each system (env FORQ_BENCH_RUBY_RUNS; "
                         "default 3)")
    ap.add_argument("--tls-jobs", type=int, default=100_000,
                    help="tls: NoopJobs per run (default 100,000)")
    ap.add_argument("--http-jobs", type=int, default=300_000,
                    help="http: NoopJobs per round (default 300,000: a few seconds each)")
    ap.add_argument("--http-rounds", type=int, default=4,
                    help="http: rounds with the endpoint on, and as many off (default 4)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    plug = os.path.join(build, "libforq_testplug.so")
    print(f"forq bench on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    for section in a.sections:
        with tempfile.TemporaryDirectory(prefix="forq-bench-") as tmp:
            rds = Redis(tmp)
            try:
                if section == "supervisor":
                    bench_respawn(build, plug, tmp, rds)
                    bench_pss(build, plug, tmp, rds)
                    bench_idle_rss(build, tmp, rds)
                elif section == "throughput":
                    bench_throughput(build, tmp, rds)
                elif section == "latency":
                    bench_latency(build, plug, tmp, rds)
                elif section == "http":
                    bench_http(build, tmp, rds, a.http_jobs, a.http_rounds)
                elif section == "recovery":
                    bench_local_requeue(build, tmp, rds)
                    bench_node_death(build, tmp, rds)
                elif section == "cluster":
                    bench_failover(build, tmp, rds, "leader", 5, 2)
                    bench_failover(build, tmp, rds, "daemon", 3, 2)
                    bench_cron_delay(build, tmp, rds)
                elif section == "sidekiq":
                    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
                    import bench_sidekiq
                    bench_sidekiq.run(build, tmp, rds)
                elif section == "tls":
                    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
                    import bench_tls
                    bench_tls.run(build, tmp, rds, jobs=a.tls_jobs)
                elif section == "sentinel":
                    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
                    import bench_sentinel
                    bench_sentinel.run(sys.modules[__name__], build, tmp)
                elif section == "ruby":
                    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "bench_ruby"))
                    import bench_ruby
                    bench_ruby.run(build, tmp, rds, jobs=a.ruby_jobs, runs=a.ruby_runs)
                else:
                    sys.exit(f"unknown section {section}")
            finally:
                rds.stop()


if __name__ == "__main__":
    main()
