"""Production Redis: rediss:// against a TLS-only redis-server that requires a
client certificate (a CA and certificates made with the openssl CLI per
run), a wrong CA and a missing client certificate refused with clear errors
and no busy loop, and an ACL user holding exactly the commands forq needs."""
import os
import re
import subprocess
import time

import pytest
import redis

from conftest import FORQ, ROOT, free_port, proc_children, proc_title, wait_until

# The recommended ACL of forq.ini(5): keep the two lists in step.
FORQ_COMMANDS = (
    "ping select info time scan exists del unlink get set incr incrby expire pexpire "
    "persist hget hgetall hmget hset hdel hexists hlen hincrby lpush rpush rpop lrange "
    "lindex llen lrem ltrim rpoplpush brpoplpush sadd srem smembers zadd zrem zcard zscore "
    "zrangebyscore zremrangebyscore zremrangebyrank bitfield multi exec evalsha eval "
    "script|load role wait"
).split()


def test_documented_acl_is_the_tested_one():
    with open(os.path.join(ROOT, "man", "forq.ini.5")) as f:
        page = f.read()
    section = page[page.index(".SH ACL USER"):page.index(".SH ERRORS")]
    assert sorted(re.findall(r"\+([a-z|]+)", section)) == sorted(FORQ_COMMANDS)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, subj, ca=None, ext=None):
    """EC key and certificate name.{key,crt} in d: self-signed when ca is
    None, else signed by the CA whose files are ca.{key,crt}."""
    if ca is None:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                "-subj", subj, cwd=d)
        return
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext + "\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A TLS-only redis-server (client certificates required) and the files
    a client needs; a second CA that signed nothing of the server's."""
    d = str(tmp_path_factory.mktemp("tls"))
    make_cert(d, "ca", "/CN=forq test CA")
    make_cert(d, "other", "/CN=some other CA")
    make_cert(d, "server", "/CN=localhost", ca="ca",
              ext="subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")
    make_cert(d, "client", "/CN=forq", ca="ca", ext="extendedKeyUsage=clientAuth")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", f"{d}/server.crt", "--tls-key-file", f"{d}/server.key",
         "--tls-ca-cert-file", f"{d}/ca.crt", "--tls-auth-clients", "yes",
         "--save", "", "--appendonly", "no", "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = {k: f"{d}/{k}" for k in ("ca.crt", "other.crt", "client.crt", "client.key")}
    client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=files["ca.crt"],
                         ssl_certfile=files["client.crt"], ssl_keyfile=files["client.key"],
                         decode_responses=True, socket_timeout=5)

    def up():
        try:
            return client.ping()
        except (redis.ConnectionError, OSError):
            return False
    try:
        wait_until(up, 10, what="TLS redis-server")
        yield dict(files, dir=d, port=port, url=f"rediss://127.0.0.1:{port}/0", r=client)
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def clean(tls):
    yield tls
    tls["r"].flushall()


def tls_config(t, ca="ca.crt", cert=True, extra=""):
    keys = f"tls_ca_file = {t[ca]}\n"
    if cert:
        keys += f"tls_cert_file = {t['client.crt']}\ntls_key_file = {t['client.key']}\n"
    return f"[forq]\nredis_url = {t['url']}\n{keys}{extra}"


def client_cmd(tmpdir, config, *args, url=None):
    path = os.path.join(tmpdir, f"client-{time.monotonic_ns()}.ini")
    with open(path, "w") as f:
        f.write(config)
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_PROVIDER")}
    if url:
        env["REDIS_URL"] = url
    return subprocess.run([FORQ, *args, "-C", path], capture_output=True, text=True, env=env,
                          timeout=30)


def handler(tmpdir):
    path = os.path.join(tmpdir, "h.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\ncat > /dev/null\n")
    os.chmod(path, 0o755)
    return path


