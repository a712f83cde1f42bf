"""PHP's native sessions (session.save_handler=redis, phpredis) against sessiond, with
session locking on (redis.session.locking_enabled=1), on one node and on a 3-node
cluster through a follower with the leader killed in the middle.

    python sessions.py --bin target/release/sessiond --mode single|cluster

Each step is one PHP process, as one web request (compat/php/step.php). The flow:
create, read, refresh, two overlapping requests on one session (they must serialize:
the second sees the first's write, and the lock key is gone after both),
session_regenerate_id, expiry, destroy. phpredis takes its lock with SET NX PX and
releases it with EVALSHA/EVAL of its release script: without scripting the lock stayed
and later writes were lost while session_write_close() still returned true.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
from sessions import Cluster, Single, raw, retry, wait_for, RetryableResponse  # noqa: E402

STEP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "step.php")
PREFIX = "PHPREDIS_SESSION:"


def php(port, action, sid, arg=None, lifetime=1440, background=False):
    cmd = [
        "php",
        "-d", "session.save_handler=redis",
        "-d", f'session.save_path="tcp://127.0.0.1:{port}?timeout=5"',
        "-d", "session.use_cookies=0",
        "-d", "session.use_strict_mode=0",
        "-d", f"session.gc_maxlifetime={lifetime}",
        "-d", "redis.session.locking_enabled=1",
        "-d", "redis.session.lock_expire=10",
        "-d", "redis.session.lock_wait_time=20000",
        "-d", "redis.session.lock_retries=-1",
        STEP, action, sid,
    ] + ([str(arg)] if arg is not None else [])
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise RetryableResponse(f"php {action}: exit {out.returncode}: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def finished(p):
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"php exited {p.returncode}: {err.strip()}")
    return json.loads(out.strip().splitlines()[-1])


def flow(target):
    port = target.client_port()
    r = raw(port)
    sid = "phpflow" + str(os.getpid())
    got = retry(lambda: php(port, "create", sid), "create")
    assert got["written"] is True, got
    stored = r.get(PREFIX + sid)
    assert stored and "alice" in stored, stored
    assert 1400 <= r.ttl(PREFIX + sid) <= 1440, r.ttl(PREFIX + sid)
    got = retry(lambda: php(port, "read", sid), "read")
    assert got["seen"] == {"user": "alice", "n": 1}, got
    target.fail_over()
    got = retry(lambda: php(port, "incr", sid), "refresh")
    assert got["seen"]["n"] == 1, got
    got = retry(lambda: php(port, "read", sid), "read after refresh")
    assert got["seen"]["n"] == 2, got

    # Two overlapping requests: the second waits for the first's lock.
    def overlap():
        slow = php(port, "slow-write", sid, 1500, background=True)
        wait_for(lambda: r.exists(PREFIX + sid + "_LOCK") == 1, "the first request's lock")
        quick = php(port, "quick-write", sid, background=True)
        a, b = finished(slow), finished(quick)
        assert "slow" not in a["seen"], a
        assert b["seen"].get("slow") == "done", f"the second request did not wait: {b}"
        return a, b

    retry(overlap, "overlapping requests")
    # Released by each request's EVALSHA (not left to expire after lock_expire).
    assert r.exists(PREFIX + sid + "_LOCK") == 0, "the lock outlived the requests"
    got = php(port, "read", sid)
    assert got["seen"].get("slow") == "done" and got["seen"].get("quick") == "done", got

    got = retry(lambda: php(port, "regenerate", sid), "regenerate")
    new = got["id"]
    assert new != sid and r.exists(PREFIX + new) == 1 and r.exists(PREFIX + sid) == 0, got
    got = php(port, "read", new)
    assert got["seen"]["regenerated"] is True and got["seen"]["user"] == "alice", got

    # Expiry: a session written with a 1 s lifetime is gone after it.
    short = sid + "short"
    retry(lambda: php(port, "create", short, lifetime=1), "short-lived create")
    wait_for(lambda: r.exists(PREFIX + short) == 0, "the short session to expire", 10)
    got = php(port, "read", short)
    assert got["seen"] == [] or got["seen"] == {}, got

    retry(lambda: php(port, "destroy", new), "destroy")
    assert r.exists(PREFIX + new) == 0
    assert not r.keys(PREFIX + "*_LOCK"), r.keys(PREFIX + "*_LOCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mode", choices=["single", "cluster"], default="single")
    a = ap.parse_args()
    if subprocess.run(["php", "-r", "exit(class_exists('Redis') ? 0 : 1);"]).returncode != 0:
        print("FAIL php-cli with php-redis is needed (apt-get install php-cli php-redis)")
        return 1
    target = Cluster(a.bin) if a.mode == "cluster" else Single(a.bin)
    start = time.monotonic()
    try:
        flow(target)
        print(f"ok   {a.mode:7} php native sessions with locking ({time.monotonic() - start:.1f} s)", flush=True)
        return 0
    except Exception as e:  # noqa: BLE001
        print(f"FAIL {a.mode:7} php native sessions with locking: {type(e).__name__}: {e}", flush=True)
        return 1
    finally:
        target.close()


if __name__ == "__main__":
    sys.exit(main())
