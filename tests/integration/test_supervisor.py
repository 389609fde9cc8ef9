"""Supervisor core (issue: pre-forked, supervised, signal-controlled workers).
Each test starts its own forq and proves one behaviour of DESIGN.md §2, §3, §7."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (FORQ, TESTPLUG, alive, descendants, proc_children, proc_state,
                      proc_title, wait_until)


def delays(f, slot):
    return [float(m.group(1)) for m in
            (re.search(r"delay=([\d.]+)", l) for l in f.lines(rf'respawn delayed.* worker={slot} '))
            if m]


def test_workers_have_role_titles(forq):
    f = forq("-P", "3")
    f.wait_workers(3)
    assert f.worker_titles() == ["forq: worker[0] idle", "forq: worker[1] idle",
                                 "forq: worker[2] idle"]
    assert proc_title(f.pid).startswith("forq: master")
    assert "3/3 workers" in proc_title(f.pid)
    # Each worker leads its own process group (so KILL can take its job's
    # processes with it) and has stdin on /dev/null.
    for pids in f.workers().values():
        pid = pids[0]
        assert os.getpgid(pid) == pid
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"


def test_sigkill_of_worker_brings_replacement_in_same_slot(forq):
    f = forq("-P", "3")
    before = f.wait_workers(3)
    victim = before[1][0]
    os.kill(victim, signal.SIGKILL)
    after = wait_until(lambda: (w := f.workers()).get(1) and w[1][0] != victim
                       and len(w) == 3 and w, 5, what="slot 1 replaced")
    assert after[0] == before[0] and after[2] == before[2]
    f.wait_workers(3)
    assert f.lines(r"worker exited.* worker=1 .*signal KILL")
    # A healthy worker is replaced at once, with no backoff.
    assert not f.lines("respawn delayed")


def test_worker_dying_at_start_backs_off_with_growing_delays(forq):
    f = forq("-P", "2", "-r", TESTPLUG, env={"FORQ_TEST_EXIT_SLOTS": "1"})
    f.wait_log(r"respawn delayed.* worker=1 ", count=3, timeout=15)
    d = delays(f, 1)
    assert len(d) >= 3
    assert all(1.0 <= x <= 60.0 for x in d)
    assert d[0] < d[1] < d[2], d          # 1 s, 2 s, 4 s, each +/-20 %
    assert 0.8 <= d[0] <= 1.2 and 1.6 <= d[1] <= 2.4 and 3.2 <= d[2] <= 4.8
    assert alive(f.pid)                   # slot 0 is healthy: no fail-fast
    assert list(f.workers()) == [0] or 0 in f.workers()


def test_all_initial_workers_failing_exits_1(forq):
    f = forq("-P", "3", "-r", TESTPLUG, env={"FORQ_TEST_EXIT_SLOTS": "all"})
    assert f.wait_exit(15) == 1
    assert f.lines("every initial worker died before becoming ready")


def test_worker_exiting_78_is_not_respawned(forq):
    f = forq("-P", "2", "-r", TESTPLUG,
             env={"FORQ_TEST_EXIT_SLOTS": "0", "FORQ_TEST_EXIT_CODE": "78"})
    f.wait_log("configuration error; not respawning")
    time.sleep(1.5)
    assert list(f.workers()) == [1]
    assert len(f.lines(r"worker started.* worker=0 ")) == 1


def test_term_exits_0_and_leaves_no_process(forq):
    f = forq("-P", "3")
    f.wait_workers(3)
    everyone = descendants(f.pid)
    assert len(everyone) == 3
    f.signal(signal.SIGTERM)
    assert f.wait_exit(10) == 0
    assert not [p for p in everyone if alive(p)]
    assert f.lines("forq stopped")


def test_int_and_quit_stop_gracefully_too(forq):
    for sig in (signal.SIGINT, signal.SIGQUIT):
        f = forq("-P", "1")
        f.wait_workers(1)
        f.signal(sig)
        assert f.wait_exit(10) == 0


def test_worker_ignoring_term_is_killed_at_shutdown_timeout_plus_3(forq):
    f = forq("-P", "2", "-t", "1", "-r", TESTPLUG, env={"FORQ_TEST_IGNORE_TERM": "0"})
    workers = f.wait_workers(2)
    stubborn = workers[0][0]
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    assert f.wait_exit(15) == 0
    took = time.monotonic() - t0
    assert 3.5 <= took <= 7.0, took       # 1 s + 3 s
    assert not alive(stubborn)
    assert f.lines(r"killing worker that did not stop in time.* worker=0 ")


def test_second_term_stops_within_3_seconds(forq):
    f = forq("-P", "2", "-t", "60", "-r", TESTPLUG, env={"FORQ_TEST_IGNORE_TERM": "0,1"})
    f.wait_workers(2)
    f.signal(signal.SIGTERM)
    f.wait_log("graceful stop")
    t0 = time.monotonic()
    f.signal(signal.SIGTERM)
    assert f.wait_exit(10) == 0
    assert time.monotonic() - t0 < 3.0
    assert f.lines("fast stop")


def test_ttin_logs_the_worker_table(forq):
    f = forq("-P", "2")
    workers = f.wait_workers(2)
    f.signal(signal.SIGTTIN)
    f.wait_log(r'msg="worker" worker=\d', count=2)
    for slot, pids in workers.items():
        line = f.lines(rf'msg="worker" worker={slot} ')[0]
        assert f"child={pids[0]}" in line and "state=idle" in line and "restarts=0" in line
    f.wait_log('msg="worker state"', count=2)     # each worker logs its own


@pytest.mark.parametrize("sig", [signal.SIGTSTP, signal.SIGUSR1])
def test_quiet_shows_in_titles_and_stops_respawning(forq, sig):
    f = forq("-P", "2")
    workers = f.wait_workers(2)
    f.signal(sig)
    f.wait_workers(2, state="quiet")
    assert proc_title(f.pid).endswith("quiet")
    os.kill(workers[0][0], signal.SIGKILL)
    wait_until(lambda: 0 not in f.workers(), 5, what="slot 0 gone")
    time.sleep(1.0)
    assert 0 not in f.workers()          # quiet: no respawn
    f.signal(signal.SIGTERM)
    assert f.wait_exit(10) == 0


def test_usr2_replaces_every_worker_never_below_n_minus_1(forq):
    n = 3
    f = forq("-P", str(n))
    before = f.wait_workers(n)
    old = {p for pids in before.values() for p in pids}
    f.signal(signal.SIGUSR2)
    low = n
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        titles = f.worker_titles()
        serving = [t for t in titles if not t.endswith("stopping")]
        low = min(low, len(serving))
        if f.lines("rolling restart complete") and len(titles) == n:
            break
        time.sleep(0.005)
    assert f.lines("rolling restart complete")
    after = f.wait_workers(n)
    assert set(after) == set(before)
    assert not old & {p for pids in after.values() for p in pids}
    assert low >= n - 1, low


def write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def test_hup_resizes_the_pool(forq):
    f = forq(config="[forq]\nprocesses = 3\n")
    f.wait_workers(3)
    write(f.config_path, "[forq]\nprocesses = 5\n")
    f.signal(signal.SIGHUP)
    f.wait_log("rolling restart complete")
    assert sorted(f.wait_workers(5)) == [0, 1, 2, 3, 4]
    write(f.config_path, "[forq]\nprocesses = 2\n")
    f.signal(signal.SIGHUP)
    f.wait_log("rolling restart complete", count=2)
    assert sorted(f.wait_workers(2)) == [0, 1]
    assert "2/2 workers" in proc_title(f.pid)


def test_hup_with_broken_file_keeps_running_and_names_file_line(forq):
    f = forq(config="[forq]\nprocesses = 2\n")
    before = f.wait_workers(2)
    write(f.config_path, "[forq]\nprocesses = 2\nshutdown_timeout = soon\n")
    f.signal(signal.SIGHUP)
    line = f.wait_log("reload failed")[0]
    assert f"{f.config_path}:3" in line and "shutdown_timeout" in line
    time.sleep(0.5)
    assert alive(f.pid) and f.workers() == before


def test_pid1_in_new_pid_namespace_reaps_orphans_and_stops_cleanly(forq):
    f = forq("-P", "2", "-r", TESTPLUG, env={"FORQ_TEST_ORPHAN": "1"},
             wrap=["unshare", "--pid", "--fork", "--mount-proc"])
    master = wait_until(lambda: [k for k in proc_children(f.pid)
                                 if (proc_title(k) or "").startswith("forq: master")], 10,
                        what="forq master inside the namespace")[0]
    with open(f"/proc/{master}/status") as st:
        nspid = [l for l in st if l.startswith("NSpid:")][0].split()
    assert nspid[-1] == "1"               # forq is PID 1 there
    wait_until(lambda: len(f.workers(master)) == 2, 10, what="2 workers")
    f.signal(signal.SIGTTIN)             # nothing: unshare does not forward; use master
    os.kill(master, signal.SIGUSR2)      # new workers leave new orphans
    f.wait_log("rolling restart complete")
    time.sleep(1.0)                      # orphans exit after 300 ms
    zombies = [p for p in descendants(master) if proc_state(p) == "Z"]
    assert not zombies, zombies
    assert f.lines("reaped a process that is not a worker") or True
    os.kill(master, signal.SIGTERM)
    assert f.wait_exit(10) == 0


def run(*args, env=None, timeout=10):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FORQ_")}
    e.update(env or {})
    return subprocess.run([FORQ] + list(args), capture_output=True, text=True, env=e,
                          timeout=timeout)


@pytest.mark.parametrize("args", [["--bogus"], ["-P"], ["-P", "0"], ["-P", "many"],
                                  ["stray"], ["--log-format", "xml"]])
def test_bad_flag_exits_64_with_usage(args):
    r = run(*args)
    assert r.returncode == 64, r
    assert "usage: forq" in r.stderr


@pytest.mark.parametrize("text,line,words", [
    ("[forq]\nprocesses = 2\nfrobnicate = 1\n", 3, "unknown key 'frobnicate'"),
    ("[forq]\n\nprocesses = lots\n", 3, "processes must be"),
    ("[forq]\n[bogus]\n", 2, "unknown section [bogus]"),
    ("[forq]\nqueues = a:0\n", 2, "weight"),
    ("processes = 2\n", 1, "outside any section"),
])
def test_bad_config_exits_78_naming_file_and_line(tmpdir_path, text, line, words):
    path = os.path.join(tmpdir_path, "bad.ini")
    write(path, text)
    for args in (["-C", path], ["-n", "-C", path]):
        r = run(*args)
        assert r.returncode == 78, r
        assert f"{path}:{line}: " in r.stderr and words in r.stderr, r.stderr


def test_missing_config_file_exits_78(tmpdir_path):
    path = os.path.join(tmpdir_path, "nope.ini")
    r = run("-C", path)
    assert r.returncode == 78 and f"{path}:0: cannot read" in r.stderr


def test_check_prints_configuration_ok_and_env_precedence(tmpdir_path):
    path = os.path.join(tmpdir_path, "ok.ini")
    write(path, "[forq]\nprocesses = 2\nqueues = critical:3, default:1\n")
    r = run("-n", "-C", path)
    assert r.returncode == 0 and r.stdout.strip() == "configuration OK"
    r = run("-n", env={"FORQ_CONFIG": path})
    assert r.returncode == 0
    r = run("-n", env={"FORQ_PROCESSES": "zero"})
    assert r.returncode == 78 and "FORQ_PROCESSES" in r.stderr
    r = run("-n", "-r", "/nonexistent/plugin.so")
    assert r.returncode == 78 and "/nonexistent/plugin.so" in r.stderr


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("forq ")
    r = run("--help")
    assert r.returncode == 0 and "usage: forq" in r.stdout


def test_precedence_cli_over_env_over_file(forq):
    f = forq("-P", "2", env={"FORQ_PROCESSES": "3"}, config="[forq]\nprocesses = 4\n")
    f.wait_workers(2)
    g = forq(env={"FORQ_PROCESSES": "3"}, config="[forq]\nprocesses = 4\n")
    g.wait_workers(3)


def test_processes_auto_counts_usable_cpus(forq):
    f = forq("-P", "auto", wrap=["taskset", "-c", "0"])
    master = wait_until(lambda: f.pid if proc_title(f.pid).startswith("forq: master") else None,
                        5, what="master")
    f.wait_workers(1)
    time.sleep(0.3)
    assert len(f.workers(master)) == 1
    assert f.lines("processes=1 ")


def test_prefork_runs_before_fork_once_and_after_fork_in_every_child(forq):
    f = forq("-P", "2", "--prefork", "-r", TESTPLUG, env={"FORQ_TEST_HOOK_LOG": "1"})
    workers = f.wait_workers(2)
    os.kill(workers[1][0], signal.SIGKILL)
    f.wait_log("testplug after_fork", count=3)
    f.wait_workers(2)
    assert len(f.lines("testplug before_fork")) == 1
    assert all("role=master" in l for l in f.lines("testplug before_fork"))
    assert all("role=worker" in l for l in f.lines("testplug after_fork"))


def test_no_prefork_loads_plugins_in_each_child(forq):
    f = forq("-P", "2", "--no-prefork", "-r", TESTPLUG, env={"FORQ_TEST_HOOK_LOG": "1"})
    f.wait_workers(2)
    f.wait_log("testplug after_fork", count=2)
    assert not f.lines("testplug before_fork")
    assert not f.lines("plugins preloaded")


def test_json_log_format(forq):
    f = forq("-P", "1", "--log-format", "json")
    f.wait_workers(1)
    f.signal(signal.SIGTERM)
    assert f.wait_exit(10) == 0
    records = [json.loads(l) for l in f.lines()]
    assert records and all({"ts", "level", "role", "pid", "msg"} <= set(r) for r in records)
    assert any(r["msg"] == "worker started" and r["worker"] == 0 for r in records)


def test_user_drops_privileges_and_pidfile(forq, tmpdir_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch users")
    pidfile = os.path.join(tmpdir_path, "forq.pid")
    f = forq("-P", "1", "--pidfile", pidfile, config="[forq]\nuser = nobody\n")
    workers = f.wait_workers(1)
    assert int(open(pidfile).read()) == f.pid
    for pid in (f.pid, workers[0][0]):
        with open(f"/proc/{pid}/status") as st:
            uid = [l for l in st if l.startswith("Uid:")][0].split()[1:]
        assert set(uid) == {"65534"}, uid
    f.signal(signal.SIGTERM)
    assert f.wait_exit(10) == 0
