"""Redis Sentinel: forq finds the master through the sentinels and follows
a failover. One master, one replica and three sentinels, each a real
redis-server the test starts on a free loopback port with its files in the
test's directory, stopped by pid. A SIGKILLed master (down-after 1 s): the
replica is promoted, the forq master and its workers log the switch and
carry on, and every job on the replica at the kill, including those forq
had fetched, runs at least once. A graceful SENTINEL FAILOVER with
min_replicas = 1. forq push, status and health through redis+sentinel://.
A READONLY reply (a node demoted under forq) is a lost connection."""
import json
import os
import signal
import subprocess
import threading
import time

import redis
import redis.sentinel

from conftest import FORQ, TESTPLUG, alive, free_port, wait_until

NAME = "mymaster"


def start_redis(tmp, name, *extra):
    port = free_port()
    d = os.path.join(tmp, name)
    os.mkdir(d)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", d, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return port, proc


def ping(port, **kw):
    try:
        return redis.Redis(port=port, socket_timeout=0.5, **kw).ping()
    except redis.RedisError:
        return False


def tls_files(tmp):
    """A CA and a certificate for 127.0.0.1 (the test of rediss:// makes
    them the same way)."""
    from test_redis_tls import make_cert
    make_cert(tmp, "ca", "/CN=forq test CA")
    make_cert(tmp, "server", "/CN=localhost", ca="ca",
              ext="subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,"
                  "clientAuth")
    return {"ca": f"{tmp}/ca.crt", "cert": f"{tmp}/server.crt", "key": f"{tmp}/server.key"}


