"""Operations (issue 13): workers recycled past max_rss or max_jobs with no job
lost or cut short, what systemd hears over NOTIFY_SOCKET (READY, STATUS,
RELOADING, WATCHDOG, STOPPING), and a log file that a rename plus reopen
rotates without losing a line."""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

from conftest import FORQ, TESTPLUG, assert_no_sanitizer_report, wait_until


def rconn(url):
    return redis.Redis.from_url(url, decode_responses=True)


def push(r, cls, args_list):
    """Sidekiq's own LPUSH of a payload per args; returns the jids."""
    jids = []
    for args in args_list:
        jid = os.urandom(12).hex()
        now = time.time()
        r.lpush("queue:default", json.dumps({"class": cls, "args": args, "jid": jid,
                                             "queue": "default", "retry": True,
                                             "created_at": now, "enqueued_at": now}))
        jids.append(jid)
    r.sadd("queues", "default")
    return jids


def runs(tmpdir):
    """{pid: [jid, ...]} from the test plugin's record files."""
    out = {}
    for path in glob.glob(os.path.join(tmpdir, "runs.*")):
        out[int(path.rsplit(".", 1)[1])] = open(path).read().split()
    return out


def all_runs(tmpdir):
    return [j for jids in runs(tmpdir).values() for j in jids]


def assert_each_ran_once(r, tmpdir, jids):
    ran = all_runs(tmpdir)
    assert sorted(ran) == sorted(jids), (len(ran), len(jids))
    assert r.llen("queue:default") == 0
    assert r.zcard("retry") == 0 and r.zcard("dead") == 0


