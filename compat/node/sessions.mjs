// Real Node session stores against sessiond: express-session with connect-redis on
// node-redis 6 (RESP3), ioredis, and ioredis's Sentinel support.
//
//   node sessions.mjs --bin target/release/sessiond --mode single
//   node sessions.mjs --bin target/release/sessiond --mode cluster
//
// Each flow creates a session, reads it, refreshes it (sliding expiry), lets one expire
// and destroys one, asserting on the data in sessiond. In cluster mode every flow runs
// against its own 3-node cluster through a follower, with the leader killed (SIGKILL) in
// the middle; a step that fails during the election is retried, as a web request would be.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";

import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";
import Redis from "ioredis";

const DEADLINE_MS = 20000;

// A free port below the kernel's ephemeral range (32768 and up), so that no `:0` bind
// or outgoing connection takes it before the server binds it.
async function freePort() {
  for (let i = 0; i < 1000; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const ok = await new Promise((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port in 20000..32000");
}

// Run `step` until it stops throwing, polling every 20 ms up to `limit` ms: the one wait
// of this suite, always on a condition with a deadline.
async function retry(step, what = "step", limit = DEADLINE_MS) {
  const end = Date.now() + limit;
  for (;;) {
    try {
      return await step();
    } catch (e) {
      if (Date.now() > end) throw new Error(`${what} kept failing: ${e.message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

// Wait until `cond()` holds (a throw counts as "not yet").
async function waitFor(cond, what, limit = DEADLINE_MS) {
  await retry(
    async () => {
      if (!(await cond())) throw new Error(`not yet: ${what}`);
    },
    `waiting for ${what}`,
    limit,
  );
}

/** A short-lived ioredis connection for checks. */
async function probe(port, fn) {
  const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on("error", () => {});
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

class Single {
  async start(bin) {
    this.port = await freePort();
    this.proc = spawn(bin, ["--port", String(this.port)], { stdio: "ignore" });
    await waitFor(() => probe(this.port, (r) => r.ping()), "sessiond to start", 30000);
    return this;
  }
  clientPort() {
    return this.port;
  }
  otherPort() {
    return this.port;
  }
  sentinelPorts() {
    return [this.port];
  }
  async failOver() {}
  async close() {
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await exited;
  }
}

class Cluster {
  async start(bin) {
    this.dir = mkdtempSync(join(tmpdir(), "sessiond-compat-"));
    this.ports = [await freePort(), await freePort(), await freePort()];
    const raft = [await freePort(), await freePort(), await freePort()];
    const peers = raft.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(",");
    this.procs = this.ports.map((port, i) => {
      const log = openSync(join(this.dir, `n${i + 1}.log`), "w");
      return spawn(
        bin,
        ["--port", String(port), "--node-id", String(i + 1), "--peers", peers,
          "--cluster-addr", `127.0.0.1:${raft[i]}`, "--dir", join(this.dir, `n${i + 1}`)],
        { stdio: ["ignore", log, log] },
      );
    });
    this.alive = [true, true, true];
    const leader = await this.leaderIndex();
    this.follower = [0, 1, 2].find((i) => i !== leader);
    this.killed = false;
    return this;
  }
  async leaderIndex() {
    let found = -1;
    await waitFor(async () => {
      for (let i = 0; i < 3; i++) {
        if (!this.alive[i]) continue;
        try {
          const info = await probe(this.ports[i], (r) => r.info("raft"));
          if (/raft_role:leader/.test(info)) {
            found = i;
            return true;
          }
        } catch {
          // down or starting
        }
      }
      return false;
    }, "a raft leader", 30000);
    return found;
  }
  clientPort() {
    return this.ports[this.follower];
  }
  /** A live node other than the one clients use. */
  otherPort() {
    return this.ports.find((p, i) => i !== this.follower && this.alive[i]);
  }
  sentinelPorts() {
    return this.ports;
  }
  async failOver() {
    if (this.killed) return;
    const i = await this.leaderIndex();
    assert.notEqual(i, this.follower);
    const exited = new Promise((r) => this.procs[i].once("exit", r));
    this.procs[i].kill("SIGKILL");
    await exited;
    this.alive[i] = false;
    this.killed = true;
    console.log(`    killed the leader (node ${i + 1})`);
  }
  async close() {
    await Promise.all(
      this.procs.map((p) => {
        if (p.exitCode !== null || p.signalCode !== null) return null;
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGKILL");
        return exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- flows ----------------------------------------------------------------------------

/** express-session + connect-redis on node-redis 6 over RESP3. */
async function flowExpress(t) {
  const client = createClient({
    socket: { port: t.clientPort(), host: "127.0.0.1", reconnectStrategy: () => 50 },
    RESP: 3,
  });
  client.on("error", () => {}); // reconnects on its own during a failover
  await client.connect();
  const hello = await retry(() => client.sendCommand(["HELLO"]), "HELLO");
  const proto = hello instanceof Map ? hello.get("proto") : hello.proto;
  assert.equal(Number(proto), 3, JSON.stringify(hello));

  const store = new RedisStore({ client, prefix: "sess:" });
  const app = express();
  app.use(
    session({
      store,
      secret: "compat",
      resave: false,
      saveUninitialized: false,
      rolling: true,
      cookie: { maxAge: 60000 },
    }),
  );
  app.get("/login/:name", (req, res) => {
    req.session.user = req.params.name;
    if (req.query.short) req.session.cookie.maxAge = 1000;
    res.send("ok");
  });
  app.get("/me", (req, res) => res.send(req.session.user ?? ""));
  app.get("/logout", (req, res) => req.session.destroy(() => res.send("bye")));
  const server = await new Promise((r) => {
    const s = app.listen(0, "127.0.0.1", () => r(s));
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  const jar = {};
  const get = (who, path) =>
    retry(async () => {
      const res = await fetch(base + path, { headers: jar[who] ? { cookie: jar[who] } : {} });
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      const set = res.headers.get("set-cookie");
      if (set) jar[who] = set.split(";")[0];
      return res.text();
    }, path);
  const ttl = (key) => retry(() => probe(t.clientPort(), (r) => r.ttl(key)));
  const sidOf = (who) => decodeURIComponent(jar[who].split("=")[1]).slice(2).split(".")[0];
  try {
    assert.equal(await get("ann", "/login/ann"), "ok");
    assert.equal(await get("ann", "/me"), "ann");
    const key = `sess:${sidOf("ann")}`;
    const stored = JSON.parse(await retry(() => probe(t.clientPort(), (r) => r.get(key))));
    assert.equal(stored.user, "ann");
    const t0 = await ttl(key);
    assert.ok(t0 > 50 && t0 <= 60, `ttl ${t0}`);
    await t.failOver();
    assert.equal(await get("ann", "/me"), "ann");
    // Rolling sessions: a request pushes the expiry out again.
    await retry(() => probe(t.clientPort(), (r) => r.expire(key, 20)));
    await get("ann", "/me");
    assert.ok((await ttl(key)) > 50, "the request did not refresh the TTL");
    // One expires.
    assert.equal(await get("eve", "/login/eve?short=1"), "ok");
    const eveKey = `sess:${sidOf("eve")}`;
    await waitFor(
      () => probe(t.clientPort(), async (r) => (await r.exists(eveKey)) === 0),
      "eve's session to expire",
    );
    assert.equal(await get("eve", "/me"), "");
    // One is destroyed.
    assert.equal(await get("ann", "/logout"), "bye");
    assert.equal(await retry(() => probe(t.clientPort(), (r) => r.exists(key))), 0);
  } finally {
    server.close();
    await client.quit().catch(() => {});
  }
}

/** ioredis as a session store would drive it: JSON strings with TTLs, hashes, MULTI. */
async function flowIoredis(t) {
  const r = new Redis({ port: t.clientPort(), maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  r.on("error", () => {});
  try {
    const data = { user: "ann", roles: ["admin"] };
    assert.equal(await retry(() => r.set("sess:a", JSON.stringify(data), "EX", 60)), "OK");
    assert.deepEqual(JSON.parse(await retry(() => r.get("sess:a"))), data);
    await retry(() => r.hset("sess:h", { user: "bob", n: "1" }));
    await t.failOver();
    assert.equal(await retry(() => r.expire("sess:a", 120)), 1);
    const ttl = await retry(() => r.ttl("sess:a"));
    assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
    assert.deepEqual(await retry(() => r.hgetall("sess:h")), { user: "bob", n: "1" });
    await retry(() => r.set("sess:short", "x", "PX", 300));
    await waitFor(async () => (await r.exists("sess:short")) === 0, "sess:short to expire");
    assert.equal(await retry(() => r.del("sess:a")), 1);
    assert.equal(await retry(() => r.get("sess:a")), null);
    const res = await retry(() => r.multi().set("sess:t", "1").incr("sess:t").expire("sess:t", 30).exec());
    assert.deepEqual(res, [[null, "OK"], [null, 2], [null, 1]]);
  } finally {
    r.disconnect();
  }
}

/** GET calls a node has served (INFO commandstats). */
async function getCalls(port) {
  const info = await probe(port, (r) => r.info("commandstats"));
  const m = /cmdstat_get:calls=(\d+)/.exec(info);
  return m ? Number(m[1]) : 0;
}

/**
 * node-redis's client-side cache (RESP3, CLIENT TRACKING): a session read twice costs one
 * round trip; written by another client through another node, the next read sees the
 * new value.
 */
async function flowClientCache(t) {
  const r = createClient({
    url: `redis://127.0.0.1:${t.clientPort()}`,
    RESP: 3,
    clientSideCache: { ttl: 0, maxEntries: 0 },
  });
  r.on("error", () => {});
  const w = new Redis({ port: t.otherPort(), maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  w.on("error", () => {});
  try {
    await r.connect();
    await retry(() => w.set("sess:cache", JSON.stringify({ user: "ann" }), "EX", 60));
    await waitFor(async () => (await probe(t.clientPort(), (p) => p.exists("sess:cache"))) === 1,
      "the write to reach the node");
    const before = await getCalls(t.clientPort());
    assert.deepEqual(JSON.parse(await r.get("sess:cache")), { user: "ann" });
    assert.deepEqual(JSON.parse(await r.get("sess:cache")), { user: "ann" });
    const served = (await getCalls(t.clientPort())) - before;
    assert.equal(served, 1, `two reads cost ${served} round trips`);
    await retry(() => w.set("sess:cache", JSON.stringify({ user: "bob" }), "EX", 60));
    // The next request is handled in a later turn of the event loop, as the push that
    // arrived meanwhile is (node-redis reads it from its socket there).
    await new Promise((resolve) => setImmediate(resolve));
    // The write's reply came after the invalidation reached this client's node and was
    // sent to it (a cluster holds replies for that): the very next read is fresh.
    assert.equal(JSON.parse(await r.get("sess:cache")).user, "bob", "the next read saw the old session");
    assert.equal((await getCalls(t.clientPort())) - before, 2, "the fresh value came from the server");
  } finally {
    await r.quit().catch(() => {});
    w.disconnect();
  }
}

/** ioredis with `sentinels:` finds the leader and follows it across a failover. */
async function flowSentinel(t) {
  const r = new Redis({
    sentinels: t.sentinelPorts().map((port) => ({ host: "127.0.0.1", port })),
    name: "mymaster",
    maxRetriesPerRequest: 1,
    sentinelRetryStrategy: () => 50,
    retryStrategy: () => 50,
  });
  r.on("error", () => {});
  try {
    assert.equal(await retry(() => r.set("sess:s", "v", "EX", 60)), "OK");
    await t.failOver();
    assert.equal(await retry(() => r.get("sess:s")), "v");
    assert.equal(await retry(() => r.set("sess:s2", "w", "EX", 60)), "OK");
    assert.equal(await retry(() => r.get("sess:s2")), "w");
  } finally {
    r.disconnect();
  }
}

const FLOWS = [
  ["express-session + connect-redis (node-redis 6, RESP3)", flowExpress, false],
  ["ioredis", flowIoredis, false],
  ["node-redis client-side cache", flowClientCache, false],
  ["ioredis Sentinel", flowSentinel, true],
];

async function main() {
  const args = process.argv.slice(2);
  const bin = args[args.indexOf("--bin") + 1];
  const mode = args.includes("--mode") ? args[args.indexOf("--mode") + 1] : "single";
  assert.ok(bin && args.includes("--bin"), "usage: node sessions.mjs --bin PATH [--mode single|cluster]");
  let failed = 0;
  for (const [name, flow, clusterOnly] of FLOWS) {
    if (clusterOnly && mode !== "cluster") continue;
    const t = await (mode === "cluster" ? new Cluster() : new Single()).start(bin);
    const start = Date.now();
    try {
      await flow(t);
      console.log(`ok   ${mode.padEnd(7)} ${name} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${mode.padEnd(7)} ${name}: ${e.stack ?? e}`);
      // The nodes' logs, for the failure to be understood from CI's output alone.
      if (t.dir) {
        for (let i = 1; i <= 3; i++) {
          try {
            const lines = readFileSync(join(t.dir, `n${i}.log`), "utf8").trim().split("\n");
            console.log(`     --- node ${i}, last ${Math.min(lines.length, 40)} log lines`);
            for (const l of lines.slice(-40)) console.log(`     ${l}`);
          } catch {
            // no log for this node
          }
        }
      }
    } finally {
      await t.close();
    }
  }
  process.exit(failed ? 1 : 0);
}

main();
