"""The master's HTTP endpoint (http_listen): /metrics read with a real HTTP
client and Prometheus's own text parser, /healthz against a Redis that is
stopped, /readyz through quiet, and slow clients that must not stall the
master's loop."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from conftest import FORQ, TESTPLUG, free_port, wait_until

WEIRD = 'Odd"Job\\Name'  # a class whose label value needs escaping


def get(port, path, method="GET"):
    """(status, body) of one request; never raises for HTTP errors."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def scrape(port):
    """{(sample name, sorted labels): value} of one /metrics scrape."""
    status, body, headers = get(port, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def val(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))))


def payload(cls, queue="default", args=(), retry=True, age=0.0):
    now = time.time() - age
    return json.dumps({"retry": retry, "queue": queue, "class": cls, "args": list(args),
                       "jid": os.urandom(12).hex(), "created_at": now, "enqueued_at": now})


def push(r, *payloads):
    for p in payloads:
        q = json.loads(p)["queue"]
        r.sadd("queues", q)
        r.lpush(f"queue:{q}", p)


def start(forq, port, processes=2, extra="", env=None):
    cfg = (f"[forq]\nprocesses = {processes}\nqueues = default, critical\n"
           f"http_listen = 127.0.0.1:{port}\nshutdown_timeout = 2\n{extra}")
    f = forq("-r", TESTPLUG, config=cfg, env=dict({"FORQ_TEST_CATCHALL": "1"}, **(env or {})))
    f.wait_workers(processes)
    wait_until(lambda: _status(port, "/readyz") == 200, 10, what="/readyz 200")
    return f


def _status(port, path):
    try:
        return get(port, path)[0]
    except OSError:
        return None


def test_metrics_count_jobs_by_class_and_queue_and_survive_worker_replacement(
        forq, redis_server):
    port = free_port()
    f = start(forq, port)
    r = redis.Redis.from_url(redis_server, decode_responses=True)
    push(r, *[payload("TestJob") for _ in range(6)])
    push(r, *[payload(WEIRD, "critical", retry=True) for _ in range(2)])
    push(r, *[payload(WEIRD, "critical", retry=0) for _ in range(2)])
    wait_until(lambda: r.zcard("retry") == 2 and r.zcard("dead") == 2, 15, what="failures filed")

    def counts_ok():
        m = scrape(port)
        return (val(m, "forq_jobs_processed_total", **{"class": "TestJob", "queue": "default"})
                == 6 and val(m, "forq_jobs_processed_total",
                             **{"class": WEIRD, "queue": "critical"}) == 4) and m
    m = wait_until(counts_ok, 10, what="processed counters")
    ok, weird = {"class": "TestJob", "queue": "default"}, {"class": WEIRD, "queue": "critical"}
    assert val(m, "forq_jobs_failed_total", **ok) == 0
    assert val(m, "forq_jobs_failed_total", **weird) == 4
    assert val(m, "forq_jobs_retried_total", **weird) == 2
    assert val(m, "forq_jobs_dead_total", **weird) == 2
    assert val(m, "forq_jobs_retried_total", **ok) == 0
    # histograms: count and +Inf agree with the jobs run, buckets cumulative
    for cls, n in (("TestJob", 6), (WEIRD, 4)):
        assert val(m, "forq_job_duration_seconds_count", **{"class": cls}) == n
        assert val(m, "forq_job_duration_seconds_bucket", **{"class": cls, "le": "+Inf"}) == n
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in m.items()
                         if k[0] == "forq_job_duration_seconds_bucket"
                         and dict(k[1])["class"] == cls)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert 0 <= val(m, "forq_job_duration_seconds_sum", **{"class": cls}) < 60
    assert val(m, "forq_workers", state="idle") + val(m, "forq_workers", state="busy") == 2
    assert val(m, "forq_workers_target") == 2
    assert val(m, "forq_redis_up") == 1
    wait_until(lambda: val(scrape(port), "forq_leader") == 1, 10, what="leader")
    assert val(scrape(port), "forq_leader_epoch") >= 1
    assert val(m, "forq_worker_restarts_total", cause="crash") is not None
    rss = [v for k, v in m.items() if k[0] == "forq_worker_rss_bytes"]
    assert len(rss) == 2 and all(v > 1 << 20 for v in rss)
    wait_until(lambda: val(scrape(port), "forq_redis_rtt_seconds") > 0, 5, what="rtt")

    # A rolling restart replaces every worker: their counts carry over.
    old = f.workers()
    f.signal(signal.SIGUSR2)
    wait_until(lambda: (w := f.workers()) and len(w) == 2 and
               not set(sum(w.values(), [])) & set(sum(old.values(), [])), 15,
               what="workers replaced")
    push(r, payload("TestJob"))
    wait_until(lambda: val(scrape(port), "forq_jobs_processed_total", **ok) == 7, 10,
               what="count carried over and grown")
    m = scrape(port)
    assert val(m, "forq_jobs_processed_total", **weird) == 4
    assert val(m, "forq_job_duration_seconds_count", **{"class": "TestJob"}) == 7
    assert val(m, "forq_worker_restarts_total", cause="rolling") == 2
    assert val(m, "forq_worker_restarts_total", cause="crash") == 0
    # A worker killed outright: its lane is folded before it is reused.
    victim = sorted(sum(f.workers().values(), []))[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: (w := f.workers()) and len(w) == 2 and
               victim not in sum(w.values(), []), 15, what="killed worker replaced")
    m = scrape(port)
    assert val(m, "forq_jobs_processed_total", **ok) == 7
    assert val(m, "forq_jobs_processed_total", **weird) == 4
    assert val(m, "forq_worker_restarts_total", cause="crash") == 1

    # Quiet: not ready; queue gauges come from the master's poll of Redis.
    f.signal(signal.SIGTSTP)
    wait_until(lambda: _status(port, "/readyz") == 503, 5, what="/readyz 503 when quiet")
    push(r, *[payload("TestJob", age=100) for _ in range(3)])
    m = wait_until(lambda: (m := scrape(port)) and
                   val(m, "forq_queue_size", queue="default") == 3 and m, 10,
                   what="queue size gauge")
    assert 100 <= val(m, "forq_queue_latency_seconds", queue="default") < 200
    assert val(m, "forq_queue_size", queue="critical") == 0
    assert get(port, "/healthz")[0] == 200  # quiet is still healthy
    f.signal(signal.SIGTERM)  # a clean exit: under ASan, the master's leak check runs
    assert f.wait_exit(15) == 0