def test_jobs_run_over_tls_with_a_client_certificate(forq, clean, tmpdir_path):
    t = clean
    h = handler(tmpdir_path)
    cfg = tls_config(t, extra=f'processes = 2\n[job "TlsJob"]\nexec = {h}\n')
    f = forq(config=cfg, env={"REDIS_URL": ""})
    f.wait_workers(2)
    jids = []
    for i in range(3):
        p = client_cmd(tmpdir_path, cfg, "push", "TlsJob", f"[{i}]")
        assert p.returncode == 0, p.stderr
        jids.append(p.stdout.strip())
    for jid in jids:
        f.wait_log(f"job done.* jid={jid}")
    # the master's own (asynchronous) connection wrote its heartbeat
    st = client_cmd(tmpdir_path, cfg, "status")
    assert st.returncode == 0 and "nodes: 1" in st.stdout, st.stdout + st.stderr
    assert t["r"].scard("processes") == 1
    assert "redis unavailable" not in f.text()


def test_wrong_ca_is_a_clear_error_retried_with_backoff(forq, clean, tmpdir_path):
    t = clean
    cfg = tls_config(t, ca="other.crt", extra="processes = 1\n")
    p = client_cmd(tmpdir_path, cfg, "push", "X", "[]")
    assert p.returncode != 0
    assert "certificate verification failed" in p.stderr, p.stderr
    before = int(t["r"].info("stats")["total_connections_received"])
    f = forq(config=cfg, env={"REDIS_URL": ""})
    f.wait_log("certificate verification failed")
    time.sleep(3)
    after = int(t["r"].info("stats")["total_connections_received"])
    # backoff from 0.1 s doubling: a handful of attempts per process, not a loop
    assert after - before < 40, after - before
    errors = f.lines("redis unavailable")
    assert 1 <= len(errors) <= 4, "\n".join(errors)
    assert all("verification failed" in e for e in errors), "\n".join(errors)


def test_server_refuses_a_client_without_certificate(forq, clean, tmpdir_path):
    t = clean
    cfg = tls_config(t, cert=False, extra="processes = 1\n")
    p = client_cmd(tmpdir_path, cfg, "status")
    assert p.returncode != 0
    assert "certificate required" in p.stderr, p.stderr
    f = forq(config=cfg, env={"REDIS_URL": ""})
    f.wait_log("redis unavailable.*certificate required")


def test_server_certificate_must_name_the_host(tmpdir_path, tls):
    """Signed by the trusted CA, but for another name: refused."""
    d = tls["dir"]
    make_cert(d, "elsewhere", "/CN=elsewhere.test", ca="ca",
              ext="subjectAltName=DNS:elsewhere.test\nextendedKeyUsage=serverAuth")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", f"{d}/elsewhere.crt", "--tls-key-file", f"{d}/elsewhere.key",
         "--tls-ca-cert-file", f"{d}/ca.crt", "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cfg = f"[forq]\nredis_url = rediss://127.0.0.1:{port}/0\ntls_ca_file = {tls['ca.crt']}\n"
        def refused():
            p = client_cmd(tmpdir_path, cfg, "status")
            return p.returncode != 0 and "Connection refused" not in p.stderr and p
        p = wait_until(refused, 10, what="TLS server up")
        assert "certificate verification failed" in p.stderr, p.stderr
        assert "mismatch" in p.stderr, p.stderr
    finally:
        proc.terminate()
        proc.wait(10)


def test_tls_files_are_checked_at_start(tmpdir_path, tls):
    cfg = os.path.join(tmpdir_path, "bad.ini")
    with open(cfg, "w") as fh:
        fh.write(f"[forq]\nredis_url = {tls['url']}\ntls_ca_file = {tmpdir_path}/nope.pem\n")
    r = subprocess.run([FORQ, "-n", "-C", cfg], capture_output=True, text=True)
    assert r.returncode == 78 and "tls_ca_file" in r.stderr, r.stderr


SECRET = "s3cr3t-Pw-93"


