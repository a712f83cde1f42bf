//! Process memory figures for `INFO memory`.

/// Bytes currently allocated through the C allocator (what Redis calls `used_memory`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn allocated() -> u64 {
    // SAFETY: mallinfo2 takes no arguments, returns a plain struct by value, and only
    // reads the allocator's own bookkeeping under its locks.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd) as u64
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn allocated() -> u64 {
    rss()
}

/// Tune glibc malloc for this workload: no fastbins. With fastbins, every free that
/// coalesces into a large block (as when a million sessions expire together) first
/// consolidates all fastbins under the allocator lock, and clients stalled up to ~80 ms
/// behind it; without them the worst stall measured was 9 ms, and small allocations
/// still come from the per-thread tcache. Call once at startup.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune_allocator() {
    // SAFETY: mallopt only changes an allocator parameter; M_MXFAST 0 is a documented value.
    unsafe {
        libc::mallopt(libc::M_MXFAST, 0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Give free heap memory back to the operating system. glibc keeps freed memory for
/// reuse; after a flush, returning it makes RSS follow the data down. (Not called after
/// expiry bursts: it holds the allocator lock long enough to stall clients.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists under its locks;
    // the argument is the padding to keep, 0 here.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

/// Resident set size in bytes, from /proc/self/statm (0 where that is unavailable).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// User and system CPU seconds of this process, from /proc/self/stat.
pub fn cpu_seconds() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

/// Total physical memory, from /proc/meminfo.
pub fn total_system() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Redis's human-readable byte figure: `1.50M`, `512B`.
pub fn human(n: u64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if n < 1024 * 1024 {
        format!("{:.2}K", f / 1024.0)
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.2}M", f / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", f / (1024.0 * 1024.0 * 1024.0))
    }
}
