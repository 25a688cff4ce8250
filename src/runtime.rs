//! The async runtime a command runs on, by its `--threads` switch.

/// One worker thread per core by default; `Some(1)` runs everything on the
/// calling thread, which spares every wake-up a hand-off between threads
/// (on a small machine, a third of a load generator's CPU per call);
/// `Some(n)` runs `n` workers.
pub fn build(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(usize::from(n.max(1)));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}