def test_paths_methods_reload_and_bad_address(forq, tmpdir_path, redis_server):
    port = free_port()
    f = start(forq, port, processes=1)
    assert get(port, "/nope")[0] == 404
    assert get(port, "/metrics", "POST")[0] == 405
    assert get(port, "/metrics", "HEAD")[0] == 200
    status, body, _ = get(port, "/healthz")
    assert status == 200 and body == "ok\n"
    # HUP moves the endpoint (new address first), then turns it off.
    port2 = free_port()
    text = open(f.config_path).read()
    with open(f.config_path, "w") as fh:
        fh.write(text.replace(f":{port}", f":{port2}"))
    f.signal(signal.SIGHUP)
    wait_until(lambda: _status(port2, "/healthz") == 200, 10, what="moved endpoint")
    assert _status(port, "/healthz") is None
    with open(f.config_path, "w") as fh:
        fh.write(text.replace(f"http_listen = 127.0.0.1:{port}\n", ""))
    f.signal(signal.SIGHUP)
    wait_until(lambda: _status(port2, "/healthz") is None, 10, what="endpoint off")
    # A port already taken at start: exit 1, naming it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        cfg = os.path.join(tmpdir_path, "taken.ini")
        with open(cfg, "w") as fh:
            fh.write(f"[forq]\nprocesses = 1\nhttp_listen = 127.0.0.1:{busy}\n")
        res = subprocess.run([FORQ, "-C", cfg], capture_output=True, text=True, timeout=30,
                             env=dict(os.environ, REDIS_URL=redis_server))
    assert res.returncode == 1 and f"cannot listen on 127.0.0.1:{busy}" in res.stdout + res.stderr
    path = os.path.join(tmpdir_path, "bad.ini")
    with open(path, "w") as fh:
        fh.write("[forq]\n\nhttp_listen = localhost:9292\n")
    res = subprocess.run([FORQ, "-n", "-C", path], capture_output=True, text=True, timeout=10)
    assert res.returncode == 78 and f"{path}:3" in res.stderr and "http_listen" in res.stderr


def test_healthz_turns_503_when_redis_stops(forq, tmpdir_path):
    rport = free_port()
    rs = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", tmpdir_path],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=rport)
        wait_until(lambda: _try_ping(r), 10, what="redis-server")
        port = free_port()
        start(forq, port, processes=1, env={"REDIS_URL": f"redis://127.0.0.1:{rport}/0"})
        wait_until(lambda: _status(port, "/healthz") == 200, 10, what="/healthz 200")
        rs.terminate()
        rs.wait(10)
        t0 = time.monotonic()
        wait_until(lambda: _status(port, "/healthz") == 503, 20, what="/healthz 503")
        assert time.monotonic() - t0 < 20
        m = scrape(port)  # still served, from memory
        assert val(m, "forq_redis_up") == 0
    finally:
        if rs.poll() is None:
            rs.kill()
            rs.wait(10)


def _try_ping(r):
    try:
        return r.ping()
    except redis.ConnectionError:
        return False


def test_slow_clients_do_not_stall_jobs_or_heartbeat(forq, redis_server):
    port = free_port()
    f = start(forq, port)
    r = redis.Redis.from_url(redis_server, decode_responses=True)
    identity = wait_until(lambda: [p for p in r.smembers("processes")], 10, what="registry")[0]
    socks = []
    try:
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 4:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            else:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")  # never read
            socks.append(s)
        beat0 = float(r.hget(identity, "beat"))
        t0 = time.monotonic()
        push(r, *[payload("TestJob") for _ in range(50)])
        wait_until(lambda: int(r.get("stat:processed") or 0) >= 50, 15,
                   what="jobs done and counted by the master's heartbeat while clients hang")
        wait_until(lambda: float(r.hget(identity, "beat")) > beat0, 12,
                   what="a heartbeat while clients hang")
        assert f.proc.poll() is None
        assert time.monotonic() - t0 < 20
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: _status(port, "/healthz") == 200, 15, what="served again")
    m = scrape(port)
    assert val(m, "forq_jobs_processed_total", **{"class": "TestJob", "queue": "default"}) == 50
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0


def test_cron_ticks_and_daemon_state(forq):
    port = free_port()
    extra = ('[cron "tick"]\nschedule = * * * * * *\nclass = TestJob\n'
             '[daemon "sleeper"]\nexec = /bin/sleep 60\nscope = node\nstop_timeout = 2\n')
    f = start(forq, port, processes=1, extra=extra)
    m = wait_until(lambda: (m := scrape(port)) and
                   val(m, "forq_cron_ticks_fired_total") >= 2 and
                   val(m, "forq_daemon_running", daemon="sleeper") == 1 and m, 15,
                   what="cron ticks fired and the daemon running")
    assert val(m, "forq_cron_ticks_skipped_total") == 0
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
