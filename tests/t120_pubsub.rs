//! Pub/sub and keyspace notifications on a single node: SUBSCRIBE/PSUBSCRIBE/PUBLISH
//! with Redis's replies in RESP2 and RESP3, the RESP2 subscribed-mode rules, PUBSUB
//! introspection, cleanup on disconnect, and `notify-keyspace-events` with the events
//! Spring Session listens for (`expired` fired by the timing wheel, `del`, `expire`).

mod support;

use std::time::Duration;

use sessiond_client::{Client, Reply};
use support::{err_of, wait_until, Server};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

/// The next frame the server sends, within a bounded wait.
async fn next(c: &mut Client) -> Reply {
    tokio::time::timeout(Duration::from_secs(5), c.read_frame())
        .await
        .expect("a frame within 5 s")
        .expect("frame")
}

#[test]
fn subscribe_publish_and_patterns_resp2() {
    let srv = Server::start();
    rt().block_on(async {
        let mut sub = Client::connect(srv.addr()).await.expect("connect");
        let mut pubr = Client::connect(srv.addr()).await.expect("connect");
        sub.send(&["SUBSCRIBE", "news", "sport"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("subscribe"), bulk("news"), Reply::Integer(1)])
        );
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("subscribe"), bulk("sport"), Reply::Integer(2)])
        );
        sub.send(&["PSUBSCRIBE", "n*"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("psubscribe"), bulk("n*"), Reply::Integer(3)])
        );
        // One client, reached through a channel and a pattern: counted twice, as Redis does.
        assert_eq!(
            pubr.cmd(&["PUBLISH", "news", "hello"]).await.expect("publish"),
            Reply::Integer(2)
        );
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("message"), bulk("news"), bulk("hello")])
        );
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![
                bulk("pmessage"),
                bulk("n*"),
                bulk("news"),
                bulk("hello")
            ])
        );
        assert_eq!(
            pubr.cmd(&["PUBLISH", "nobody", "x"]).await.expect("publish"),
            Reply::Integer(1),
            "n* matches 'nobody'"
        );
        assert_eq!(
            pubr.cmd(&["PUBLISH", "weather", "x"]).await.expect("publish"),
            Reply::Integer(0)
        );
        let _ = next(&mut sub).await; // the 'nobody' pmessage

        // RESP2 subscribed mode: only (un)subscribe, PING, QUIT, RESET.
        sub.send(&["GET", "k"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Error(bytes::Bytes::from_static(
                b"ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ))
        );
        sub.send(&["PING"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("pong"), bulk("")])
        );

        // Introspection.
        let chans = pubr.cmd(&["PUBSUB", "CHANNELS"]).await.expect("channels");
        let Reply::Array(mut chans) = chans else {
            panic!("{chans:?}")
        };
        chans.sort_by_key(|f| format!("{f:?}"));
        assert_eq!(chans, vec![bulk("news"), bulk("sport")]);
        assert_eq!(
            pubr.cmd(&["PUBSUB", "NUMSUB", "news", "none"]).await.expect("numsub"),
            Reply::Array(vec![
                bulk("news"),
                Reply::Integer(1),
                bulk("none"),
                Reply::Integer(0)
            ])
        );
        assert_eq!(
            pubr.cmd(&["PUBSUB", "NUMPAT"]).await.expect("numpat"),
            Reply::Integer(1)
        );

        // UNSUBSCRIBE with no argument leaves every channel; then a null reply.
        sub.send(&["UNSUBSCRIBE", "news"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("unsubscribe"), bulk("news"), Reply::Integer(2)])
        );
        sub.send(&["PUNSUBSCRIBE"]);
        sub.send(&["UNSUBSCRIBE"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("punsubscribe"), bulk("n*"), Reply::Integer(1)])
        );
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("unsubscribe"), bulk("sport"), Reply::Integer(0)])
        );
        sub.send(&["UNSUBSCRIBE"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Array(vec![bulk("unsubscribe"), Reply::Null, Reply::Integer(0)])
        );
        // Out of subscribed mode, commands work again.
        assert_eq!(sub.cmd(&["PING"]).await.expect("ping"), Reply::Simple("PONG".into()));
    });
}

#[test]
fn resp3_pushes_and_commands_while_subscribed() {
    let srv = Server::start();
    rt().block_on(async {
        let mut sub = Client::connect(srv.addr()).await.expect("connect");
        let _ = sub.cmd(&["HELLO", "3"]).await.expect("hello");
        sub.send(&["SUBSCRIBE", "ch"]);
        sub.flush().await.expect("flush");
        assert_eq!(
            next(&mut sub).await,
            Reply::Push(vec![bulk("subscribe"), bulk("ch"), Reply::Integer(1)])
        );
        // RESP3 allows any command while subscribed.
        assert_eq!(
            sub.cmd(&["SET", "k", "v"]).await.expect("set"),
            Reply::Simple("OK".into())
        );
        assert_eq!(sub.cmd(&["GET", "k"]).await.expect("get"), bulk("v"));
        let mut p = Client::connect(srv.addr()).await.expect("connect");
        assert_eq!(
            p.cmd(&["PUBLISH", "ch", "m"]).await.expect("publish"),
            Reply::Integer(1)
        );
        assert_eq!(
            next(&mut sub).await,
            Reply::Push(vec![bulk("message"), bulk("ch"), bulk("m")])
        );
    });
}

