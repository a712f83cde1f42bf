//! Faults for the cluster tests that kill and pause do not cover.
//!
//! - [`DiskStall`]: a busy disk. A small preload library, built here with the system's C
//!   compiler, makes every `fsync` and `fdatasync` of a process wait as long as a control
//!   file says (in milliseconds) before it runs; without the file they run at once. This
//!   is what another process's big synchronous write did to sessiond's fsyncs (stalls of
//!   up to 0.8 s), made repeatable and aimed at chosen nodes.
//!
//! A test that needs the compiler fails when it is missing; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::cluster::Cluster;
use super::Launch;

const SHIM_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void stall(void) {
    const char *path = getenv("SESSIOND_TEST_FSYNC_STALL");
    if (!path) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    long ms = 0;
    if (fscanf(f, "%ld", &ms) != 1) ms = 0;
    fclose(f);
    if (ms <= 0) return;
    if (ms > 10000) ms = 10000;
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    stall();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    stall();
    return real(fd);
}
"#;

/// The preload library, built once per test binary.
pub fn stall_shim() -> PathBuf {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-shim");
        std::fs::create_dir_all(&dir).expect("shim dir");
        let src = dir.join(format!("stall-{}.c", std::process::id()));
        let lib = dir.join(format!("libstall-{}.so", std::process::id()));
        std::fs::write(&src, SHIM_C).expect("write shim source");
        let out = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(&src)
            .arg("-ldl")
            .output()
            .expect("gcc must be installed to build the fsync-stall shim");
        assert!(
            out.status.success(),
            "building the fsync-stall shim failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lib
    })
    .clone()
}

/// One node's busy disk: while set, each of its fsyncs first waits `ms`.
pub struct DiskStall {
    file: PathBuf,
}

impl DiskStall {
    /// A stall control for a node, and how to launch the node under it.
    pub fn new(dir: &Path, name: &str) -> (DiskStall, Launch) {
        std::fs::create_dir_all(dir).expect("stall dir");
        let file = dir.join(format!("stall-{name}"));
        let _ = std::fs::remove_file(&file);
        let launch = Launch {
            env: vec![
                (
                    "LD_PRELOAD".into(),
                    stall_shim().to_string_lossy().into_owned(),
                ),
                (
                    "SESSIOND_TEST_FSYNC_STALL".into(),
                    file.to_string_lossy().into_owned(),
                ),
            ],
            ..Launch::default()
        };
        (DiskStall { file }, launch)
    }

