//! Process settings shared by the binaries: memory and the async runtime.

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`), before it
/// allocates much.
///
/// mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`), so the first touch of each
/// 2 MiB of new heap makes the kernel zero all of it in one page fault. The state machine's
/// tables grow by doubling (moved a few rows per insert, but into new memory), and on a
/// virtual machine whose memory is backed on first touch those faults came in bursts: at
/// 114,688 holds (a table of 2^17 slots growing) every node stalled for 100-130 ms at once,
/// and the stall doubled with each doubling of the table. With 4 KiB pages the same memory
/// is faulted in small steps spread over the inserts that touch it.
pub fn disable_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("could not turn transparent huge pages off: {e}");
    }
}

/// A multi-threaded tokio runtime with `threads` workers (default: one per CPU), as the node,
/// the API and the peers' services run on.
pub fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n);
    }
    b.enable_all().build()
}
