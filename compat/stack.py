"""Run a session flow written in another language (compat/ruby, compat/go) against
sessiond: a single node, or a 3-node cluster through a follower whose leader is killed
when the flow says so.

    python compat/stack.py --bin target/release/sessiond --mode single|cluster -- CMD...

CMD gets the client port as its last argument. When it prints a line `KILL?`, the
leader is killed (in cluster mode) and `go` is written to its stdin; it prints `ok ...`
or `FAIL ...` lines, and its exit status is the verdict.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
from sessions import Cluster, Single  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mode", choices=["single", "cluster"], default="single")
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    target = Cluster(a.bin) if a.mode == "cluster" else Single(a.bin)
    start = time.monotonic()
    try:
        p = subprocess.Popen(a.cmd + [str(target.client_port())], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            line = line.rstrip("\n")
            if line == "KILL?":
                target.fail_over()
                p.stdin.write("go\n")
                p.stdin.flush()
                continue
            print(f"    {line}", flush=True)
        rc = p.wait(timeout=600)
        verdict = "ok  " if rc == 0 else "FAIL"
        print(f"{verdict} {a.mode:7} ({time.monotonic() - start:.1f} s)", flush=True)
        return 0 if rc == 0 else 1
    finally:
        target.close()


if __name__ == "__main__":
    sys.exit(main())
