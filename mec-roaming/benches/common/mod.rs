//! On-CPU time of the current thread, so that figures taken on a loaded machine leave out the
//! time the thread waited for a CPU.

use std::time::Instant;

/// Nanoseconds the current thread has run on a CPU (Linux `/proc/thread-self/schedstat`,
/// first field), or wall-clock nanoseconds since `start` where that file is missing.
pub(crate) fn cpu_ns(start: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u128>().ok())
        })
        .unwrap_or_else(|| start.elapsed().as_nanos())
}
