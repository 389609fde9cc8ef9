"""forq's Ruby plugin vs the real Sidekiq: the same Ruby jobs, the same Redis.

  noop       N no-op Sidekiq::Workers (scripts/bench_ruby/app.rb, default
             100,000): forq -P 2 --prefork -r app.rb against
             2 x `sidekiq -e production -c 10 -q default -r app.rb`
  activejob  N/5 no-op ActiveJobs through Rails' Sidekiq adapter
             (scripts/bench_ruby/activejob_app.rb, default 20,000), the same
             comparison
  memory     PSS of forq -P 4 --prefork -r tests/apps/rails_app -e test (master
             and workers) against 4 x `sidekiq -e test -c 10 -r
             tests/apps/rails_app`, idle and after 2,000 and 20,000 of the
             app's simplest job (SlowWorker sleeping 0 s), each in a copy of
             the app run from its root

A drain run: FLUSHALL, enqueue all N jobs (LPUSH in pipelines of 1,000
payloads, each a copy of one payload the real client made -- a
`perform_async` / `perform_later` in `ruby -r app` -- with its own jid,
job_id and timestamps), then start the runners; the clock runs from their
start (Ruby boot included) until queue:default is empty and no forq:working:*
list holds a job. stat:processed must then reach N with nothing failed.
CPU is utime+stime of the runners and their children (live ones from
/proc/PID/stat, reaped ones from the cutime/cstime of their parent) read when
the drain ends, before they are stopped; redis-server's is shown apart.
"boot" is the time (and CPU) until the first job left the queue; "net" is the
rate from then on. forq and Sidekiq runs are interleaved, RUNS of each; the
median run (by jobs/s) of each is printed.

Environment: FORQ_BENCH_RUBY_JOBS, FORQ_BENCH_RUBY_RUNS (bench.py's --ruby-jobs,
--ruby-runs), FORQ_BENCH_RAILS_APP (another Rails root for the memory figures).

Standalone: /usr/bin/python3 scripts/bench_ruby/bench_ruby.py --build build-bench
From bench.py:  bench_ruby.run(build, tmp, rds, jobs=N, runs=R)
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
ROOT = os.path.dirname(SCRIPTS)
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
import bench  # noqa: E402
import bench_sidekiq  # noqa: E402

NOOP_APP = os.path.join(HERE, "app.rb")
ACTIVEJOB_APP = os.path.join(HERE, "activejob_app.rb")
RAILS_APP = os.path.join(ROOT, "tests", "apps", "rails_app")
JOBS = 100_000
RUNS = 3
PROCESSES = 2
CONCURRENCY = 10        # Sidekiq 6.4's default, given explicitly
MEM_PROCESSES = 4
MEM_JOBS = (2_000, 20_000)   # PSS when idle and after each total
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- processes -------------------------------------------------------------------

def tree(pid):
    """pid and its descendants, parents first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(bench.children(p))
    return out


def cpu_s(pids):
    """utime+stime+cutime+cstime of each pid (and its subtree), in seconds."""
    ticks = 0
    for top in pids:
        for p in tree(top):
            try:
                stat = open(f"/proc/{p}/stat").read()
            except OSError:
                continue
            f = stat[stat.rindex(")") + 2:].split()
            ticks += sum(int(x) for x in f[11:15])
    return ticks / CLK_TCK


def pss_mib(pids):
    """Total PSS of the pids and their descendants, and the per-process list."""
    each = []
    for top in pids:
        for p in tree(top):
            try:
                each.append((p, bench.pss_kb(p) / 1024))
            except OSError:
                pass
    return sum(m for _, m in each), each


