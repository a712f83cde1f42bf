//! Process memory figures for `INFO memory`, and the counting allocator behind
//! `used_memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

use crossbeam::utils::CachePadded;

/// The system allocator, counting the bytes it hands out, as Redis's zmalloc counts
/// `used_memory`. glibc's own figure (`mallinfo2`) walks every free chunk under the
/// allocator's lock: right after a million keys were freed, one `INFO` took 60 ms and
/// stalled its event loop. The count is kept in a few cache-padded cells, one per
/// thread (modulo), so threads do not contend on one cache line; a read sums them.
/// Installed by the `sessiond` binary.
pub struct CountingAlloc;

const CELLS: usize = 16;
static COUNTS: [CachePadded<AtomicIsize>; CELLS] =
    [const { CachePadded::new(AtomicIsize::new(0)) }; CELLS];
static NEXT_CELL: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static CELL: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn count(delta: isize) {
    let i = CELL
        .try_with(|c| {
            let mut i = c.get();
            if i == usize::MAX {
                i = NEXT_CELL.fetch_add(1, Ordering::Relaxed) % CELLS;
                c.set(i);
            }
            i
        })
        .unwrap_or(0);
    COUNTS[i].fetch_add(delta, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged and
// only adds bookkeeping on the side, so `System`'s guarantees carry over.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

impl CountingAlloc {
    /// Called by the binary at startup: from then on [`allocated`] reads the count.
    pub fn installed() {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// Bytes currently allocated (what Redis calls `used_memory`): the count kept by
/// [`CountingAlloc`] when the binary installed it, else the C allocator's figure.
pub fn allocated() -> u64 {
    if INSTALLED.load(Ordering::Relaxed) {
        let sum: isize = COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        return sum.max(0) as u64;
    }
    system_allocated()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn system_allocated() -> u64 {
    // SAFETY: mallinfo2 takes no arguments, returns a plain struct by value, and only
    // reads the allocator's own bookkeeping under its locks.
    let mi = unsafe { libc::mallinfo2() };
    (mi.uordblks + mi.hblkhd) as u64
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn system_allocated() -> u64 {
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
