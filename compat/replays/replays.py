"""Replays of the session stacks whose libraries cannot be installed here: their exact
command sequences and Lua scripts, read from their public sources, sent through
redis-py. Run through compat/stack.py (the port is the last argument; `KILL?` asks for
the leader to be killed in cluster mode). Prints `ok ...` / `FAIL ...`; exits 1 on a
failure.

Sources (repository, path, version):
- Spring Session Data Redis, spring-projects/spring-session,
  spring-session-data-redis/src/main/java/org/springframework/session/data/redis/:
  RedisIndexedSessionRepository.java and RedisSessionExpirationPolicy.java at 3.3.0
  (69638d46), SortedSetRedisSessionExpirationStore.java at 3.4.0 (85fe5879),
  ReactiveRedisIndexedSessionRepository.java and ReactiveRedisSessionIndexer.java at
  3.3.0. Members and hash values are Java-serialized (JdkSerializationRedisSerializer).
- ASP.NET Core RedisCache, dotnet/aspnetcore src/Caching/StackExchangeRedis/src/
  RedisCache.cs (PR #38860/#38927: the HSET and HMSET set scripts, .NET 6-8), and
  dotnet/extensions v3.1.0 (the HmGetScript read); StackExchange.Redis 2.7.33
  RedisDatabase.cs (SCRIPT LOAD + EVAL first, then EVALSHA).
- Redisson Tomcat, redisson/redisson redisson-tomcat-9 RedissonSession.java and
  redisson/src/main/java/org/redisson/RedissonExpirable.java (the pexpire script since
  3.17.0; EVALSHA, SCRIPT LOAD on NOSCRIPT, since 3.46.0).
- Laravel, laravel/framework v12.67.0 src/Illuminate/Cache/{RedisStore,RedisLock,
  LuaScripts}.php and the laravel/laravel skeleton's config (cache connection database
  1, locks and sessions in database 0).
"""

import hashlib
import struct
import sys
import threading
import time

import redis

PORT = int(sys.argv[-1])
DEADLINE = 30.0


def jdk_str(s):
    """java.io.ObjectOutputStream.writeObject(String), as Spring serializes members."""
    b = s.encode()
    return b"\xac\xed\x00\x05t" + struct.pack(">H", len(b)) + b


JDK_LONG = bytes.fromhex(
    "aced00057372000e6a6176612e6c616e672e4c6f6e673b8be490cc8f23df0200014a000576616c7565"
    "787200106a6176612e6c616e672e4e756d62657286ac951d0b94e08b0200007870")
JDK_INT = bytes.fromhex(
    "aced0005737200116a6176612e6c616e672e496e746567657212e2a0a4f781873802000149000576616c7565"
    "787200106a6176612e6c616e672e4e756d62657286ac951d0b94e08b0200007870")


def jdk_long(v):
    return JDK_LONG + struct.pack(">q", v)


def jdk_int(v):
    return JDK_INT + struct.pack(">i", v)


def setex(r, key, seconds, value):
    """SETEX as the libraries send it (redis-py calls the method deprecated)."""
    return r.execute_command("SETEX", key, seconds, value)


def client(db=0):
    return redis.Redis(port=PORT, db=db, socket_timeout=10)


def retry(f):
    """Run one request, retried (as a web app's next request would be) while the
    cluster fails over."""
    ends = time.monotonic() + DEADLINE
    while True:
        try:
            return f()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
            if isinstance(e, redis.ResponseError) and not any(
                    t in str(e) for t in ("TIMEOUT", "CLUSTERDOWN", "TRYAGAIN", "no leader")):
                raise
            if time.monotonic() > ends:
                raise
            time.sleep(0.05)


def check(name, f):
    try:
        f()
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001 - any failure is the verdict
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def wait_for(what, cond, limit=10.0):
    ends = time.monotonic() + limit
    while not cond():
        if time.monotonic() > ends:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# ---- Spring Session, indexed (sync) ---------------------------------------------------

