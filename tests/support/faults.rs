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