def clean_env(rds, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_PROVIDER", "RUBYOPT")}
    env["REDIS_URL"] = rds.url
    env.update(extra or {})
    return env


def tail(path, n=20):
    try:
        return f"--- {path}\n" + "\n".join(open(path, errors="replace").read().splitlines()[-n:])
    except OSError:
        return f"--- {path}: no log"


class ForqRunner:
    def __init__(self, build, rds, tmp, tag, args, env=None):
        self.dir = os.path.join(tmp, f"forq-{tag}")
        os.makedirs(self.dir, exist_ok=True)
        self.f = bench.Forq(build, ["--log-level", "warn", *args],
                            dict({"REDIS_URL": rds.url}, **(env or {})), self.dir)
        self.pids = [self.f.pid]

    def check(self):
        if self.f.proc.poll() is not None:
            raise RuntimeError(f"forq exited with {self.f.proc.returncode}\n{self.log_tail()}")

    def log_tail(self):
        return tail(os.path.join(self.dir, "forq.log"))

    def stop(self):
        self.f.stop()


class SidekiqRunner(bench_sidekiq.SidekiqFleet):
    """n `sidekiq` processes on rds; waits, stops and shows logs like SidekiqFleet."""

    def __init__(self, rds, tmp, tag, app, n, environment="production", env=None, cwd=None):
        self.rds = rds
        self.logs = []
        self.procs = []
        for i in range(n):
            path = os.path.join(tmp, f"sidekiq-{tag}-{i}.log")
            log = open(path, "ab")
            self.logs.append((path, log))
            self.procs.append(subprocess.Popen(
                [*bench_sidekiq.sidekiq_cmd(), "-e", environment, "-c", str(CONCURRENCY),
                 "-q", "default", "-r", app],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=clean_env(rds, env), cwd=cwd or tmp, start_new_session=True))
        self.pids = [p.pid for p in self.procs]

    def check(self):
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"sidekiq pid {p.pid} exited with {p.returncode}\n"
                                   + self.log_tail())


# ---- payloads --------------------------------------------------------------------

def sample_payload(rds, tmp, require, code, env=None):
    """The payload the real client pushes for `code` run under `ruby -r require`."""
    r = rds.r
    r.flushall()
    p = subprocess.run(["ruby", "-r", require, "-e", code], capture_output=True, text=True,
                       env=clean_env(rds, env), cwd=tmp, timeout=300)
    raw = r.lpop("queue:default")
    r.flushall()
    if p.returncode or not raw:
        raise RuntimeError(f"ruby -r {require} -e '{code}' pushed no job (exit {p.returncode})\n"
                           f"{p.stdout}{p.stderr}")
    raw = raw.decode()
    job = json.loads(raw)
    # The copies are written by json.dumps: it must write what Sidekiq wrote.
    if dump(job) != raw:
        raise RuntimeError(f"the payload does not survive a JSON round trip:\n{raw}\n{dump(job)}")
    return job


def dump(job):
    return json.dumps(job, separators=(",", ":"), ensure_ascii=False)


def payloads(template, count):
    """count copies of the client's payload: own jid (and ActiveJob job_id),
    created_at/enqueued_at now, as one bulk push would stamp them."""
    now = time.time()
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    wrapped = isinstance(template.get("wrapped"), str) and template["args"] and \
        isinstance(template["args"][0], dict) and "job_id" in template["args"][0]
    for i in range(count):
        job = dict(template, jid=os.urandom(12).hex(), created_at=now, enqueued_at=now)
        if wrapped:
            job["args"] = [dict(template["args"][0], job_id=str(uuid.uuid4()), enqueued_at=iso)]
        yield dump(job)


def enqueue(r, template, count, queue="default", check=True):
    pipe = r.pipeline(transaction=False)
    batch = []
    for p in payloads(template, count):
        batch.append(p)
        if len(batch) == 1000:
            pipe.lpush(f"queue:{queue}", *batch)
            batch = []
            if len(pipe) >= 20:
                pipe.execute()
    if batch:
        pipe.lpush(f"queue:{queue}", *batch)
    pipe.sadd("queues", queue)
    pipe.execute()
    if check and r.llen(f"queue:{queue}") != count:
        raise RuntimeError(f"queue:{queue} holds {r.llen(f'queue:{queue}')} jobs, not {count}")


# ---- drains ----------------------------------------------------------------------