def rss_kb(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def test_max_rss_recycles_a_growing_worker_replacement_first(forq, redis_server, tmpdir_path):
    env = {"FORQ_TEST_GROW_MB": "16", "FORQ_TEST_RECORD_DIR": tmpdir_path,
           "FORQ_TEST_RECORD_MS": "250"}
    f = forq(config=f"[forq]\nprocesses = 1\nplugins = {TESTPLUG}\n", env=env)
    (pid,), = f.wait_workers(1).values()
    # The limit follows this build's own size (ASan's is larger), set by a
    # reload: the app plus 50 MiB, crossed by the fourth 16 MiB job.
    limit = rss_kb(pid) + 50 * 1024
    with open(f.config_path, "a") as fh:
        fh.write(f"max_rss = {limit}K\n")
    f.signal(signal.SIGHUP)
    f.wait_log("rolling restart complete")
    f.wait_workers(1)
    r = rconn(redis_server)
    jids = push(r, "TestJob", [["grow", "record", i] for i in range(14)])
    wait_until(lambda: len(all_runs(tmpdir_path)) == len(jids) and
               len(f.lines("job done")) == len(jids), 40, what="14 jobs done")
    line = f.wait_log(r"recycling worker.*reason=max_rss")[0]
    kb = int(re.search(r"memory_kb=(\d+)", line).group(1))
    assert f"max_rss_kb={limit}" in line and kb > limit
    assert int(re.search(r" jobs=(\d+)", line).group(1)) >= 3
    # replacement first: the old worker was told to stop only then, and its
    # job (if any) finished; it exited cleanly
    old = int(re.search(r" child=(\d+)", line).group(1))
    f.wait_log(rf"stopping worker.*child={old} reason=max_rss")
    started = f.lines(r"worker started.*replacement=true")
    assert len(started) >= 2   # the reload's and the recycle's
    f.wait_log(rf"worker exited.*child={old} status=\"exit 0\"")
    assert_each_ran_once(r, tmpdir_path, jids)
    assert len(runs(tmpdir_path)) >= 2
    assert not f.lines("job failed") and not f.lines(r"level=error")
    f.signal(signal.SIGTTIN)
    table = f.wait_log("worker table")[0]
    assert "restarts_rolling=1 " in table and "restarts_crash=0 " in table, table
    assert int(re.search(r"restarts_max_rss=(\d+)", table).group(1)) >= 1


@pytest.mark.parametrize("kind", ["rss", "pss"])
def test_max_rss_below_the_app_warns_once_and_does_not_recycle(forq, redis_server,
                                                                tmpdir_path, kind):
    env = {"FORQ_TEST_RECORD_DIR": tmpdir_path}
    f = forq(config=f"[forq]\nprocesses = 2\nplugins = {TESTPLUG}\nmax_rss = 1K\n"
                    f"max_rss_kind = {kind}\n", env=env)
    f.wait_workers(2)
    r = rconn(redis_server)
    jids = push(r, "TestJob", [["record", i] for i in range(4)])
    wait_until(lambda: len(all_runs(tmpdir_path)) == 4, 10, what="jobs ran")
    time.sleep(2.5)   # the master looks each second
    warned = f.lines("over max_rss before growing")
    assert len(warned) == 2, warned   # one per worker, not one per look
    assert warned[0].endswith("max_rss_kb=1") and f"kind={kind}" in warned[0]
    assert int(re.search(r"memory_kb=(\d+)", warned[0]).group(1)) > 1
    assert not f.lines("recycling worker")
    assert_each_ran_once(r, tmpdir_path, jids)


def test_max_jobs_recycles_after_n_jobs_and_loses_none(forq, redis_server, tmpdir_path):
    env = {"FORQ_TEST_RECORD_DIR": tmpdir_path, "FORQ_TEST_RECORD_MS": "150"}
    f = forq(config=f"[forq]\nprocesses = 1\nplugins = {TESTPLUG}\nmax_jobs = 3\n", env=env)
    f.wait_workers(1)
    r = rconn(redis_server)
    jids = push(r, "TestJob", [["record", i] for i in range(20)])
    wait_until(lambda: len(all_runs(tmpdir_path)) == len(jids) and
               len(f.lines("job done")) == len(jids), 30, what="20 jobs done")
    lines = f.wait_log(r"recycling worker.*reason=max_jobs")
    assert all(int(re.search(r" jobs=(\d+)", l).group(1)) >= 3 for l in lines)
    assert all("max_jobs=3" in l for l in lines)
    assert len(runs(tmpdir_path)) >= 2
    assert_each_ran_once(r, tmpdir_path, jids)
    assert not f.lines(r"worker exited.*status=\"signal")
    # each recycle is counted once its replacement took over
    n = len(f.wait_log(r"stopping worker.*reason=max_jobs", count=len(lines)))
    f.signal(signal.SIGTTIN)
    table = f.wait_log("worker table")[0]
    assert re.search(rf"restarts_max_jobs={n}\b", table) and "restarts_crash=0 " in table, table


def notify_messages(sock, into, stop):
    while not stop.is_set():
        try:
            into.append(sock.recv(4096).decode())
        except socket.timeout:
            pass


def test_systemd_hears_ready_status_reloading_watchdog_stopping(forq, tmpdir_path):
    path = os.path.join(tmpdir_path, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.1)
    msgs, stop = [], threading.Event()
    t = threading.Thread(target=notify_messages, args=(sock, msgs, stop), daemon=True)
    t.start()
    try:
        f = forq(config="[forq]\nprocesses = 2\n",
                 env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
        wait_until(lambda: "READY=1" in msgs, 15, what=f"READY=1 in {msgs}")
        assert any(re.match(r"STATUS=2/2 workers, \d busy, (not )?leader", m) for m in msgs), msgs
        # the leader tag follows the lease, taken within about a second
        wait_until(lambda: "STATUS=2/2 workers, 0 busy, leader" in msgs, 10, what="leader")
        n = msgs.count("WATCHDOG=1")
        wait_until(lambda: msgs.count("WATCHDOG=1") >= n + 2, 3, what="two more pings")
        f.signal(signal.SIGHUP)
        wait_until(lambda: any(m.startswith("RELOADING=1") for m in msgs), 10, what="RELOADING")
        reload_at = next(i for i, m in enumerate(msgs) if m.startswith("RELOADING=1"))
        assert re.search(r"MONOTONIC_USEC=\d+", msgs[reload_at])
        wait_until(lambda: "READY=1" in msgs[reload_at:], 15, what="READY after reload")
        assert f.lines("rolling restart complete")
        n = msgs.count("WATCHDOG=1")
        wait_until(lambda: msgs.count("WATCHDOG=1") > n, 3, what="a ping after the reload")
        f.signal(signal.SIGTERM)
        assert f.wait_exit() == 0
        time.sleep(0.2)
    finally:
        stop.set()
        t.join()
        sock.close()
    stopping = msgs.index("STOPPING=1")
    ready2 = reload_at + msgs[reload_at:].index("READY=1")
    assert msgs.index("READY=1") < reload_at < ready2 < stopping
    assert "WATCHDOG=1" in msgs[ready2:stopping]
    assert not [m for m in msgs[stopping + 1:] if m.startswith(("READY", "RELOADING"))]


def test_children_do_not_inherit_notify_socket(forq, redis_server, tmpdir_path):
    path = os.path.join(tmpdir_path, "notify.sock")
    seen = os.path.join(tmpdir_path, "seen")
    h = os.path.join(tmpdir_path, "env.sh")
    with open(h, "w") as fh:
        fh.write(f'#!/bin/sh\necho "${{NOTIFY_SOCKET:-unset}} ${{WATCHDOG_USEC:-unset}}" > {seen}\n')
    os.chmod(h, 0o755)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        f = forq(config=f'[forq]\nprocesses = 1\n[job "EnvJob"]\nexec = {h}\n',
                 env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "5000000"})
        f.wait_workers(1)
        push(rconn(redis_server), "EnvJob", [[]])
        wait_until(lambda: os.path.exists(seen) and open(seen).read(), 10, what="handler ran")
        assert open(seen).read().split() == ["unset", "unset"]
    finally:
        sock.close()


def test_log_file_rename_and_reopen_loses_no_line(forq, redis_server, tmpdir_path):
    log = os.path.join(tmpdir_path, "forq.log")
    pidfile = os.path.join(tmpdir_path, "forq.pid")
    h = os.path.join(tmpdir_path, "out.sh")
    with open(h, "w") as fh:
        fh.write('#!/bin/sh\necho "handler says $FORQ_JID"\n')
    os.chmod(h, 0o755)
    f = forq(config=f'[forq]\nprocesses = 2\nlog_file = {log}\npidfile = {pidfile}\n'
                    f'[job "OutJob"]\nexec = {h}\n')
    wait_until(lambda: os.path.exists(log) and
               open(log).read().count("worker started") == 2, 10, what="log file")
    r = rconn(redis_server)
    jids, stop = [], threading.Event()

    def pusher():
        while not stop.is_set():
            jids.extend(push(r, "OutJob", [[]]))
            time.sleep(0.02)
    t = threading.Thread(target=pusher, daemon=True)
    t.start()
    done_in = lambda p: open(p).read().count("job done") if os.path.exists(p) else 0
    try:
        wait_until(lambda: done_in(log) >= 10, 15, what="jobs logged")
        # logrotate: rename, then the postrotate command
        os.rename(log, log + ".1")
        rc = subprocess.run([FORQ, "reopen-logs", "-C", f.config_path], timeout=10,
                            capture_output=True, text=True)
        assert rc.returncode == 0, rc.stderr
        # the workers write to the new file too, not only the master
        wait_until(lambda: done_in(log) >= 10, 15, what="jobs logged in the new file")
        os.rename(log, log + ".2")
        f.signal(signal.SIGHUP)   # HUP reopens as well
        wait_until(lambda: done_in(log) >= 10, 15, what="jobs logged after HUP")
    finally:
        stop.set()
        t.join()
    wait_until(lambda: sum(done_in(p) for p in (log, log + ".1", log + ".2")) >= len(jids),
               20, what="every job done")
    f.signal(signal.SIGTERM)
    assert f.wait_exit() == 0
    files = {p: open(p).read() for p in (log + ".1", log + ".2", log)}
    text = "".join(files.values())
    for jid in jids:
        assert len(re.findall(rf"job done.*jid={jid}", text)) == 1, jid
        assert len(re.findall(rf'job output.*jid={jid} .*line="handler says {jid}"', text)) == 1
    assert "log file reopened" in files[log + ".2"] and "signal=WINCH" in files[log + ".2"]
    assert "signal=HUP" in files[log]
    for body in files.values():
        assert "role=worker" in body and "role=master" in body
        assert_no_sanitizer_report(body)
    assert "forq stopped" in files[log]
    assert not f.text().strip()   # nothing went to the old stdout


def test_reopen_logs_refuses_a_pid_that_is_not_forq():
    rc = subprocess.run([FORQ, "reopen-logs", "--pid", str(os.getpid())], timeout=10,
                        capture_output=True, text=True)
    assert rc.returncode == 1 and "not a forq master" in rc.stderr
    rc = subprocess.run([FORQ, "reopen-logs", "--bogus"], timeout=10, capture_output=True,
                        text=True)
    assert rc.returncode == 64 and "usage" in rc.stderr
