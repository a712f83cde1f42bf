"""Real Python session stores against sessiond: redis-py 8 (RESP2 and RESP3), Flask-Session,
Django's RedisCache session backend and django-redis, and redis-py's Sentinel support.

    python sessions.py --bin target/release/sessiond --mode single
    python sessions.py --bin target/release/sessiond --mode cluster

Each flow creates a session, reads it, refreshes it (sliding expiry), lets one expire and
destroys one, asserting on the data in sessiond, not only on the absence of exceptions.
In cluster mode every flow runs against its own 3-node cluster through a follower, and
the leader is killed with SIGKILL in the middle of the flow; a step that fails while the
cluster elects a new leader is retried, as a web request would be.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

import redis

DEADLINE = 20.0  # seconds any one step may keep failing during a failover


def free_port():
    """A free port below the kernel's ephemeral range (32768 and up), so that no `:0`
    bind or outgoing connection takes it before the server binds it."""
    import random
    for _ in range(1000):
        port = random.randint(20000, 31999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 20000..32000")


class RetryableResponse(Exception):
    pass


def retry(step, what="step", limit=DEADLINE):
    """Run `step` until it stops raising a Redis or web error, polling every 20 ms up to
    `limit` seconds: the one wait of this suite, always on a condition with a deadline."""
    end = time.monotonic() + limit
    while True:
        try:
            return step()
        except (redis.RedisError, RetryableResponse) as e:
            if time.monotonic() > end:
                raise AssertionError(f"{what} kept failing: {e}") from e
            time.sleep(0.02)


def wait_for(cond, what, limit=DEADLINE):
    """Wait until `cond()` holds (a Redis error counts as "not yet")."""

    def step():
        if not cond():
            raise RetryableResponse(f"not yet: {what}")

    retry(step, f"waiting for {what}", limit)


class Single:
    """One sessiond on a free port."""

    def __init__(self, binary):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: redis.Redis(port=self.port).ping(), "sessiond to start", 30)

    def client_port(self):
        return self.port

    def other_port(self):
        return self.port

    def fail_over(self):
        pass

    def close(self):
        self.proc.kill()
        self.proc.wait()


class Cluster:
    """Three sessiond processes forming one raft group, logs in a temporary folder."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="sessiond-compat-")
        self.ports = [free_port() for _ in range(3)]
        raft = [free_port() for _ in range(3)]
        peers = ",".join(f"{i + 1}=127.0.0.1:{raft[i]}" for i in range(3))
        self.procs = []
        for i in range(3):
            args = [binary, "--port", str(self.ports[i]), "--node-id", str(i + 1), "--peers", peers,
                    "--cluster-addr", f"127.0.0.1:{raft[i]}", "--dir", os.path.join(self.dir, f"n{i + 1}")]
            log = open(os.path.join(self.dir, f"n{i + 1}.log"), "w")
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=log))
        self.leader_index()
        # Clients connect to a follower: it proxies to whichever node leads.
        self.follower = next(i for i in range(3) if i != self.leader_index())
        self.killed = False

    def leader_index(self):
        found = []

        def probe():
            for i, p in enumerate(self.ports):
                if self.procs[i].poll() is not None:
                    continue
                try:
                    info = redis.Redis(port=p, socket_timeout=1).info("raft")
                except redis.RedisError:
                    continue
                if info.get("raft_role") == "leader":
                    found.append(i)
                    return True
            return False

        wait_for(probe, "a raft leader", 30)
        return found[-1]

    def client_port(self):
        return self.ports[self.follower]

    def other_port(self):
        """A live node other than the one clients use."""
        return next(p for i, p in enumerate(self.ports) if i != self.follower and self.procs[i].poll() is None)

    def fail_over(self):
        """SIGKILL the leader (once per cluster); the flow goes on through the follower."""
        if self.killed:
            return
        i = self.leader_index()
        assert i != self.follower
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()
        self.killed = True
        print(f"    killed the leader (node {i + 1})", flush=True)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def raw(port):
    return redis.Redis(port=port, decode_responses=True, socket_timeout=5)


# ---- flows ------------------------------------------------------------------------