def queue_drained(r):
    if r.llen("queue:default"):
        return False
    return all(r.llen(k) == 0 for k in r.scan_iter("forq:working:*", count=1000))


def check_outcome(r, count, runner, what):
    try:
        bench.wait_for(lambda: int(r.get("stat:processed") or 0) >= count, 30, "stat:processed")
    except RuntimeError:
        pass
    processed = int(r.get("stat:processed") or 0)
    failed = int(r.get("stat:failed") or 0)
    if processed != count or failed or r.zcard("retry") or r.zcard("dead"):
        raise RuntimeError(f"{what}: processed {processed}, failed {failed}, retry "
                           f"{r.zcard('retry')}, dead {r.zcard('dead')}; expected {count} "
                           f"processed and no failure\n{runner.log_tail()}")


def drain(rds, template, count, start, what, timeout=900):
    """One run: enqueue, start(), time the drain. Returns a dict of figures."""
    r = rds.r
    r.flushall()
    enqueue(r, template, count)
    redis0 = cpu_s([rds.proc.pid])
    t0 = time.monotonic()
    runner = start()
    try:
        first = boot_cpu = None
        end = t0 + timeout
        while True:
            runner.check()
            left = r.llen("queue:default")
            now = time.monotonic()
            if first is None and left < count:
                first, boot_cpu = now, cpu_s(runner.pids)
            if not left and queue_drained(r):
                break
            if now > end:
                raise RuntimeError(f"{what}: {left} of {count} jobs still queued after "
                                   f"{timeout} s\n{runner.log_tail()}")
            time.sleep(0.01)
        took = time.monotonic() - t0
        cpu = cpu_s(runner.pids)
        redis_cpu = cpu_s([rds.proc.pid]) - redis0
        check_outcome(r, count, runner, what)
    finally:
        runner.stop()
        r.flushall()
    boot = first - t0
    return {"rate": count / took, "took": took, "boot": boot,
            "net": count / (took - boot) if took > boot else float("nan"),
            "cpu": cpu, "boot_cpu": boot_cpu, "redis_cpu": redis_cpu}


