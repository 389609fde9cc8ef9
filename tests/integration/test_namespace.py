"""namespace = (issue 11, item 7): forq reads and writes every key as
"<namespace>:<key>", as the redis-namespace gem does. Sidekiq 6.4.1's own
client, API and Web UI, configured with `namespace:` (Debian's
ruby-redis-namespace), push to forq and see its work; forq push/status
honour FORQ_NAMESPACE; and a SCAN of the whole Redis finds nothing outside
the namespace. One forq run covers the paths that build keys: fetch, finish
(retry, dead), the poller, the leader, cron with its lock, the registry."""
import json
import os
import signal
import subprocess
import time

import pytest
import redis

from conftest import BUILD, FORQ, ROOT, wait_until

RUBY_CLI = os.path.join(ROOT, "tests", "ruby", "sidekiq_cli.rb")
NS = "app:sidekiq:test"


def rb(url, cmd, arg=None, ns=NS):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    env.update(REDIS_URL=url, SIDEKIQ_NAMESPACE=ns or "")
    argv = ["/usr/bin/ruby", RUBY_CLI, cmd] + ([json.dumps(arg)] if arg is not None else [])
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, f"ruby {cmd} failed: {r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def handler(tmpdir, name, body):
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\necho \"$FORQ_CLASS $FORQ_JID\" >> {tmpdir}/runs\n{body}")
    os.chmod(path, 0o755)
    return path


def ran(tmpdir, cls):
    try:
        with open(os.path.join(tmpdir, "runs")) as f:
            return [l.split()[1] for l in f if l.split()[0] == cls]
    except FileNotFoundError:
        return []


def outside(r):
    return sorted(k for k in (k.decode() for k in r.scan_iter(count=1000))
                  if not k.startswith(NS + ":"))