def test_acl_user_with_the_documented_commands(forq, redis_server, tmpdir_path):
    admin = redis.Redis.from_url(redis_server, decode_responses=True)
    admin.execute_command("ACL", "SETUSER", "forq", "on", f">{SECRET}", "~*",
                          "-@all", *[f"+{c}" for c in FORQ_COMMANDS])
    port = admin.connection_pool.connection_kwargs["port"]
    url = f"redis://forq:{SECRET}@127.0.0.1:{port}/0"
    h = handler(tmpdir_path)
    cfg = (f'[forq]\nprocesses = 2\nsweep_interval = 0.5\n[job "AclJob"]\nexec = {h}\n'
           f'[cron "tick"]\nschedule = * * * * * *\nclass = AclJob\n')
    f = forq(config=cfg, env={"REDIS_URL": url})
    f.wait_workers(2)
    p = client_cmd(tmpdir_path, cfg, "push", "AclJob", "[1]", url=url)
    assert p.returncode == 0, p.stderr
    f.wait_log(f"job done.* jid={p.stdout.strip()}")
    p = client_cmd(tmpdir_path, cfg, "push", "AclJob", "[2]", "--in", "1", url=url)
    assert p.returncode == 0, p.stderr
    f.wait_log(f"job done.* jid={p.stdout.strip()}", timeout=15)
    f.wait_log("job done.*class=AclJob", count=4)  # the cron entry's runs too
    st = client_cmd(tmpdir_path, cfg, "status", url=url)
    assert st.returncode == 0 and "nodes: 1" in st.stdout, st.stderr
    # every command forq sent was allowed; the password shows nowhere
    assert "NOPERM" not in f.text() and "no permissions" not in f.text()
    assert SECRET not in f.text() and SECRET not in st.stdout + st.stderr
    titles = [proc_title(p) or "" for p in [f.pid] + proc_children(f.pid)]
    assert titles and not [x for x in titles if SECRET in x], titles
    assert not [e for e in admin.acl_log() if e.get("username") == "forq"]
    admin.acl_deluser("forq")


def test_wrong_password_is_a_clear_error_not_a_loop(forq, redis_server, tmpdir_path):
    admin = redis.Redis.from_url(redis_server, decode_responses=True)
    admin.execute_command("ACL", "SETUSER", "forq", "on", f">{SECRET}", "~*", "+@all")
    port = admin.connection_pool.connection_kwargs["port"]
    url = f"redis://forq:wrong-{SECRET}@127.0.0.1:{port}/0"
    p = client_cmd(tmpdir_path, "[forq]\n", "push", "X", "[]", url=url)
    assert p.returncode != 0
    assert "authentication failed for user forq" in p.stderr, p.stderr
    assert SECRET not in p.stderr
    before = int(admin.info("stats")["total_connections_received"])
    f = forq(config="[forq]\nprocesses = 1\n", env={"REDIS_URL": url})
    f.wait_log("authentication failed")
    time.sleep(3)
    after = int(admin.info("stats")["total_connections_received"])
    assert after - before < 40, after - before
    errors = f.lines("redis unavailable")
    assert 1 <= len(errors) <= 4 and all("WRONGPASS" in e for e in errors), "\n".join(errors)
    assert SECRET not in f.text()
    titles = [proc_title(p) or "" for p in [f.pid] + proc_children(f.pid)]
    assert not [x for x in titles if SECRET in x], titles
    admin.acl_deluser("forq")


def test_unix_socket_goes_through_the_same_path(forq, tmpdir_path):
    sock = os.path.join(tmpdir_path, "r.sock")
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "",
                             "--appendonly", "no", "--dir", tmpdir_path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(sock), 10, what="unix socket")
        url = f"unix://{sock}?db=3"
        h = handler(tmpdir_path)
        f = forq(config=f'[forq]\nprocesses = 1\n[job "UJob"]\nexec = {h}\n',
                 env={"REDIS_URL": url})
        f.wait_workers(1)
        p = client_cmd(tmpdir_path, "[forq]\n", "push", "UJob", "[]", url=url)
        assert p.returncode == 0, p.stderr
        f.wait_log(f"job done.* jid={p.stdout.strip()}")
        assert re.search(r"nodes: 1", client_cmd(tmpdir_path, "[forq]\n", "status",
                                                 url=url).stdout)
        f.stop()
    finally:
        proc.terminate()
        proc.wait(10)