    pub fn set(&self, ms: u64) {
        std::fs::write(&self.file, ms.to_string()).expect("write stall file");
    }

    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Drop for DiskStall {
    fn drop(&mut self) {
        self.clear();
    }
}

/// What a load of writers and readers through one node saw.
#[derive(Default)]
pub struct Load {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub first_error: std::sync::Mutex<Option<String>>,
    pub stop: AtomicBool,
}

/// `n` clients of node `node`, each with one request in flight: SET then GET of its
/// own keys (`{prefix}:{client}:{i}`).
pub fn run_load(
    c: &Cluster,
    node: usize,
    n: usize,
    prefix: &str,
    load: &Arc<Load>,
) -> Vec<std::thread::JoinHandle<()>> {
    run_load_sized(c, node, n, prefix, 0, load)
}

/// [`run_load`] with values of at least `bytes` bytes (the number, zero-padded).
pub fn run_load_sized(
    c: &Cluster,
    node: usize,
    n: usize,
    prefix: &str,
    bytes: usize,
    load: &Arc<Load>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|t| {
            let client = c.node(node).client();
            let load = load.clone();
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                let mut con = client.get_connection().expect("connect");
                con.set_read_timeout(Some(std::time::Duration::from_secs(15)))
                    .expect("timeout");
                let mut i = 0u64;
                while !load.stop.load(Ordering::Relaxed) && i < 1_000_000 {
                    let key = format!("{prefix}:{t}:{}", i % 500);
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(&key)
                        .arg(format!("{i:0>bytes$}"))
                        .query(&mut con);
                    let r = r.and_then(|()| {
                        let v: Option<u64> = redis::cmd("GET").arg(&key).query(&mut con)?;
                        assert_eq!(v, Some(i), "a read after an acknowledged write");
                        Ok(())
                    });
                    match r {
                        Ok(()) => {
                            load.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            load.errors.fetch_add(1, Ordering::Relaxed);
                            load.first_error
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get_or_insert(e.to_string());
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

/// Keep a fault in place for `d`. This paces a fault schedule (a link cut for 300 ms);
/// it is not a wait for a condition, which tests do with `wait_until`.
pub fn hold(d: std::time::Duration) {
    std::thread::sleep(d);
}

/// Every key of database 0 and its string value as node `i` holds them (SCAN and GET run
/// on the node itself once it has caught up with the leader).
pub fn contents(c: &Cluster, i: usize) -> std::collections::BTreeMap<String, String> {
    let mut con = c.node(i).conn();
    let mut out = std::collections::BTreeMap::new();
    let mut cursor = 0u64;
    for _ in 0..1_000_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)
            .expect("SCAN");
        if !keys.is_empty() {
            let vals: Vec<Option<String>> =
                redis::cmd("MGET").arg(&keys).query(&mut con).expect("MGET");
            for (k, v) in keys.into_iter().zip(vals) {
                if let Some(v) = v {
                    out.insert(k, v);
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    out
}

/// Wait (bounded) until every node has applied as far as the leader has committed,
/// then require that all hold the same keys and values. A difference is looked at again
/// (within the bound) after the nodes catch up once more: a write or an eviction
/// proposed while the contents were read may land on one node before the other.
pub fn assert_replicas_equal(c: &Cluster, leader: usize) {
    let up = c.up();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ok = super::wait_until(left, || {
            let commit = c.raft_index(leader, "raft_commit_index");
            up.iter()
                .all(|&i| c.raft_index(i, "raft_applied_index") >= commit)
        });
        assert!(ok, "replicas did not catch up\n{}", c.logs());
        let Some(diff) = replica_difference(c, &up) else {
            return;
        };
        if attempts >= 3 || std::time::Instant::now() >= deadline {
            panic!("{diff}");
        }
    }
}

/// How the first of `up` and another differ, if they do (keys, and value lengths).
fn replica_difference(c: &Cluster, up: &[usize]) -> Option<String> {
    let first = contents(c, up[0]);
    for &i in &up[1..] {
        let other = contents(c, i);
        if other != first {
            let show = |a: &std::collections::BTreeMap<String, String>,
                        b: &std::collections::BTreeMap<String, String>| {
                a.iter()
                    .filter(|(k, v)| b.get(*k) != Some(v))
                    .take(5)
                    .map(|(k, v)| format!("{k} ({} bytes)", v.len()))
                    .collect::<Vec<_>>()
            };
            return Some(format!(
                "node {} and node {} differ ({} and {} keys): {:?} / {:?}",
                up[0] + 1,
                i + 1,
                first.len(),
                other.len(),
                show(&first, &other),
                show(&other, &first)
            ));
        }
    }
    None
}

/// A small tmpfs mounted for one node's data: a disk that fills up. Unmounted on drop.
pub struct SmallDisk {
    pub path: std::path::PathBuf,
}

impl SmallDisk {
    /// Mount `mb` megabytes at a new folder under `parent` (needs root; fails without).
    pub fn mount(parent: &std::path::Path, mb: u64) -> SmallDisk {
        let path = parent.join(format!("small-disk-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("mount must be installed");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }

    /// Give it room: grow the tmpfs to `mb` megabytes.
    pub fn grow(&self, mb: u64) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={mb}m")])
            .arg(&self.path)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        let _ = std::fs::remove_dir(&self.path);
    }
}