class Cluster:
    """A master, a replica and three sentinels (quorum 2)."""

    def __init__(self, tmp, down_after_ms=1000, password=None, tls=None):
        """tls: tls_files(); then every node and sentinel speaks TLS only,
        replication and the sentinels' links included."""
        self.procs, self.password = {}, password
        self.kw = {"ssl": True, "ssl_ca_certs": tls["ca"]} if tls else {}
        tls_conf = (f"tls-cert-file {tls['cert']}\ntls-key-file {tls['key']}\n"
                    f"tls-ca-cert-file {tls['ca']}\ntls-auth-clients no\n"
                    "tls-replication yes\n") if tls else ""
        tls_args = [a for line in tls_conf.splitlines() for a in ("--" + line).split(" ", 1)]

        def start(name, *extra):
            port = free_port()
            tls_port = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
            return self._start(tmp, name, port, tls_port + tls_args + list(extra))
        self.master_port = start("master")
        self.replica_port = start("replica", "--replicaof", "127.0.0.1", str(self.master_port))
        # linked before the sentinels start: their first INFO of the master
        # then lists the replica (the next comes 10 s later)
        wait_until(lambda: ping(self.master_port, **self.kw) and
                   ping(self.replica_port, **self.kw) and
                   redis.Redis(port=self.replica_port, **self.kw).info("replication")[
                       "master_link_status"] == "up", 10, what="redis master and replica")
        self.sentinel_ports = []
        for i in range(3):
            port = free_port()
            conf = os.path.join(tmp, f"sentinel{i}.conf")
            with open(conf, "w") as f:  # sentinels rewrite their own file
                port_conf = f"port 0\ntls-port {port}\n{tls_conf}" if tls else f"port {port}\n"
                f.write(f"{port_conf}bind 127.0.0.1\ndir {tmp}\n"
                        f"sentinel monitor {NAME} 127.0.0.1 {self.master_port} 2\n"
                        f"sentinel down-after-milliseconds {NAME} {down_after_ms}\n"
                        f"sentinel failover-timeout {NAME} 4000\n")
                if password:  # clients and the other sentinels need it
                    f.write(f"requirepass {password}\nsentinel sentinel-pass {password}\n")
            self.procs[f"sentinel{i}"] = subprocess.Popen(
                ["redis-sentinel", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.sentinel_ports.append(port)
        wait_until(self.ready, 30, interval=0.2, what="sentinels know each other and the replica")

    def _start(self, tmp, name, port, args):
        d = os.path.join(tmp, name)
        os.mkdir(d)
        self.procs[name] = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", d, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return port

    def sentinel(self, i=0):
        return redis.Redis(port=self.sentinel_ports[i], socket_timeout=1, decode_responses=True,
                           password=self.password, **self.kw)

    def ready(self):
        try:
            for i in range(3):
                s = self.sentinel(i)
                replicas = s.execute_command("SENTINEL", "REPLICAS", NAME)
                if len(s.execute_command("SENTINEL", "SENTINELS", NAME)) != 2 or not replicas:
                    return False
                if "s_down" in str(replicas) or "disconnected" in str(replicas):
                    return False
            return redis.Redis(port=self.replica_port, **self.kw).info("replication")[
                "master_link_status"] == "up"
        except redis.RedisError:
            return False

    def url(self, scheme="redis+sentinel"):
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"{scheme}://{nodes}/{NAME}/0"

    def client(self):
        """A Sidekiq-style client: redis-py's Sentinel support."""
        s = redis.sentinel.Sentinel([("127.0.0.1", p) for p in self.sentinel_ports],
                                    socket_timeout=1,
                                    sentinel_kwargs={"password": self.password, **self.kw})
        return s.master_for(NAME, socket_timeout=1, decode_responses=True, **self.kw)

    def current_master(self):
        return self.sentinel().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait(10)


class Pusher(threading.Thread):
    """Pushes a recording TestJob every 10 ms through the Sentinel client,
    retrying the same job until a master takes it; `acked` holds the jids
    a master acknowledged."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster, self.acked, self.n = cluster, [], 0
        self.paused, self.done = threading.Event(), threading.Event()
        self.renew = threading.Event()

    def run(self):
        r = self.cluster.client()
        while not self.done.is_set():
            if self.paused.is_set():
                time.sleep(0.01)
                continue
            if self.renew.is_set():  # a client that asks the sentinels afresh
                r = self.cluster.client()
                self.renew.clear()
            jid = f"{self.n:024x}"
            now = time.time()
            job = json.dumps({"retry": True, "queue": "default", "class": "TestJob",
                              "args": ["record"], "jid": jid, "created_at": now,
                              "enqueued_at": now})
            try:
                pipe = r.pipeline(transaction=True)
                pipe.sadd("queues", "default")
                pipe.lpush("queue:default", job)
                pipe.execute()
                self.acked.append(jid)
                self.n += 1
                time.sleep(0.01)
            except redis.RedisError:
                time.sleep(0.1)  # failover under way: ask the sentinels again


def recorded(rec_dir):
    jids = []
    for name in os.listdir(rec_dir):
        with open(os.path.join(rec_dir, name)) as f:
            jids += f.read().split()
    return set(jids)


def working_jobs(port):
    r = redis.Redis(port=port, decode_responses=True)
    return {json.loads(j)["jid"] for k in r.scan_iter("forq:working:*") for j in r.lrange(k, 0, -1)}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_forq(forq, cluster, tmp, config="", job_ms=50, scheme="redis+sentinel"):
    rec = os.path.join(tmp, "runs")
    os.mkdir(rec)
    env = {"REDIS_URL": cluster.url(scheme), "FORQ_TEST_RECORD_DIR": rec, "FORQ_TEST_RECORD_MS": str(job_ms)}
    cfg = "[forq]\nprocesses = 3\nshutdown_timeout = 5\n" + config
    f = forq("--prefork", "-r", TESTPLUG, env=env, config=cfg)
    f.wait_workers(3)
    f.wait_log(r"redis master found", timeout=10)
    return f, rec


def test_sigkill_master_fails_over_and_no_fetched_job_is_lost(forq, tmpdir_path):
    c = Cluster(tmpdir_path)
    try:
        f, rec = start_forq(forq, c, tmpdir_path)
        env = dict(os.environ, REDIS_URL=c.url())
        # forq push and status find the master through the sentinels too
        out = subprocess.run([FORQ, "push", "TestJob", '["record"]', "--jid", "f" * 24],
                             capture_output=True, text=True, env=env, timeout=20)
        assert out.returncode == 0, out.stderr
        out = subprocess.run([FORQ, "status"], capture_output=True, text=True, env=env,
                             timeout=20)
        assert out.returncode == 0 and "default" in out.stdout, out.stdout + out.stderr
        out = subprocess.run([FORQ, "health", "--pid", str(f.pid)], capture_output=True,
                             text=True, env=env, timeout=20)
        assert out.returncode == 0, out.stdout + out.stderr

        p = Pusher(c)
        p.start()
        time.sleep(1.5)
        p.paused.set()
        time.sleep(0.05)
        m = redis.Redis(port=c.master_port)
        assert m.execute_command("WAIT", 1, 3000) == 1  # the replica has every push
        before = set(p.acked) | {"f" * 24}
        fetched = working_jobs(c.master_port)
        assert fetched, "no job in a working list at the kill: nothing was tested"
        cpu0 = cpu_seconds(f.pid)
        c.procs["master"].send_signal(signal.SIGKILL)
        c.procs["master"].wait(5)
        p.paused.clear()

        wait_until(lambda: c.current_master()[1] == str(c.replica_port), 20, interval=0.2,
                   what="the replica promoted")
        # the forq master and each of its three workers log the switch once
        f.wait_log(r"redis master switched.*to=127\.0\.0\.1:%d" % c.replica_port, count=4,
                   timeout=20)
        pushed_after = len(p.acked)
        wait_until(lambda: len(p.acked) > pushed_after + 50, 20, what="pushes after failover")
        p.done.set()
        p.join(5)
        every = set(p.acked) | before
        wait_until(lambda: every <= recorded(rec), 30, interval=0.2,
                   what=f"{len(every - recorded(rec))} jobs not run")
        assert fetched <= recorded(rec)
        assert alive(f.pid) and len(f.workers()) == 3
        assert not working_jobs(c.replica_port) - recorded(rec)
        # no busy loop while the master was gone (generous bound)
        assert cpu_seconds(f.pid) - cpu0 < 5, cpu_seconds(f.pid) - cpu0
        assert not f.lines(r"level=(error|fatal)|job failed"), f.lines(r"level=(error|fatal)")
        f.signal(signal.SIGTERM)
        assert f.wait_exit(20) == 0
    finally:
        c.stop()


def test_graceful_failover_with_min_replicas(forq, tmpdir_path):
    """Sentinels that require a password (sentinel_password), too."""
    c = Cluster(tmpdir_path, password="sentinel-s3cr3t")
    try:
        f, rec = start_forq(forq, c, tmpdir_path, "min_replicas = 1\nmin_replicas_timeout = 2\n"
                            "sentinel_password = sentinel-s3cr3t\n", job_ms=2)
        p = Pusher(c)
        p.start()
        wait_until(lambda: len(recorded(rec)) >= 50, 20, what="jobs run with min_replicas = 1")
        # Until the sentinels demote it (8 s or more) the old master takes
        # writes it will drop: a client's pushes then are Redis's to lose,
        # so the pusher pauses over the switch and asks the sentinels again.
        p.paused.set()
        time.sleep(0.05)
        assert redis.Redis(port=c.master_port).execute_command("WAIT", 1, 3000) == 1
        # with the replica attached every WAIT was acknowledged
        assert not f.lines(r"fewer replicas"), f.lines(r"fewer replicas")
        c.sentinel(1).execute_command("SENTINEL", "FAILOVER", NAME)
        wait_until(lambda: c.current_master()[1] == str(c.replica_port), 20, interval=0.2,
                   what="the replica promoted")
        p.renew.set()
        p.paused.clear()
        # forq leaves the old master (still a master until the sentinels
        # demote it) on its own: the master and its three workers switch
        f.wait_log(r"redis master switched.*to=127\.0\.0\.1:%d" % c.replica_port, count=4,
                   timeout=20)
        # the sentinels would demote the old master 8 s or more later, and
        # until a replica is back min_replicas = 1 holds every worker: do it now
        redis.Redis(port=c.master_port).replicaof("127.0.0.1", c.replica_port)
        pushed_after = len(p.acked)
        wait_until(lambda: len(p.acked) > pushed_after + 50, 20, what="pushes after failover")
        p.done.set()
        p.join(5)
        wait_until(lambda: set(p.acked) <= recorded(rec), 30, interval=0.2,
                   what="every job pushed to run")
        assert alive(f.pid) and len(f.workers()) == 3
        assert not f.lines(r"level=(error|fatal)|job failed"), f.lines(r"level=(error|fatal)")
        assert "s3cr3t" not in f.text()
        f.signal(signal.SIGTERM)
        assert f.wait_exit(20) == 0
    finally:
        c.stop()


def test_min_replicas_without_enough_replicas_warns_and_waits(forq, tmpdir_path, redis_server):
    """A lone Redis cannot give min_replicas = 1: the job's fetch is never
    replicated, so the worker warns and does not run it."""
    rec = os.path.join(tmpdir_path, "runs")
    os.mkdir(rec)
    env = {"FORQ_TEST_RECORD_DIR": rec}
    f = forq("--prefork", "-r", TESTPLUG, env=env,
             config="[forq]\nprocesses = 1\nmin_replicas = 1\nmin_replicas_timeout = 0.2\n")
    f.wait_workers(1)
    subprocess.run([FORQ, "push", "TestJob", '["record"]'], check=True, timeout=10,
                   env=dict(os.environ, REDIS_URL=redis_server))
    f.wait_log(r"fewer replicas than min_replicas.*acked=0", timeout=10)
    time.sleep(0.5)
    assert not recorded(rec)
    f.signal(signal.SIGTERM)
    assert f.wait_exit(20) == 0
    # the job stays where a stop leaves it: in its queue or its working list
    r = redis.Redis.from_url(redis_server)
    assert r.llen("queue:default") + sum(r.llen(k) for k in r.scan_iter("forq:working:*")) == 1
    r.flushdb()


def test_readonly_reply_is_a_lost_connection(forq, tmpdir_path, redis_server):
    """A master demoted under forq (here by hand, on a plain redis:// URL)
    answers READONLY: the forq master drops its connection, workers treat
    the reply as a lost connection and keep their outcomes; once the node is
    a master again every job has run and no outcome was dropped."""
    a = redis.Redis.from_url(redis_server)
    b_port, b = start_redis(tmpdir_path, "b", "--replicaof", "127.0.0.1",
                            str(a.connection_pool.connection_kwargs["port"]))
    try:
        rb = redis.Redis(port=b_port)
        wait_until(lambda: ping(b_port) and rb.info("replication")["master_link_status"] == "up",
                   10, what="replica b")
        rec = os.path.join(tmpdir_path, "runs")
        os.mkdir(rec)
        f = forq("--prefork", "-r", TESTPLUG, env={"FORQ_TEST_RECORD_DIR": rec,
                                                    "FORQ_TEST_RECORD_MS": "400"},
                 config="[forq]\nprocesses = 2\n")
        f.wait_workers(2)
        jids = [f"{i:024x}" for i in range(4)]
        now = time.time()
        a.lpush("queue:default", *[json.dumps({"class": "TestJob", "args": ["record"], "jid": j,
                                               "queue": "default", "retry": True,
                                               "created_at": now, "enqueued_at": now})
                                   for j in jids])
        wait_until(lambda: len(working_jobs(a.connection_pool.connection_kwargs["port"])) == 2,
                   5, what="two jobs running")
        # swap roles: b takes over a's data, a follows b (read-only)
        rb.replicaof("NO", "ONE")
        a.replicaof("127.0.0.1", b_port)
        f.wait_log(r"READONLY", count=2, timeout=10)
        time.sleep(1.5)
        assert not recorded(rec) - set(jids)
        b.kill()
        b.wait(5)
        a.replicaof("NO", "ONE")
        wait_until(lambda: set(jids) <= recorded(rec), 20, interval=0.1, what="every job run")
        wait_until(lambda: not working_jobs(a.connection_pool.connection_kwargs["port"]), 10,
                   what="working lists empty")
        assert a.llen("queue:default") == 0
        assert not f.lines(r"job failed|level=error"), f.lines(r"job failed|level=error")
        assert alive(f.pid) and len(f.workers()) == 2
        # backoff, not a reconnect every 0.1 s: one warning, few reconnects
        assert len(f.lines(r"role=master.*redis is read-only")) == 1
        assert len(f.lines(r"role=master.*redis connected")) <= 2, f.lines("redis connected")
        f.signal(signal.SIGTERM)
        assert f.wait_exit(20) == 0
        a.flushdb()
    finally:
        if b.poll() is None:
            b.kill()
        b.wait(5)


def test_tls_sentinels_and_replication_follow_a_failover(forq, tmpdir_path):
    """rediss+sentinel://: TLS to the sentinels and to the data nodes, whose
    replication and the sentinels' own links are TLS too."""
    c = Cluster(tmpdir_path, tls=tls_files(tmpdir_path))
    try:
        f, rec = start_forq(forq, c, tmpdir_path, f"tls_ca_file = {tmpdir_path}/ca.crt\n",
                            job_ms=2, scheme="rediss+sentinel")
        p = Pusher(c)
        p.start()
        wait_until(lambda: len(recorded(rec)) >= 30, 20, what="jobs run over TLS")
        p.paused.set()
        time.sleep(0.05)
        assert redis.Redis(port=c.master_port, **c.kw).execute_command("WAIT", 1, 3000) == 1
        c.procs["master"].send_signal(signal.SIGKILL)
        c.procs["master"].wait(5)
        p.paused.clear()
        f.wait_log(r"redis master switched.*to=127\.0\.0\.1:%d" % c.replica_port, count=4,
                   timeout=20)
        pushed_after = len(p.acked)
        wait_until(lambda: len(p.acked) > pushed_after + 30, 20, what="pushes after failover")
        p.done.set()
        p.join(5)
        wait_until(lambda: set(p.acked) <= recorded(rec), 30, interval=0.2,
                   what="every job pushed to run")
        assert not f.lines(r"level=(error|fatal)|job failed"), f.lines(r"level=(error|fatal)")
        f.signal(signal.SIGTERM)
        assert f.wait_exit(20) == 0
    finally:
        c.stop()