#[test]
fn disconnect_and_reset_drop_subscriptions() {
    let srv = Server::start();
    let mut con = srv.conn();
    rt().block_on(async {
        let mut a = Client::connect(srv.addr()).await.expect("connect");
        a.send(&["SUBSCRIBE", "gone"]);
        a.flush().await.expect("flush");
        let _ = next(&mut a).await;
        let mut b = Client::connect(srv.addr()).await.expect("connect");
        b.send(&["SUBSCRIBE", "gone"]);
        b.flush().await.expect("flush");
        let _ = next(&mut b).await;
        assert_eq!(
            b.cmd(&["RESET"]).await.expect("reset"),
            Reply::Simple("RESET".into())
        );
        drop(a);
    });
    let n = || -> i64 {
        redis::cmd("PUBLISH")
            .arg("gone")
            .arg("x")
            .query(&mut srv.conn())
            .expect("publish")
    };
    assert!(
        wait_until(Duration::from_secs(10), || n() == 0),
        "subscriptions outlived their clients"
    );
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("gone")
        .query(&mut con)
        .expect("numsub");
    assert_eq!(numsub[1], redis::Value::Int(0));
}

#[test]
fn keyspace_events_for_expiry_del_and_expire() {
    let srv = Server::start();
    let mut con = srv.conn();
    // Invalid classes are refused with Redis's text, and nothing changes.
    let e = err_of(
        &mut con,
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("Q"),
    );
    assert!(e.contains("Invalid event class character"), "{e}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Egx")
        .query(&mut con)
        .expect("config set");
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut con)
        .expect("config get");
    assert_eq!(got, vec!["notify-keyspace-events", "gxE"]);
    rt().block_on(async {
        let mut sub = Client::connect(srv.addr()).await.expect("connect");
        sub.send(&["PSUBSCRIBE", "__keyevent@0__:*"]);
        sub.flush().await.expect("flush");
        let _ = next(&mut sub).await;
        let mut c = Client::connect(srv.addr()).await.expect("connect");
        // Nobody reads this key: the timing wheel's expiry must raise the event.
        let _ = c
            .cmd(&["SET", "sess:1", "v", "PX", "300"])
            .await
            .expect("set");
        let _ = c.cmd(&["SET", "sess:2", "v"]).await.expect("set");
        let _ = c.cmd(&["EXPIRE", "sess:2", "100"]).await.expect("expire");
        let _ = c.cmd(&["DEL", "sess:2"]).await.expect("del");
        let _ = c.cmd(&["DEL", "missing"]).await.expect("del");
        let mut events = Vec::new();
        while events.len() < 4 {
            match next(&mut sub).await {
                Reply::Array(v) if v.len() == 4 => {
                    let (Reply::Bulk(ch), Reply::Bulk(key)) = (&v[2], &v[3]) else {
                        panic!("{v:?}")
                    };
                    events.push(format!(
                        "{} {}",
                        String::from_utf8_lossy(ch),
                        String::from_utf8_lossy(key)
                    ));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // `set` is class $, not enabled by Egx: only these four, in this order.
        assert_eq!(
            events,
            vec![
                "__keyevent@0__:expire sess:1",
                "__keyevent@0__:expire sess:2",
                "__keyevent@0__:del sess:2",
                "__keyevent@0__:expired sess:1",
            ]
        );
        // Notifications off: a key expiring raises nothing more.
        let _ = c
            .cmd(&["CONFIG", "SET", "notify-keyspace-events", ""])
            .await
            .expect("config");
        let _ = c
            .cmd(&["SET", "sess:3", "v", "PX", "20"])
            .await
            .expect("set");
        let _ = c
            .cmd(&["PUBLISH", "__keyevent@0__:marker", "m"])
            .await
            .expect("publish");
        match next(&mut sub).await {
            Reply::Array(v) => assert_eq!(v[2], bulk("__keyevent@0__:marker"), "{v:?}"),
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn keyspace_channel_carries_the_event_name() {
    let srv = Server::start();
    let mut con = srv.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KA")
        .query(&mut con)
        .expect("config set");
    rt().block_on(async {
        let mut sub = Client::connect(srv.addr()).await.expect("connect");
        sub.send(&["SUBSCRIBE", "__keyspace@0__:user:1"]);
        sub.flush().await.expect("flush");
        let _ = next(&mut sub).await;
        let mut c = Client::connect(srv.addr()).await.expect("connect");
        let _ = c
            .cmd(&["HSET", "user:1", "name", "ann"])
            .await
            .expect("hset");
        let _ = c.cmd(&["HDEL", "user:1", "name"]).await.expect("hdel");
        let mut got = Vec::new();
        for _ in 0..3 {
            match next(&mut sub).await {
                Reply::Array(v) => got.push(v[2].clone()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, vec![bulk("hset"), bulk("hdel"), bulk("del")]);
    });
}