def median_run(runs):
    return sorted(runs, key=lambda x: x["rate"])[len(runs) // 2]


def fmt_line(name, runs, count):
    m = median_run(runs)
    k = count / 1000
    rates = ", ".join(f"{x['rate']:,.0f}" for x in runs)
    return (f"  {name}: {m['rate']:,.0f} jobs/s (runs: {rates}); boot {m['boot']:.2f} s, net "
            f"{m['net']:,.0f} jobs/s; CPU {m['cpu'] / k:.3f} s/1000 jobs "
            f"({m['cpu']:.1f} s, boot {m['boot_cpu']:.1f} s), redis-server "
            f"{m['redis_cpu'] / k:.3f} s/1000 jobs")


def compare(build, rds, tmp, label, app, count, runs, sample_code):
    template = sample_payload(rds, tmp, app, sample_code)
    forq, sk = [], []
    for i in range(1, runs + 1):
        forq.append(drain(rds, template, count, lambda: ForqRunner(
            build, rds, tmp, f"{label}{i}", ["-P", str(PROCESSES), "--prefork", "-r", app]),
            f"forq {label}"))
        sk.append(drain(rds, template, count, lambda: SidekiqRunner(
            rds, tmp, f"{label}{i}", app, PROCESSES), f"sidekiq {label}"))
    return forq, sk


def print_compare(title, count, runs, forq, sk, sk_version):
    fm, sm = median_run(forq), median_run(sk)
    k = count / 1000
    print(f"{title} ({count:,} jobs, {runs} interleaved runs, median shown):")
    print(fmt_line(f"forq -P {PROCESSES} --prefork", forq, count))
    print(fmt_line(f"Sidekiq {sk_version} x{PROCESSES} -c {CONCURRENCY}", sk, count))
    print(f"  forq/Sidekiq: {fm['rate'] / sm['rate']:.2f} x jobs/s (net "
          f"{fm['net'] / sm['net']:.2f} x); CPU per job {(fm['cpu'] / k) / (sm['cpu'] / k):.2f} x"
          f" (with redis-server {(fm['cpu'] + fm['redis_cpu']) / (sm['cpu'] + sm['redis_cpu']):.2f}"
          f" x)")


# ---- memory ----------------------------------------------------------------------

# The app's simplest job: SlowWorker sleeping 0 s, through the app's server
# middleware and Rails' executor. (RecordWorker, one ActiveRecord insert,
# fails under Sidekiq: 40 threads on one sqlite file get "database is locked".)
RAILS_JOB = "SlowWorker"
RAILS_SAMPLE = 'SlowWorker.perform_async(0, "bench")'


@contextlib.contextmanager
def cwd(path):
    """bench.Forq starts forq in our cwd; a Rails app is run from its root."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def rails_copy(rds, app, tmp, environment):
    """A copy of the app in tmp, as the tests use it: its gems locked offline
    against Debian's (`bundle lock --local`), its sqlite database at
    $FORQ_TEST_DB made by db/setup.rb. Returns (root, env)."""
    root = os.path.join(tmp, "rails_app")
    shutil.copytree(app, root, ignore=shutil.ignore_patterns(
        "log", "tmp", "*.sqlite3*", "Gemfile.lock"))
    env = {"RAILS_ENV": environment, "RACK_ENV": environment,
           "FORQ_TEST_DB": os.path.join(tmp, "rails_app.sqlite3")}
    steps = []
    if os.path.exists(os.path.join(root, "Gemfile")):
        steps.append(["bundle", "lock", "--local"])
    if os.path.exists(os.path.join(root, "db", "setup.rb")):
        steps.append(["ruby", "db/setup.rb"])
    for argv in steps:
        p = subprocess.run(argv, cwd=root, env=clean_env(rds, env), capture_output=True,
                           text=True, timeout=300)
        if p.returncode:
            raise RuntimeError(f"{' '.join(argv)} in {root} failed:\n{p.stdout}{p.stderr}")
    return root, env


def run_jobs(r, template, count, runner, what, total=None):
    """Runs count more jobs; total: what stat:processed must then be."""
    enqueue(r, template, count, check=False)
    end = time.monotonic() + 300
    while not queue_drained(r):
        runner.check()
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: jobs still queued after 300 s\n{runner.log_tail()}")
        time.sleep(0.02)
    check_outcome(r, total or count, runner, what)


def pss_after(r, template, counts, runner, what):
    """[(jobs run so far, total PSS, [(pid, PSS)])] at 0 jobs and after each count."""
    out, done = [], 0
    for n in [0, *counts]:
        if n:
            run_jobs(r, template, n - done, runner, what, n)
            done = n
        time.sleep(1)
        out.append((n, *pss_mib(runner.pids)))
    return out


def memory(build, rds, tmp, app, environment, counts):
    r = rds.r
    root, env = rails_copy(rds, app, tmp, environment)
    template = sample_payload(rds, root, os.path.join(root, "config", "environment"),
                              RAILS_SAMPLE, env)
    res = {}

    with cwd(root):
        f = ForqRunner(build, rds, tmp, "memory",
                       ["-P", str(MEM_PROCESSES), "--prefork", "-r", root, "-e", environment],
                       env)
    try:
        f.f.wait_idle(MEM_PROCESSES, timeout=180)
        res["forq"] = pss_after(r, template, counts, f, "forq memory")
    finally:
        f.stop()
        r.flushall()

    s = SidekiqRunner(rds, tmp, "memory", root, MEM_PROCESSES, environment, env, cwd=root)
    try:
        s.wait_ready(timeout=180)
        res["sidekiq"] = pss_after(r, template, counts, s, "sidekiq memory")
    finally:
        s.stop()
        r.flushall()
    return res


def print_memory(rails_app, environment, counts, m, sk_version):
    print(f"Memory, {os.path.relpath(rails_app, ROOT)} -e {environment}, PSS in MiB when idle "
          f"and after {' and '.join(f'{n:,}' for n in counts)} jobs ({RAILS_JOB}):")
    for (n, ft, fe), (_, st, se) in zip(m["forq"], m["sidekiq"]):
        when = f"after {n:,} jobs" if n else "idle"
        print(f"  {when}: forq -P {MEM_PROCESSES} --prefork {ft:.1f} (master {fe[0][1]:.1f}, "
              f"workers {', '.join(f'{x:.1f}' for _, x in fe[1:])}); Sidekiq {sk_version} "
              f"x{MEM_PROCESSES} -c {CONCURRENCY} {st:.1f} ({', '.join(f'{x:.1f}' for _, x in se)})"
              f"; forq/Sidekiq {ft / st:.2f} x")


# ---- the section -----------------------------------------------------------------

def run(build, tmp, rds=None, jobs=None, runs=None, rails_app=None, environment="test"):
    """Runs the section and prints it. Starts (and stops) its own redis-server
    unless rds (a bench.Redis) is given."""
    build = os.path.abspath(build)
    jobs = jobs or int(os.environ.get("FORQ_BENCH_RUBY_JOBS", JOBS))
    runs = runs or int(os.environ.get("FORQ_BENCH_RUBY_RUNS", RUNS))
    rails_app = rails_app or os.environ.get("FORQ_BENCH_RAILS_APP", RAILS_APP)
    aj_jobs = max(1, jobs // 5)
    mem_jobs = sorted({min(n, jobs) for n in MEM_JOBS})
    sk_version = bench_sidekiq.ruby_probe('require "sidekiq"; print Sidekiq::VERSION')
    if not sk_version:
        print("Ruby jobs: skipped: Sidekiq is not available (ruby and Debian's ruby-sidekiq; "
              "scripts/setup installs them)")
        return
    plugin = os.path.join(build, "plugins", "ruby", "libforq_ruby.so")
    if not os.path.exists(os.path.join(build, "forq")) or not os.path.exists(plugin):
        print(f"Ruby jobs: skipped: {build} has no forq or plugins/ruby/libforq_ruby.so")
        return
    aj_version = bench_sidekiq.ruby_probe('require "active_job"; print ActiveJob::VERSION::STRING')

    own = rds is None
    if own:
        rds = bench.Redis(tmp)
    try:
        forq, sk = compare(build, rds, tmp, "noop", NOOP_APP, jobs, runs,
                           "NoopWorker.perform_async")
        print_compare("Ruby no-op Sidekiq::Worker", jobs, runs, forq, sk, sk_version)
        if aj_version:
            forq, sk = compare(build, rds, tmp, "activejob", ACTIVEJOB_APP, aj_jobs, runs,
                               "NoopActiveJob.perform_later")
            print_compare(f"Ruby no-op ActiveJob {aj_version} (Sidekiq adapter)", aj_jobs, runs,
                          forq, sk, sk_version)
        else:
            print("Ruby no-op ActiveJob: skipped: activejob is not available "
                  "(Debian's ruby-activejob)")
        if os.path.exists(os.path.join(rails_app, "config", "environment.rb")):
            m = memory(build, rds, tmp, rails_app, environment, mem_jobs)
            print_memory(rails_app, environment, mem_jobs, m, sk_version)
        else:
            print(f"Memory with a Rails app: skipped: no {rails_app}/config/environment.rb")
    finally:
        if own:
            rds.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--jobs", type=int, help=f"no-op jobs (default {JOBS:,}; ActiveJob: a fifth)")
    ap.add_argument("--runs", type=int, help=f"interleaved runs of each (default {RUNS})")
    ap.add_argument("--rails-app", help="Rails root for the memory figures")
    a = ap.parse_args()
    print(f"forq bench on {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    with tempfile.TemporaryDirectory(prefix="forq-bench-") as tmp:
        run(a.build, tmp, jobs=a.jobs, runs=a.runs, rails_app=a.rails_app)


if __name__ == "__main__":
    main()
