//! The CPU priority of a node's background threads (snapshot builds, replica digests): below
//! the requests', so a build never delays a client's write for long.

/// Nice value of the threads that build snapshots and digests (requests run at 0).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to `nice` (Linux: per thread); a failure is
/// logged and the work goes on at the priority it has.
pub fn lower_priority(nice: i32) {
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice) {
        tracing::warn!(error = %e, nice, "could not lower the thread's CPU priority");
    }
}
