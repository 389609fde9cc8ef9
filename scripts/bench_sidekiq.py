"""forq vs the real Sidekiq: drain rate of the same 100,000 NoopJobs.

Three systems, 2 processes each, run interleaved (forq, Sidekiq plain, Sidekiq
reliable; three times) because a small, noisy machine drifts; the median of
the three runs of each is printed with forq's ratio to each Sidekiq variant.

  forq      build/forq -P 2 --prefork -r build/plugins/libforq_noop.so
            (bench.drain)
  plain     2 x `sidekiq -e production -q default -r bench_sidekiq_app.rb`,
            default concurrency (10 threads each), Sidekiq's BasicFetch (BRPOP)
  reliable  the same with gitlab-sidekiq-fetcher's ReliableFetch
            (RPOPLPUSH into working:queue:default:<fid>, LREM on ack)

Each run: FLUSHALL, start the processes and wait until they are idle (forq:
workers idle; Sidekiq: both in `processes` with a fresh beat), enqueue 100,000
jobs in Sidekiq's bulk format (bench.enqueue_noop), start the clock when the
enqueue ends, stop it when queue:default is empty and no working list (forq's
forq:working:*, the fetcher's working:queue:*) holds anything. jobs/s =
100,000 / elapsed. Sidekiq runs are then checked: stat:processed reaches
100,000, nothing failed, and reliable fetch really used working:queue:* lists
(plain never did). Processes are stopped by pid (TERM, then KILL).

Standalone: /usr/bin/python3 scripts/bench_sidekiq.py --build build-bench
From bench.py:  import bench_sidekiq; bench_sidekiq.run(build, tmp)
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
import bench  # noqa: E402

APP = os.path.join(SCRIPTS, "bench_sidekiq_app.rb")
COUNT = 100_000
RUNS = 3
PROCESSES = 2


def ruby_probe(code):
    """Runs `ruby -e code`; returns its stdout, or None if Ruby or a gem is missing."""
    if not shutil.which("ruby"):
        return None
    try:
        p = subprocess.run(["ruby", "-e", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def sidekiq_cmd():
    exe = shutil.which("sidekiq")
    return [exe] if exe else ["ruby", "-S", "sidekiq"]


class SidekiqFleet:
    """PROCESSES separate `sidekiq` processes on rds, each logging to a file in tmp."""

    def __init__(self, rds, tmp, reliable, tag):
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_PROVIDER", "RUBYOPT")}
        env["REDIS_URL"] = rds.url
        env["BENCH_RELIABLE_FETCH"] = "1" if reliable else "0"
        self.rds = rds
        self.logs = []
        self.procs = []
        for i in range(PROCESSES):
            path = os.path.join(tmp, f"sidekiq-{tag}-{i}.log")
            log = open(path, "ab")
            self.logs.append((path, log))
            self.procs.append(subprocess.Popen(
                [*sidekiq_cmd(), "-e", "production", "-q", "default", "-r", APP],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=tmp, start_new_session=True))

    def log_tail(self):
        out = []
        for path, _ in self.logs:
            try:
                lines = open(path, errors="replace").read().splitlines()[-15:]
            except OSError:
                lines = []
            out.append(f"--- {os.path.basename(path)}\n" + "\n".join(lines))
        return "\n".join(out)

    def wait_ready(self, timeout=90):
        """Until every process is in `processes` with a beat younger than 10 s."""
        pids = {p.pid for p in self.procs}
        r = self.rds.r

        def ready():
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"sidekiq pid {p.pid} exited with {p.returncode}\n"
                                       + self.log_tail())
            fresh = set()
            now = time.time()
            for ident in r.smembers("processes"):
                info, beat = r.hmget(ident, "info", "beat")
                if not info or not beat:
                    continue
                pid = json.loads(info).get("pid")
                if pid in pids and now - float(beat) < 10:
                    fresh.add(pid)
            return fresh == pids

        try:
            bench.wait_for(ready, timeout, "sidekiq processes with a fresh beat")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{self.log_tail()}") from None

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for _, log in self.logs:
            log.close()


def drain_sidekiq(rds, tmp, reliable, tag):
    """One run; returns (jobs/s, seconds from the enqueue end to the first pickup)."""
    r = rds.r
    r.flushall()
    fleet = SidekiqFleet(rds, tmp, reliable, tag)
    try:
        fleet.wait_ready()
        bench.enqueue_noop(r, COUNT)
        t0 = time.monotonic()
        state = {"first": None, "working": set()}

        def done():
            n = r.llen("queue:default")
            if state["first"] is None and n < COUNT:
                state["first"] = time.monotonic()
            keys = list(r.scan_iter(match="working:queue:*", count=1000))
            state["working"].update(keys)
            if n:
                return False
            return all(r.llen(k) == 0 for k in keys)

        bench.wait_for(done, 600, "sidekiq drained queue:default")
        took = time.monotonic() - t0
        # Sidekiq 6.4 flushes its counters with the heartbeat (every 5 s).
        try:
            bench.wait_for(lambda: int(r.get("stat:processed") or 0) >= COUNT, 30,
                           "stat:processed to reach the job count")
        except RuntimeError:
            pass
        processed = int(r.get("stat:processed") or 0)
        failed = int(r.get("stat:failed") or 0)
        if processed != COUNT or failed or r.zcard("retry") or r.zcard("dead"):
            raise RuntimeError(f"sidekiq {tag}: processed {processed}, failed {failed}, "
                               f"retry {r.zcard('retry')}, dead {r.zcard('dead')}; expected "
                               f"{COUNT} processed and no failure\n{fleet.log_tail()}")
        if reliable and not state["working"]:
            raise RuntimeError(f"sidekiq {tag}: no working:queue:* list seen; reliable fetch "
                               f"is not active\n{fleet.log_tail()}")
        if not reliable and state["working"]:
            raise RuntimeError(f"sidekiq {tag}: working:queue:* lists seen without reliable fetch")
    finally:
        fleet.stop()
    return COUNT / took, state["first"] - t0


def drain_forq(build, rds, tmp):
    rds.r.flushall()
    noop = os.path.join(build, "plugins", "libforq_noop.so")
    return bench.drain(build, rds, tmp, COUNT, ["--prefork", "-r", noop])


def fmt_runs(rates):
    return ", ".join(f"{x:,.0f}" for x in rates)


def run(build, tmp, rds=None):
    """Runs the comparison and prints it. Starts (and stops) its own redis-server
    unless rds (a bench.Redis) is given."""
    build = os.path.abspath(build)
    head = f"Sidekiq comparison ({COUNT:,} NoopJobs, {PROCESSES} processes each, " \
           f"{RUNS} interleaved runs)"
    sk_version = ruby_probe('require "sidekiq"; print Sidekiq::VERSION')
    if not sk_version:
        print(f"{head}: skipped: Sidekiq is not available (ruby and Debian's ruby-sidekiq; "
              f"scripts/setup installs them)")
        return
    fetcher_version = ruby_probe(
        'require "sidekiq-reliable-fetch"; '
        'print((Gem::Specification.find_by_name("gitlab-sidekiq-fetcher").version rescue "?"))')
    noop = os.path.join(build, "plugins", "libforq_noop.so")
    if not os.path.exists(os.path.join(build, "forq")) or not os.path.exists(noop):
        raise RuntimeError(f"{build} has no forq or plugins/libforq_noop.so; build it first")

    own = rds is None
    if own:
        rds = bench.Redis(tmp)
    forq, plain, reliable, pickup, net = [], [], [], [], []
    try:
        for i in range(1, RUNS + 1):
            forq.append(drain_forq(build, rds, tmp))
            rate, _ = drain_sidekiq(rds, tmp, False, f"plain{i}")
            plain.append(rate)
            if fetcher_version:
                rate, first = drain_sidekiq(rds, tmp, True, f"reliable{i}")
                reliable.append(rate)
                pickup.append(first)
                net.append(COUNT / (COUNT / rate - first))
        rds.r.flushall()
    finally:
        if own:
            rds.stop()

    fm = statistics.median(forq)
    print(f"{head}:")
    print(f"  forq -P 2 --prefork (noop plugin): median {fm:,.0f} jobs/s (runs: {fmt_runs(forq)})")
    name = f"Sidekiq {sk_version} x{PROCESSES}"
    pm = statistics.median(plain)
    print(f"  {name} plain: median {pm:,.0f} jobs/s (runs: {fmt_runs(plain)}); "
          f"forq/sidekiq = {fm / pm:.2f} x")
    if fetcher_version:
        rm = statistics.median(reliable)
        print(f"  {name} reliable (gitlab-sidekiq-fetcher {fetcher_version}): median "
              f"{rm:,.0f} jobs/s (runs: {fmt_runs(reliable)}); forq/sidekiq = {fm / rm:.2f} x")
        nm = statistics.median(net)
        print(f"    of which the first pickup came {', '.join(f'{x:.2f}' for x in pickup)} s after "
              f"the enqueue (ReliableFetch sleeps 5 s on an empty queue); from the first pickup: "
              f"median {nm:,.0f} jobs/s (runs: {fmt_runs(net)}); forq/that = {fm / nm:.2f} x")
    else:
        print(f"  {name} reliable: skipped: gitlab-sidekiq-fetcher is not available "
              f"(Debian's ruby-gitlab-sidekiq-fetcher; scripts/setup installs it)")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench",
                    help="release build directory (made if it has no build.ninja)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    if not os.path.exists(os.path.join(build, "build.ninja")):
        subprocess.run(["meson", "setup", build, "--buildtype=release", "-Db_ndebug=true"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["ninja", "-C", build], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    print(f"forq bench on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    with tempfile.TemporaryDirectory(prefix="forq-bench-") as tmp:
        run(build, tmp)


if __name__ == "__main__":
    main()
