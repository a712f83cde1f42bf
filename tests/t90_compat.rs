//! Client-library compatibility through the independent `redis` crate's async API, the
//! way web frameworks use it: a multiplexed tokio connection over RESP2 and RESP3,
//! pipelines, transactions, and many concurrent clients doing session traffic.

mod support;

use redis::AsyncCommands;
use support::Server;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A session flow (create with TTL, read, refresh, destroy) over the async multiplexed
/// connection, in RESP2 and in RESP3.
#[test]
fn async_session_flow_resp2_and_resp3() {
    let srv = Server::start();
    for client in [srv.client(), srv.client3()] {
        rt().block_on(async {
            let mut c = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let _: () = c
                .set_ex("sess:abc", "{\"user\":1}", 1800)
                .await
                .expect("setex");
            let v: Option<String> = c.get("sess:abc").await.expect("get");
            assert_eq!(v.as_deref(), Some("{\"user\":1}"));
            let ok: bool = c.expire("sess:abc", 3600).await.expect("expire");
            assert!(ok);
            let ttl: i64 = c.ttl("sess:abc").await.expect("ttl");
            assert!((3599..=3600).contains(&ttl), "ttl {ttl}");
            let n: i64 = c.del("sess:abc").await.expect("del");
            assert_eq!(n, 1);
            let v: Option<String> = c.get("sess:abc").await.expect("get");
            assert_eq!(v, None);
            // Hash-based sessions (Spring Session / ASP.NET style).
            let _: () = c
                .hset_multiple(
                    "spring:session:1",
                    &[("creationTime", "1"), ("maxInactiveInterval", "1800")],
                )
                .await
                .expect("hset");
            let all: std::collections::HashMap<String, String> =
                c.hgetall("spring:session:1").await.expect("hgetall");
            assert_eq!(
                all.get("maxInactiveInterval").map(String::as_str),
                Some("1800")
            );
            assert_eq!(all.len(), 2);
            let _: () = redis::cmd("FLUSHDB")
                .query_async(&mut c)
                .await
                .expect("flushdb");
        });
    }
}

/// Pipelines and MULTI/EXEC pipelines through the async connection.
#[test]
fn async_pipelines_and_transactions() {
    let srv = Server::start();
    rt().block_on(async {
        let mut c = srv
            .client3()
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let mut p = redis::pipe();
        for i in 0..1000 {
            p.set(format!("k{i}"), i).ignore();
        }
        p.get("k999");
        let (v,): (i64,) = p.query_async(&mut c).await.expect("pipeline");
        assert_eq!(v, 999);
        let (a, b): (i64, i64) = redis::pipe()
            .atomic()
            .incr("counter", 5)
            .incr("counter", 5)
            .query_async(&mut c)
            .await
            .expect("transaction");
        assert_eq!((a, b), (5, 10));
    });
}

/// 32 concurrent clients each create, read, refresh and delete 300 sessions; every
/// read sees its own write and the keyspace is empty at the end.
#[test]
fn concurrent_session_traffic() {
    let srv = Server::start_with(&["--threads", "2"]);
    rt().block_on(async {
        let client = srv.client();
        let mut tasks = Vec::new();
        for t in 0..32 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = client
                    .get_multiplexed_async_connection()
                    .await
                    .expect("connect");
                for i in 0..300 {
                    let key = format!("sess:{t}:{i}");
                    let val = format!("data-{t}-{i}");
                    let _: () = c.set_ex(&key, &val, 600).await.expect("setex");
                    let got: String = c.get(&key).await.expect("get");
                    assert_eq!(got, val);
                    let _: bool = c.expire(&key, 1200).await.expect("expire");
                    let n: i64 = c.del(&key).await.expect("del");
                    assert_eq!(n, 1);
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let n: i64 = redis::cmd("DBSIZE")
            .query_async(&mut c)
            .await
            .expect("dbsize");
        assert_eq!(n, 0);
    });
}