def flow_redis_py(t, protocol):
    r = redis.Redis(port=t.client_port(), protocol=protocol, decode_responses=True, socket_timeout=5)
    hello = retry(lambda: r.execute_command("HELLO"), "HELLO")
    proto = hello["proto"] if isinstance(hello, dict) else dict(zip(hello[::2], hello[1::2]))["proto"]
    assert int(proto) == protocol, hello
    data = {"user": "ann", "cart": [1, 2, 3]}
    assert retry(lambda: r.set("sess:a", json.dumps(data), ex=60)) is True
    assert json.loads(retry(lambda: r.get("sess:a"))) == data
    retry(lambda: r.hset("sess:h", mapping={"user": "bob", "n": "1"}))
    retry(lambda: r.expire("sess:h", 60))
    t.fail_over()
    # Sliding expiry: each access pushes the TTL out again.
    assert retry(lambda: r.expire("sess:a", 120)) is True
    ttl = retry(lambda: r.ttl("sess:a"))
    assert 100 < ttl <= 120, ttl
    assert retry(lambda: r.hgetall("sess:h")) == {"user": "bob", "n": "1"}
    assert retry(lambda: r.hincrby("sess:h", "n", 2)) == 3
    # One expires on its own.
    retry(lambda: r.set("sess:short", "x", px=300))
    wait_for(lambda: r.get("sess:short") is None and r.exists("sess:short") == 0, "sess:short to expire")
    # One is destroyed.
    assert retry(lambda: r.delete("sess:a")) == 1
    assert retry(lambda: r.get("sess:a")) is None
    # A transaction, as redis-py pipelines send it.
    with r.pipeline(transaction=True) as p:
        p.set("sess:t", "1").incr("sess:t").expire("sess:t", 30)
        assert retry(p.execute) == [True, 2, True]


def get_calls(port):
    stats = redis.Redis(port=port, socket_timeout=5).info("commandstats")
    return stats.get("cmdstat_get", {}).get("calls", 0)


def flow_client_cache(t):
    """redis-py's client-side cache (RESP3, CLIENT TRACKING): a session read twice costs
    one round trip; written by another client through another node, the next read sees
    the new value."""
    from redis.cache import CacheConfig

    r = redis.Redis(port=t.client_port(), protocol=3, cache_config=CacheConfig(),
                    decode_responses=True, socket_timeout=5)
    w = redis.Redis(port=t.other_port(), decode_responses=True, socket_timeout=5)
    retry(lambda: w.set("sess:cache", json.dumps({"user": "ann"}), ex=60))
    # The write is applied on the client's node before the reads (a cluster applies it
    # there a moment after the writer's node).
    wait_for(lambda: raw(t.client_port()).exists("sess:cache") == 1, "the write to reach the node")
    before = get_calls(t.client_port())
    assert json.loads(r.get("sess:cache")) == {"user": "ann"}
    assert json.loads(r.get("sess:cache")) == {"user": "ann"}
    served = get_calls(t.client_port()) - before
    assert served == 1, f"two reads cost {served} round trips"
    assert r.get_cache().size >= 1
    retry(lambda: w.set("sess:cache", json.dumps({"user": "bob"}), ex=60))
    # The write's reply came after the invalidation reached this client's node and was
    # sent to it (a cluster holds replies for that): the very next read is fresh.
    assert json.loads(r.get("sess:cache")) == {"user": "bob"}, "the next read saw the old session"
    assert get_calls(t.client_port()) - before == 2, "the fresh value came from the server"


def flow_flask(t):
    from flask import Flask, session
    from flask_session import Session

    store = redis.Redis(port=t.client_port(), socket_timeout=5)
    app = Flask("compat")
    app.config.update(
        SECRET_KEY="compat",
        SESSION_TYPE="redis",
        SESSION_REDIS=store,
        SESSION_PERMANENT=True,
        SESSION_KEY_PREFIX="flask:",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=60),
    )
    Session(app)

    @app.route("/login/<name>")
    def login(name):
        session["user"] = name
        return "ok"

    @app.route("/me")
    def me():
        return session.get("user", "")

    @app.route("/logout")
    def logout():
        session.clear()
        return "bye"

    def get(client, path):
        def step():
            resp = client.get(path)
            if resp.status_code != 200:
                raise RetryableResponse(f"{path}: {resp.status_code}")
            return resp.get_data(as_text=True)

        return retry(step, path)

    r = raw(t.client_port())
    c = app.test_client()
    assert get(c, "/login/ann") == "ok"
    assert get(c, "/me") == "ann"
    keys = retry(lambda: r.keys("flask:*"))
    assert len(keys) == 1, keys
    key = keys[0]
    assert 50 < retry(lambda: r.ttl(key)) <= 60
    t.fail_over()
    assert get(c, "/me") == "ann"
    retry(lambda: r.expire(key, 30))
    get(c, "/me")  # a request refreshes the session's TTL
    assert retry(lambda: r.ttl(key)) > 50
    # Expiry: a session with a 1 s lifetime is gone after it.
    app.permanent_session_lifetime = timedelta(seconds=1)
    c2 = app.test_client()
    assert get(c2, "/login/eve") == "ok"
    wait_for(lambda: len(r.keys("flask:*")) == 1, "the short session to expire")
    assert get(c2, "/me") == ""
    # Destroy.
    app.permanent_session_lifetime = timedelta(seconds=60)
    assert get(c, "/logout") == "bye"
    wait_for(lambda: r.exists(key) == 0, "the session to be deleted")
    assert get(c, "/me") == ""


