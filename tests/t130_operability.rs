//! Operability: SLOWLOG, INFO's expiry section and sampled rates, the Prometheus
//! `/metrics` endpoint, and JSON logs.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{info_field, wait_until, Server};

fn config_set(con: &mut redis::Connection, k: &str, v: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(k)
        .arg(v)
        .query(con)
        .expect("CONFIG SET");
}

#[test]
fn slowlog_records_trims_and_resets() {
    let srv = Server::start();
    let mut con = srv.conn();
    let slow: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("slowlog-*")
        .query(&mut con)
        .expect("CONFIG GET");
    assert!(
        slow.contains(&"slowlog-log-slower-than".to_string()),
        "{slow:?}"
    );
    assert!(slow.contains(&"10000".to_string()), "{slow:?}");
    // Threshold 0 logs every command.
    config_set(&mut con, "slowlog-log-slower-than", "0");
    let big = "v".repeat(300);
    let _: () = redis::cmd("SET")
        .arg("k1")
        .arg(&big)
        .query(&mut con)
        .expect("SET");
    let _: Option<String> = redis::cmd("GET").arg("k1").query(&mut con).expect("GET");
    let len: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query(&mut con)
        .expect("LEN");
    assert!(len >= 3, "len {len}");
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(2)
        .query(&mut con)
        .expect("GET");
    assert_eq!(entries.len(), 2);
    // Newest first: the SLOWLOG LEN, then the GET.
    let redis::Value::Array(get) = &entries[1] else {
        panic!("{entries:?}")
    };
    assert_eq!(get.len(), 6, "{get:?}");
    assert_eq!(
        get[3],
        redis::Value::Array(vec![
            redis::Value::BulkString(b"GET".to_vec()),
            redis::Value::BulkString(b"k1".to_vec())
        ])
    );
    let all: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut con)
        .expect("GET -1");
    let set = all
        .iter()
        .find_map(|e| match e {
            redis::Value::Array(f) => match &f[3] {
                redis::Value::Array(a)
                    if a.first() == Some(&redis::Value::BulkString(b"SET".to_vec())) =>
                {
                    Some(a.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .expect("the SET is logged");
    assert_eq!(
        set[2],
        redis::Value::BulkString(format!("{}... (172 more bytes)", "v".repeat(128)).into_bytes())
    );
    // Off: nothing more is logged; RESET empties it.
    config_set(&mut con, "slowlog-log-slower-than", "-1");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut con)
        .expect("RESET");
    let _: () = redis::cmd("SET")
        .arg("k2")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    let len: i64 = redis::cmd("SLOWLOG")
        .arg("LEN")
        .query(&mut con)
        .expect("LEN");
    assert_eq!(len, 0);
    let e = support::err_of(&mut con, redis::cmd("SLOWLOG").arg("GET").arg(-5));
    assert_eq!(e, "ERR count should be greater than or equal to -1");
}

#[test]
fn info_has_expiry_section_and_sampled_rates() {
    let srv = Server::start();
    let mut con = srv.conn();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("e{i}"))
            .arg("v")
            .arg("PX")
            .arg(30)
            .query(&mut con)
            .expect("SET");
    }
    assert_eq!(
        info_field(&mut con, "expiry", "expiry_timers").as_deref(),
        Some("50")
    );
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut con, "expiry", "expired_keys").as_deref() == Some("50")
    }));
    // 50 expiries inside the 1.6 s sampling window: the next samples show a rate.
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut con, "expiry", "expired_per_sec")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|r| r > 0)
    }));
    assert!(wait_until(Duration::from_secs(10), || {
        let _: Option<String> = redis::cmd("GET").arg("x").query(&mut con).expect("GET");
        info_field(&mut con, "stats", "instantaneous_ops_per_sec")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v > 0)
    }));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

#[test]
fn metrics_endpoint_and_json_logs() {
    let srv = Server::start_with(&["--metrics-port", "0", "--log-format", "json"]);
    let mut con = srv.conn();
    for k in ["a", "b", "c"] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("v")
            .query(&mut con)
            .expect("SET");
    }
    let log = srv.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("metrics at http://"))
        .expect("the metrics address is logged");
    let at = line.find("http://").expect("url") + 7;
    let addr: String = line[at..].chars().take_while(|&c| c != '/').collect();
    for l in log.lines() {
        assert!(
            l.starts_with('{') && l.ends_with('}') && l.contains("\"level\":"),
            "not a JSON log line: {l}"
        );
    }
    let body = http_get(&addr, "/metrics");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("\nsessiond_keys 3\n"), "{body}");
    assert!(body.contains("# TYPE sessiond_commands_processed_total counter"));
    assert!(body.contains("sessiond_batch_duration_seconds_bucket{le=\"+Inf\"}"));
    let count: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("sessiond_batch_duration_seconds_count "))
        .and_then(|v| v.parse().ok())
        .expect("histogram count");
    assert!(count >= 3, "{count}");
    assert!(
        !body.contains("sessiond_raft_"),
        "a single node has no raft metrics"
    );
    let missing = http_get(&addr, "/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}
