//! A bounded soak: many clients with mixed session traffic (short-TTL sessions, hashes,
//! refreshes, deletes, durable writes) and random abrupt disconnects, against one node and
//! against a 3-node cluster. Afterwards every acknowledged durable write is present (on
//! every node), and once the sessions have expired and the durable keys are deleted,
//! keys and memory return to their baseline.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sessiond_client::{Client, Reply};
use support::cluster::Cluster;
use support::{dbsize, info_field, used_memory as used, wait_until, Server};

const CLIENTS: u64 = 16;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One client's traffic for `dur`; returns the durable writes it saw acknowledged.
async fn client(addrs: Vec<String>, id: u64, dur: Duration) -> HashMap<String, String> {
    let mut rng = Rng(0x9e37_79b9 ^ ((id + 1) * 0x1000_0001));
    let mut acked = HashMap::new();
    let end = Instant::now() + dur;
    let mut n = 0u64;
    while Instant::now() < end {
        let addr = &addrs[(rng.next() % addrs.len() as u64) as usize];
        let Ok(mut c) = Client::connect(addr.as_str()).await else {
            continue;
        };
        // A connection lives for a random number of operations, then is dropped, at
        // times with commands still in flight.
        let ops = 1 + rng.next() % 60;
        for _ in 0..ops {
            n += 1;
            let sess = format!("soak:{id}:sess:{}", rng.next() % 200);
            let r = match rng.next() % 8 {
                0 | 1 => {
                    c.cmd(&["SET", &sess, "payload-payload-payload", "PX", "1500"])
                        .await
                }
                2 => c.cmd(&["GET", &sess]).await,
                3 => c.cmd(&["PEXPIRE", &sess, "1500"]).await,
                4 => {
                    let h = format!("soak:{id}:hash:{}", rng.next() % 50);
                    let r = c.cmd(&["HSET", &h, "user", "u", "cart", "3"]).await;
                    let _ = c.cmd(&["PEXPIRE", &h, "1500"]).await;
                    r
                }
                5 => c.cmd(&["DEL", &sess]).await,
                _ => {
                    let k = format!("soak:{id}:durable:{n}");
                    let v = format!("v{n}");
                    let r = c.cmd(&["SET", &k, &v]).await;
                    if matches!(r, Ok(Reply::Simple(_))) {
                        acked.insert(k, v);
                    }
                    r
                }
            };
            if r.is_err() {
                break;
            }
        }
        if rng.next().is_multiple_of(3) {
            // Abrupt: queue a few commands and drop the connection without reading.
            c.send(&["SET", &format!("soak:{id}:sess:x"), "y", "PX", "1500"]);
            c.send(&["GET", &format!("soak:{id}:sess:x")]);
            let _ = c.flush().await;
        }
        drop(c);
    }
    acked
}

async fn run_clients(addrs: &[String], dur: Duration) -> HashMap<String, String> {
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addrs.to_vec(), id, dur)))
        .collect();
    let mut all = HashMap::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

fn check_acked(con: &mut redis::Connection, acked: &HashMap<String, String>) {
    let keys: Vec<&String> = acked.keys().collect();
    for chunk in keys.chunks(500) {
        let vals: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query(con).expect("MGET");
        for (k, v) in chunk.iter().zip(vals) {
            assert_eq!(
                v.as_deref(),
                Some(acked[*k].as_str()),
                "acknowledged {k} lost"
            );
        }
    }
}

fn delete(con: &mut redis::Connection, acked: &HashMap<String, String>) {
    let keys: Vec<&String> = acked.keys().collect();
    for chunk in keys.chunks(500) {
        let _: i64 = redis::cmd("DEL").arg(chunk).query(con).expect("DEL");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn soak_single_node() {
    let srv = Server::start();
    let mut con = srv.conn();
    let baseline = used(&mut con);
    let acked = rt().block_on(run_clients(&[srv.addr()], Duration::from_secs(6)));
    assert!(acked.len() > 1000, "only {} durable writes", acked.len());
    check_acked(&mut con, &acked);
    delete(&mut con, &acked);
    assert!(
        wait_until(Duration::from_secs(20), || dbsize(&mut con) == 0),
        "keys left: {}",
        dbsize(&mut con)
    );
    assert!(
        wait_until(Duration::from_secs(20), || used(&mut con)
            < baseline + 4 * 1024 * 1024),
        "used_memory {} did not return to its baseline {baseline}",
        used(&mut con)
    );
    let clients = info_field(&mut con, "clients", "connected_clients");
    assert_eq!(clients.as_deref(), Some("1"), "connections leaked");
}

#[test]
fn soak_cluster() {
    let c = Cluster::start(3, &[]);
    let _ = c.wait_leader(Duration::from_secs(15));
    let addrs: Vec<String> = (0..3).map(|i| c.node(i).addr()).collect();
    let baseline: Vec<u64> = (0..3).map(|i| used(&mut c.node(i).conn())).collect();
    let acked = rt().block_on(run_clients(&addrs, Duration::from_secs(6)));
    assert!(acked.len() > 200, "only {} durable writes", acked.len());
    for i in 0..3 {
        let mut con = c.node(i).conn();
        // Followers apply a little after the leader answered.
        let last = acked.keys().next().cloned().unwrap_or_default();
        assert!(wait_until(Duration::from_secs(10), || {
            redis::cmd("EXISTS")
                .arg(&last)
                .query::<i64>(&mut con)
                .unwrap_or(0)
                == 1
        }));
        check_acked(&mut con, &acked);
    }
    let mut con = c.node(0).conn();
    delete(&mut con, &acked);
    for i in 0..3 {
        let mut con = c.node(i).conn();
        assert!(
            wait_until(Duration::from_secs(30), || dbsize(&mut con) == 0),
            "node {}: keys left: {}",
            i + 1,
            dbsize(&mut con)
        );
    }
    // The raft log holds the writes until a snapshot compacts it: take one on every node,
    // then memory is back near where it started.
    for (i, base) in baseline.iter().enumerate() {
        let mut con = c.node(i).conn();
        let r: String = redis::cmd("RAFT.SNAPSHOT")
            .query(&mut con)
            .expect("RAFT.SNAPSHOT");
        let index: u64 = r
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .expect("snapshot index");
        assert!(wait_until(Duration::from_secs(20), || c
            .raft_index(i, "raft_snapshot_index")
            >= index));
        assert!(
            wait_until(Duration::from_secs(20), || used(&mut con)
                < base + 16 * 1024 * 1024),
            "node {}: used_memory {} did not return near its baseline {base}",
            i + 1,
            used(&mut con)
        );
    }
}