def django_store(port, alias):
    """A Django cache-backed SessionStore class whose cache is sessiond at `port`,
    through Django's own RedisCache or through django-redis."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="compat",
            INSTALLED_APPS=["django.contrib.sessions"],
            SESSION_ENGINE="django.contrib.sessions.backends.cache",
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        )
        django.setup()
    from django.contrib.sessions.backends.cache import SessionStore

    if alias == "django_redis":
        from django_redis.cache import RedisCache
    else:
        from django.core.cache.backends.redis import RedisCache
    backend = RedisCache(f"redis://127.0.0.1:{port}/0", {})

    class Store(SessionStore):
        def __init__(self, session_key=None):
            super().__init__(session_key)
            self._cache = backend

    return Store


def flow_django(t, alias):
    SessionStore = django_store(t.client_port(), alias)
    r = raw(t.client_port())
    s = SessionStore()
    s["user"] = "ann"
    s.set_expiry(60)
    retry(s.save, "save")
    key = s.session_key
    names = retry(lambda: r.keys(f"*{key}"))
    assert len(names) == 1, names
    assert 50 < retry(lambda: r.ttl(names[0])) <= 60
    assert retry(lambda: SessionStore(session_key=key).load()) == {"user": "ann", "_session_expiry": 60}
    t.fail_over()
    s2 = SessionStore(session_key=key)
    retry(lambda: s2.load())
    s2.set_expiry(120)
    retry(s2.save, "refresh")
    assert 100 < retry(lambda: r.ttl(names[0])) <= 120
    short = SessionStore()
    short["user"] = "eve"
    short.set_expiry(1)
    retry(short.save, "save short")
    wait_for(lambda: not short.exists(short.session_key), "the short session to expire")
    assert retry(lambda: SessionStore(session_key=short.session_key).load()) == {}
    retry(lambda: s2.delete(), "delete")
    assert retry(lambda: r.exists(names[0])) == 0
    assert not retry(lambda: s2.exists(key))


def flow_sentinel(t):
    from redis.sentinel import Sentinel

    sentinels = [("127.0.0.1", p) for p in getattr(t, "ports", [t.client_port()])]
    sn = Sentinel(sentinels, socket_timeout=2)
    before = retry(lambda: sn.discover_master("mymaster"), "discover")
    master = sn.master_for("mymaster", socket_timeout=2, decode_responses=True)
    assert retry(lambda: master.set("sess:s", "v", ex=60)) is True
    t.fail_over()
    # The client follows the new leader on its own once the old one is gone.
    assert retry(lambda: master.get("sess:s")) == "v"
    assert retry(lambda: master.set("sess:s2", "w", ex=60)) is True
    after = retry(lambda: sn.discover_master("mymaster"), "discover")
    if isinstance(t, Cluster):
        assert after != before, (before, after)
    assert retry(lambda: master.get("sess:s2")) == "w"


FLOWS = [
    ("redis-py RESP2", lambda t: flow_redis_py(t, 2), False),
    ("redis-py RESP3", lambda t: flow_redis_py(t, 3), False),
    ("redis-py client-side cache", flow_client_cache, False),
    ("Flask-Session", flow_flask, False),
    ("Django RedisCache sessions", lambda t: flow_django(t, "default"), False),
    ("django-redis sessions", lambda t: flow_django(t, "django_redis"), False),
    ("redis-py Sentinel", flow_sentinel, True),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mode", choices=["single", "cluster"], default="single")
    a = ap.parse_args()
    failed = 0
    for name, flow, cluster_only in FLOWS:
        if cluster_only and a.mode != "cluster":
            continue
        target = Cluster(a.bin) if a.mode == "cluster" else Single(a.bin)
        start = time.monotonic()
        try:
            flow(target)
            print(f"ok   {a.mode:7} {name} ({time.monotonic() - start:.1f} s)", flush=True)
        except Exception as e:  # report every flow, then fail
            failed += 1
            print(f"FAIL {a.mode:7} {name}: {type(e).__name__}: {e}", flush=True)
        finally:
            target.close()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