NS = "spring:session"
PRINCIPAL = f"{NS}:index:org.springframework.session.FindByIndexNameSessionRepository.PRINCIPAL_NAME_INDEX_NAME:"


def minute_up(ms):
    return (ms // 60000 + 1) * 60000


def spring_save(r, sid, principal, max_inactive, now_ms, old_bucket=None):
    """RedisIndexedSessionRepository.save (<= 3.3): the delta, the principal index, the
    per-minute expiry bucket, the shadow key and the session's TTL."""
    key = f"{NS}:sessions:{sid}"
    r.hset(key, mapping={
        "creationTime": jdk_long(now_ms), "maxInactiveInterval": jdk_int(max_inactive),
        "lastAccessedTime": jdk_long(now_ms),
        "sessionAttr:org.springframework.session.FindByIndexNameSessionRepository."
        "PRINCIPAL_NAME_INDEX_NAME": jdk_str(principal)})
    r.sadd(PRINCIPAL + principal, jdk_str(sid))
    bucket = minute_up(now_ms + max_inactive * 1000)
    if old_bucket is not None and old_bucket != bucket:
        r.srem(f"{NS}:expirations:{old_bucket}", jdk_str(f"expires:{sid}"))
    r.sadd(f"{NS}:expirations:{bucket}", jdk_str(f"expires:{sid}"))
    r.pexpire(f"{NS}:expirations:{bucket}", (max_inactive + 300) * 1000)
    r.append(f"{NS}:sessions:expires:{sid}", "")
    r.pexpire(f"{NS}:sessions:expires:{sid}", max_inactive * 1000)
    r.pexpire(key, (max_inactive + 300) * 1000)
    return bucket


def spring_indexed():
    r = client()
    now = int(time.time() * 1000)
    state = {}

    def create():
        # ConfigureNotifyKeyspaceEventsAction: CONFIG GET, then CONFIG SET with E, g, x.
        cur = r.config_get("notify-keyspace-events").get("notify-keyspace-events", "")
        if not ("A" in cur or all(c in cur for c in "Egx")):
            r.config_set("notify-keyspace-events", cur + "Egx")
        state["a"] = spring_save(r, "s-a", "alice", 1800, now)
        state["b"] = spring_save(r, "s-b", "alice", 1800, now)
        spring_save(r, "s-c", "bob", 1800, now)
    check("spring indexed: save with principal index and expiry bucket", lambda: retry(create))

    def find():
        ids = sorted(retry(lambda: r.smembers(PRINCIPAL + "alice")))
        expect("principal index", ids, sorted([jdk_str("s-a"), jdk_str("s-b")]))
        h = retry(lambda: r.hgetall(f"{NS}:sessions:s-a"))
        expect("lastAccessedTime", h[b"lastAccessedTime"], jdk_long(now))
        ttl = retry(lambda: r.pttl(f"{NS}:sessions:expires:s-a"))
        if not 1_790_000 <= ttl <= 1_800_000:
            raise AssertionError(f"shadow key pttl {ttl}")
    check("spring indexed: findByPrincipalName (SMEMBERS) and findById (HGETALL)", find)
    print("KILL?", flush=True)
    sys.stdin.readline()

    def refresh():
        later = now + 120_000
        new = retry(lambda: spring_save(r, "s-a", "alice", 1800, later, state["a"]))
        members = retry(lambda: r.smembers(f"{NS}:expirations:{state['a']}"))
        if jdk_str("expires:s-a") in members:
            raise AssertionError("the old bucket still names the session")
        expect("new bucket", jdk_str("expires:s-a") in r.smembers(f"{NS}:expirations:{new}"), True)
    check("spring indexed: a request after the leader kill moves the expiry bucket", refresh)

    def change_id():
        retry(lambda: r.rename(f"{NS}:sessions:s-b", f"{NS}:sessions:s-b2"))
        retry(lambda: r.rename(f"{NS}:sessions:expires:s-b", f"{NS}:sessions:expires:s-b2"))
        retry(lambda: r.srem(PRINCIPAL + "alice", jdk_str("s-b")))
        retry(lambda: r.sadd(PRINCIPAL + "alice", jdk_str("s-b2")))
        expect("renamed", r.exists(f"{NS}:sessions:s-b2", f"{NS}:sessions:expires:s-b2"), 2)
        expect("index", sorted(r.smembers(PRINCIPAL + "alice")),
               sorted([jdk_str("s-a"), jdk_str("s-b2")]))
    check("spring indexed: changeSessionId (RENAME, SREM, SADD)", change_id)

    def cleanup():
        # A session whose shadow key expires: the cleanup job touches it (EXISTS) after
        # SMEMBERS and DEL of its minute bucket; the expired event drives the handler.
        sub = client().pubsub()
        sub.subscribe("__keyevent@0__:expired", "__keyevent@0__:del")
        wait_for("subscribed", lambda: sub.get_message(timeout=0.1) is not None)
        bucket = f"{NS}:expirations:{minute_up(now)}"
        retry(lambda: r.sadd(bucket, jdk_str("expires:s-short")))
        retry(lambda: r.set(f"{NS}:sessions:expires:s-short", "", px=100))
        retry(lambda: r.hset(f"{NS}:sessions:s-short", "lastAccessedTime", jdk_long(now)))
        retry(lambda: r.sadd(PRINCIPAL + "carol", jdk_str("s-short")))
        deadline = time.time() * 1000 + 100
        wait_for("the session's TTL to pass", lambda: time.time() * 1000 > deadline + 50)
        members = retry(lambda: r.smembers(bucket))
        retry(lambda: r.delete(bucket))
        for m in members:
            retry(lambda m=m: r.exists(f"{NS}:sessions:" + m[7:].decode()))
        got = []
        ends = time.monotonic() + 10
        while time.monotonic() < ends and b"__keyevent@0__:expired" not in got:
            msg = sub.get_message(timeout=0.2)
            if msg and msg["type"] == "message":
                got.append(msg["channel"])
                if msg["data"] == f"{NS}:sessions:expires:s-short".encode():
                    break
        if b"__keyevent@0__:expired" not in got:
            raise AssertionError(f"no expired event; saw {got}")
        # The handler: HGETALL the session, SREM it from its principal's index.
        retry(lambda: r.hgetall(f"{NS}:sessions:s-short"))
        retry(lambda: r.srem(PRINCIPAL + "carol", jdk_str("s-short")))
        expect("index emptied", r.exists(PRINCIPAL + "carol"), 0)
        sub.close()
    check("spring indexed: cleanup job and the expired keyspace event", cleanup)

    def delete():
        retry(lambda: r.hgetall(f"{NS}:sessions:s-c"))
        retry(lambda: r.srem(PRINCIPAL + "bob", jdk_str("s-c")))
        retry(lambda: r.delete(f"{NS}:sessions:expires:s-c"))
        retry(lambda: r.hset(f"{NS}:sessions:s-c", "maxInactiveInterval", jdk_int(0)))
        retry(lambda: r.pexpire(f"{NS}:sessions:s-c", 300000))
        expect("principal index gone", r.exists(PRINCIPAL + "bob"), 0)
    check("spring indexed: deleteById", delete)

    def sorted_store():
        # 3.4+ SortedSetRedisSessionExpirationStore: ZADD with Java's Double.toString
        # score, cleanup by ZREVRANGEBYSCORE now 0 LIMIT 0 100, then EXISTS.
        z = f"{NS}:sessions:expirations"
        retry(lambda: r.execute_command("ZADD", z, "1.72451238E12", jdk_str("old")))
        retry(lambda: r.execute_command("ZADD", z, f"{float(now + 1_800_000)!r}".upper(),
                                        jdk_str("s-a")))
        due = retry(lambda: r.execute_command("ZREVRANGEBYSCORE", z, str(now), "0",
                                              "LIMIT", "0", "100"))
        expect("due sessions", due, [jdk_str("old")])
        retry(lambda: r.exists(f"{NS}:sessions:old"))
        expect("ZREM in the handler", retry(lambda: r.zrem(z, jdk_str("old"))), 1)
    check("spring indexed 3.4: the sorted-set expiration store", sorted_store)


# ---- Spring Session, reactive indexed ---------------------------------------------------

def spring_reactive():
    r = client()
    now = int(time.time() * 1000)
    idx = f"{NS}:sessions:index:PRINCIPAL_NAME_INDEX_NAME:dora"

    def save():
        key = f"{NS}:sessions:r-1"
        r.hset(key, mapping={"creationTime": jdk_long(now), "lastAccessedTime": jdk_long(now),
                             "maxInactiveInterval": jdk_int(1800)})
        r.expire(key, 2100)
        r.append(f"{NS}:sessions:expires:r-1", "")
        r.expire(f"{NS}:sessions:expires:r-1", 1800)
        r.smembers(f"{key}:idx")
        r.sadd(idx, jdk_str("r-1"))
        r.sadd(f"{key}:idx", jdk_str(idx))
        r.zadd(f"{NS}:sessions:expirations", {jdk_str("r-1"): now + 1_800_000})
    check("spring reactive: save (EXPIRE, index sets, ZADD)", lambda: retry(save))

    def cleanup_and_delete():
        z = f"{NS}:sessions:expirations"
        due = retry(lambda: r.zrevrangebyscore(z, now + 1_800_000, 0, start=0, num=100))
        expect("due by the end of its life", jdk_str("r-1") in due, True)
        retry(lambda: r.hgetall(f"{NS}:sessions:r-1"))
        retry(lambda: r.delete(f"{NS}:sessions:expires:r-1"))
        retry(lambda: r.delete(f"{NS}:sessions:r-1"))
        for i in retry(lambda: r.smembers(f"{NS}:sessions:r-1:idx")):
            retry(lambda i=i: r.srem(i[7:].decode(), jdk_str("r-1")))
        retry(lambda: r.delete(f"{NS}:sessions:r-1:idx"))
        expect("ZREM", retry(lambda: r.zrem(z, jdk_str("r-1"))), 1)
        expect("index gone", r.exists(idx), 0)
    check("spring reactive: cleanup (ZREVRANGEBYSCORE LIMIT) and deleteAndReturn",
          cleanup_and_delete)


# ---- ASP.NET Core RedisCache -----------------------------------------------------------

SET_HSET = ("\n                redis.call('HSET', KEYS[1], 'absexp', ARGV[1], 'sldexp', ARGV[2], "
            "'data', ARGV[4])\n                if ARGV[3] ~= '-1' then\n                  "
            "redis.call('EXPIRE', KEYS[1], ARGV[3])\n                end\n                return 1")
SET_HMSET = SET_HSET.replace("'HSET'", "'HMSET'")
HMGET_SCRIPT = "return redis.call('HMGET', KEYS[1], unpack(ARGV))"


def aspnet():
    r = client()

    def set_and_get():
        for script, key in [(SET_HSET, "app:guid-1"), (SET_HMSET, "app:guid-2")]:
            sha = hashlib.sha1(script.encode()).hexdigest()
            # StackExchange.Redis: SCRIPT LOAD and a full EVAL the first time...
            expect("SCRIPT LOAD", retry(lambda s=script: r.script_load(s)), sha)
            retry(lambda s=script, k=key: r.eval(s, 1, k, "-1", "12000000000", "1200", b"\x02payload"))
            # ... EVALSHA after.
            retry(lambda k=key: r.evalsha(sha, 1, k, "-1", "12000000000", "1200", b"\x02v2"))
            got = retry(lambda k=key: r.hmget(k, "absexp", "sldexp", "data"))
            expect("HMGET", got, [b"-1", b"12000000000", b"\x02v2"])
            expect("HmGetScript", retry(lambda k=key: r.eval(HMGET_SCRIPT, 1, k, "data")), [b"\x02v2"])
            retry(lambda k=key: r.expire(k, 1200))
            ttl = r.ttl(key)
            if not 1190 <= ttl <= 1200:
                raise AssertionError(f"ttl {ttl}")
        retry(lambda: r.delete("app:guid-1"))
        expect("removed", r.hmget("app:guid-1", "absexp", "sldexp", "data"), [None, None, None])
    check("asp.net RedisCache: SCRIPT LOAD, EVAL, EVALSHA, HMGET, refresh, remove", set_and_get)


# ---- Redisson Tomcat --------------------------------------------------------------------

EXPIRE_SCRIPT = ("local result = 0;for j = 1, #KEYS, 1 do local expireSet; if ARGV[2] ~= '' "
                 "then expireSet = redis.call('pexpire', KEYS[j], ARGV[1], ARGV[2]); else "
                 "expireSet = redis.call('pexpire', KEYS[j], ARGV[1]); end; if expireSet == 1 "
                 "then result = expireSet;end; end; return result; ")


def redisson():
    r = client()
    key = "redisson:tomcat_session:T1"
    sha = hashlib.sha1(EXPIRE_SCRIPT.encode()).hexdigest()

    def expire():
        # useScriptCache: EVALSHA first; on NOSCRIPT, SCRIPT LOAD and EVALSHA again.
        try:
            return r.evalsha(sha, 1, key, "1860000", "")
        except redis.exceptions.NoScriptError:
            r.script_load(EXPIRE_SCRIPT)
            return r.evalsha(sha, 1, key, "1860000", "")

    def request():
        retry(lambda: r.execute_command("SCRIPT", "FLUSH"))
        retry(lambda: r.hset(key, mapping={"session:creationTime": "1", "session:isNew": "true",
                                           "session:isValid": "true",
                                           "session:maxInactiveInterval": "1800"}))
        expect("expire script", retry(expire), 1)
        pttl = r.pttl(key)
        if not 1_850_000 <= pttl <= 1_860_000:
            raise AssertionError(f"pttl {pttl}")
        got = retry(lambda: r.hmget(key, "session:isNew", "session:isValid", "session:principal"))
        expect("HMGET", got, [b"true", b"true", None])
        retry(lambda: r.hset(key, "user", "kryo-bytes"))
        retry(lambda: r.hdel(key, "user"))
        expect("expire script again (cached)", retry(expire), 1)
        retry(lambda: r.rename(key, key + "-new"))
        retry(lambda: r.delete(key + "-new"))
        expect("gone", r.exists(key + "-new"), 0)
    check("redisson tomcat: HMSET, pexpire script by EVALSHA/NOSCRIPT/SCRIPT LOAD, RENAME, DEL",
          request)


# ---- Laravel ----------------------------------------------------------------------------

ADD = "return redis.call('exists',KEYS[1])<1 and redis.call('setex',KEYS[1],ARGV[2],ARGV[1])"
RELEASE = ('if redis.call("get",KEYS[1]) == ARGV[1] then\n    return redis.call("del",KEYS[1])\n'
           'else\n    return 0\nend')
REFRESH = ('if redis.call("get",KEYS[1]) == ARGV[1] then\n    if tonumber(ARGV[2]) > 0 then\n'
           '        return redis.call("expire",KEYS[1],ARGV[2])\n    end\n\n'
           '    redis.call("persist",KEYS[1])\n\n    return 1\nelse\n    return 0\nend')


def laravel():
    cache, default = client(db=1), client(db=0)
    p = "laravel_database_laravel_cache_"

    def cache_store():
        retry(lambda: default.set(p + "in-db0", "keep"))
        retry(lambda: setex(cache, p + "a", 60, 's:3:"foo";'))
        expect("GET", retry(lambda: cache.get(p + "a")), b's:3:"foo";')
        expect("MGET", retry(lambda: cache.mget(p + "a", p + "missing")), [b's:3:"foo";', None])
        expect("add (new)", retry(lambda: cache.eval(ADD, 1, p + "b", "1", "60")), b"OK")
        expect("add (exists)", retry(lambda: cache.eval(ADD, 1, p + "b", "2", "60")), None)
        expect("INCRBY", retry(lambda: cache.incrby(p + "b", 5)), 6)
        expect("DECRBY", retry(lambda: cache.decrby(p + "b", 2)), 4)
        retry(lambda: cache.set(p + "forever", "1"))
        retry(lambda: cache.delete(p + "forever"))
        pipe = cache.pipeline(transaction=True)
        setex(pipe, p + "m1", 60, "1")
        setex(pipe, p + "m2", 60, "2")
        retry(pipe.execute)
        expect("db 1 holds the cache", retry(cache.dbsize), 4)
        retry(cache.flushdb)
        expect("FLUSHDB empties db 1", retry(cache.dbsize), 0)
        expect("db 0 untouched", retry(lambda: default.get(p + "in-db0")), b"keep")
    check("laravel cache store in database 1 (SETEX, MGET, add script, INCRBY, FLUSHDB)",
          cache_store)

    def locks():
        lock = p + "session:abcdef"
        expect("acquire", retry(lambda: default.set(lock, "owner-one-16char", ex=10, nx=True)), True)
        expect("second acquire", retry(lambda: default.set(lock, "owner-two-16char", ex=10, nx=True)), None)
        expect("refresh (owner)", retry(lambda: default.eval(REFRESH, 1, lock, "owner-one-16char", "20")), 1)
        if not 19 <= default.ttl(lock) <= 20:
            raise AssertionError(f"ttl {default.ttl(lock)}")
        expect("release (not owner)", retry(lambda: default.eval(RELEASE, 1, lock, "owner-two-16char")), 0)
        expect("release (owner)", retry(lambda: default.eval(RELEASE, 1, lock, "owner-one-16char")), 1)
        expect("free", default.exists(lock), 0)
    check("laravel locks (SET EX NX, refreshLock and releaseLock scripts)", locks)

    def blocking_sessions():
        # Session blocking: two requests on one session; the second waits (retrying SET
        # NX every 50 ms) until the first releases, then sees the first's write.
        lock, sess = p + "session:blocked", p + "S" * 40
        order, waits = [], []
        second_waited = threading.Event()

        def req(owner, value, hold):
            c = client()
            ends = time.monotonic() + 10
            while not retry(lambda: c.set(lock, owner, ex=10, nx=True)):
                waits.append(owner)
                second_waited.set()
                if time.monotonic() > ends:
                    raise AssertionError("lock wait timed out")
                time.sleep(0.05)  # Laravel's session lock retry interval
            order.append(("in", owner, retry(lambda: c.get(sess))))
            if hold and not second_waited.wait(10):
                raise AssertionError("the second request never waited")
            retry(lambda: setex(c, sess, 7200, value))
            order.append(("out", owner))
            retry(lambda: c.eval(RELEASE, 1, lock, owner))

        t = threading.Thread(target=req, args=("first-owner-0001", "a:1:{s:1:\"n\";i:1;}", True))
        t.start()
        wait_for("first request holds the lock", lambda: default.exists(lock) == 1)
        req("second-owner-002", "a:1:{s:1:\"n\";i:2;}", False)
        t.join()
        expect("the second request waited", bool(waits), True)
        expect("serialized", [o[0] for o in order], ["in", "out", "in", "out"])
        expect("second saw the first's write", order[2][2], b"a:1:{s:1:\"n\";i:1;}")
        expect("lock gone", default.exists(lock), 0)
    check("laravel session blocking serializes two requests", blocking_sessions)


def main():
    for flow in (spring_indexed, spring_reactive, aspnet, redisson, laravel):
        flow()
    return 0


if __name__ == "__main__":
    sys.exit(main())