def cli(*args, env_ns=NS, url=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    env["REDIS_URL"] = url
    if env_ns:
        env["FORQ_NAMESPACE"] = env_ns
    return subprocess.run([FORQ, *args], capture_output=True, text=True, env=env, timeout=30)


def test_namespace_end_to_end(forq, redis_server, tmpdir_path):
    r = redis.Redis.from_url(redis_server)
    ok = handler(tmpdir_path, "ok.sh", "exit 0\n")
    bad = handler(tmpdir_path, "bad.sh", "echo boom >&2\nexit 3\n")
    conf = (f"[forq]\nprocesses = 2\nqueues = critical:2, default\nshutdown_timeout = 5\n"
            f"namespace = {NS}\ndaemon_ttl = 3\ndaemon_acquire = 0.5\n"
            f'[job "NsOk"]\nexec = {ok}\n'
            f'[job "NsUnique"]\nexec = {ok}\nunique = until_executed\n'
            f'[job "NsFail"]\nexec = {bad}\n'
            f'[cron "tick"]\nschedule = * * * * * *\nclass = NsCron\noverlap = forbid\n'
            f'[job "NsCron"]\nexec = {ok}\n'
            f'[daemon "nsd"]\nexec = sleep 60\nstop_timeout = 2\n')
    f = forq(config=conf)
    f.wait_workers(2)

    # Sidekiq's client, namespaced, and forq's own push with FORQ_NAMESPACE.
    pushed = rb(redis_server, "push", [
        {"class": "NsOk", "args": [1], "queue": "critical"},
        {"class": "NsUnique", "args": [2]},
        {"class": "NsFail", "args": [3], "retry": 2},
        {"class": "NsFail", "args": [4], "retry": 0},
        {"class": "NsOk", "args": [5], "at": time.time() + 1},
    ])
    jids = [p["jid"] for p in pushed]
    p = cli("push", "NsOk", "[6]", "--in", "1", url=redis_server)
    assert p.returncode == 0, p.stderr
    jids.append(p.stdout.split()[-1] if p.stdout.strip() else "")

    wait_until(lambda: len(ran(tmpdir_path, "NsOk")) >= 3 and ran(tmpdir_path, "NsCron")
               and ran(tmpdir_path, "NsUnique") and len(ran(tmpdir_path, "NsFail")) >= 2,
               30, interval=0.2, what=f"jobs run; log:\n{f.text()[-3000:]}")
    assert jids[0] in ran(tmpdir_path, "NsOk") and jids[4] in ran(tmpdir_path, "NsOk")

    last = {}

    def seen():
        last["v"] = st, procs, retries, dead, web = rb(redis_server, "multi", [
            ["stats", None], ["processes", None], ["retries", None], ["dead", None],
            ["web", ["/busy", "/retries"]]])
        return (st["processed"] >= 6 and st["failed"] >= 2 and st["retry_size"] == 1
                and st["dead_size"] == 1 and procs["size"] == 1
                and (st, procs, retries, dead, web))
    try:
        st, procs, retries, dead, web = wait_until(seen, 20, interval=0.5,
                                                   what="Sidekiq API sees forq's work")
    except AssertionError as e:
        raise AssertionError(f"{e}; last: {str(last.get('v'))[:3000]}") from None
    assert retries[0]["jid"] == jids[2] and dead[0]["jid"] == jids[3]
    assert procs["list"][0]["concurrency"] == 2
    identity = procs["list"][0]["identity"]
    assert web["/busy"]["status"] == 200 and identity in web["/busy"]["body"]
    assert web["/retries"]["status"] == 200 and "NsFail" in web["/retries"]["body"]

    # The same Redis without the namespace is empty to Sidekiq and forq.
    bare = rb(redis_server, "stats", ns=None)
    assert bare["processed"] == 0 and bare["processes_size"] == 0 and bare["retry_size"] == 0
    assert "nodes: 0" in cli("status", env_ns=None, url=redis_server).stdout
    st = cli("status", url=redis_server)
    assert st.returncode == 0 and "nodes: 1" in st.stdout and "retry: 1" in st.stdout, st.stdout
    assert cli("health", url=redis_server).returncode == 0

    wait_until(lambda: r.exists(f"{NS}:forq:daemon:nsd"), 15, what="the daemon's lease")
    assert r.exists(f"{NS}:stat:processed", f"{NS}:processes", f"{NS}:forq:leader",
                    f"{NS}:forq:cron:tick", f"{NS}:{identity}", f"{NS}:retry", f"{NS}:dead") == 7
    assert outside(r) == []

    # A reload cannot move the running node to another namespace.
    with open(f.config_path, "w") as fh:
        fh.write(conf.replace(f"namespace = {NS}", "namespace = elsewhere"))
    f.signal(signal.SIGHUP)
    f.wait_log("namespace cannot change on reload")
    n = len(ran(tmpdir_path, "NsOk"))
    rb(redis_server, "push", {"class": "NsOk", "args": [7]})
    wait_until(lambda: len(ran(tmpdir_path, "NsOk")) > n, 10, what="job after reload")

    # The Web UI's Quiet button: <identity>-signals, under the namespace.
    rb(redis_server, "quiet", identity)
    f.wait_log("quiet: workers stop fetching")

    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    assert outside(r) == [], outside(r)
    assert not r.sismember(f"{NS}:processes", identity)
    r.flushall()


APP = """require "sidekiq"
class NsParent
  include Sidekiq::Worker
  def perform(n)
    NsChild.perform_async(n + 1)
  end
end
class NsChild
  include Sidekiq::Worker
  def perform(n)
    File.write(ENV.fetch("NS_OUT"), "child #{n}\\n", mode: "a")
  end
end
"""


@pytest.mark.skipif(os.environ.get("FORQ_SANITIZED") == "1",
                    reason="Ruby jobs are not run under the sanitizers (test_ruby.py)")
@pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "plugins", "ruby", "libforq_ruby.so")),
                    reason="no Ruby plugin")
def test_ruby_app_pushes_under_the_namespace(forq, redis_server, tmpdir_path):
    """A job's own Sidekiq client (a job pushing a job) writes under forq's
    namespace: the Ruby plugin gives Sidekiq the namespace: option."""
    app = os.path.join(tmpdir_path, "app.rb")
    out = os.path.join(tmpdir_path, "child.log")
    with open(app, "w") as fh:
        fh.write(APP)
    f = forq("-P", "1", "-r", app, env={"FORQ_NAMESPACE": NS, "NS_OUT": out,
                                         "RAILS_ENV": "", "REDIS_PROVIDER": ""})
    f.wait_workers(1, timeout=30)
    rb(redis_server, "push", {"class": "NsParent", "args": [41]})
    wait_until(lambda: os.path.exists(out) and open(out).read() == "child 42\n", 15,
               what=f"the child job; log:\n{f.text()[-2000:]}")
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    r = redis.Redis.from_url(redis_server)
    assert outside(r) == []
    r.flushall()
