//! The log's writer: formatted lines are appended to a shared buffer and a dedicated thread
//! writes what has gathered to stderr in one go, every [`FLUSH_EVERY`] (sooner once
//! [`WAKE_AT`] bytes wait), and everything at shutdown.
//!
//! A busy webhook logs a line per decided call. Handing each line to a writer thread through a
//! channel woke that thread for nearly every line (it drains a line faster than the next one
//! comes), and on a 2-core machine those wake-ups and context switches cost more than the
//! formatting. Here a line costs a short lock and a copy; the thread wakes on its clock.
//!
//! Nothing is dropped: when [`MAX_QUEUED`] bytes wait (stderr blocked, say), a caller waits for
//! the writer rather than losing its line.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Wake the writer early once this much waits.
const WAKE_AT: usize = 256 * 1024;
/// Callers wait for the writer above this.
const MAX_QUEUED: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits on this for lines (or its clock).
    ready: Condvar,
    /// Callers over [`MAX_QUEUED`] wait on this for the writer to take the buffer.
    taken: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a valid byte buffer: keep logging.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` for tracing-subscriber's fmt layer (cheap to clone).
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
    /// No writer thread (it could not be started): lines go straight to stderr.
    direct: bool,
}

/// Stops the writer thread after writing what is buffered (dropped at the end of `main`).
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Start the writer thread over `out`.
pub fn start<W: Write + Send + 'static>(out: W) -> (BatchedWriter, WriterGuard) {
    let shared = Arc::new(Shared::default());
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("fairline-log".into())
        .spawn(move || write_loop(&for_thread, out))
        .ok();
    let writer = BatchedWriter {
        shared: shared.clone(),
        direct: thread.is_none(),
    };
    (writer, WriterGuard { shared, thread })
}

fn write_loop<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::new();
    loop {
        let (chunk, closed) = {
            let mut q = shared.lock();
            if !q.closed && q.lines.len() < WAKE_AT {
                q = shared
                    .ready
                    .wait_timeout(q, FLUSH_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            spare.clear();
            (std::mem::replace(&mut q.lines, spare), q.closed)
        };
        shared.taken.notify_all();
        if !chunk.is_empty() {
            // Nowhere to report a failed write of the log itself; the next chunk tries again.
            let _ = out.write_all(&chunk);
            let _ = out.flush();
        }
        spare = chunk;
        if closed && shared.lock().lines.is_empty() {
            return;
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One formatted line (the fmt layer writes each event with one `write_all`).
pub struct Line<'a> {
    shared: &'a Shared,
    direct: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            direct: self.direct,
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.direct {
            return std::io::stderr().write(buf);
        }
        let mut q = self.shared.lock();
        if q.closed {
            drop(q);
            return std::io::stderr().write(buf);
        }
        while q.lines.len() >= MAX_QUEUED && !q.closed {
            self.shared.ready.notify_one();
            q = self
                .shared
                .taken
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
        q.lines.extend_from_slice(buf);
        if q.lines.len() >= WAKE_AT {
            self.shared.ready.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    /// A `Write` that keeps what it is given, and how many writes it took.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_in_order_in_few_writes_and_all_of_them_at_shutdown() {
        let sink = Sink::default();
        let (writer, guard) = start(sink.clone());
        for n in 0..10_000 {
            writer
                .make_writer()
                .write_all(format!("line {n}\n").as_bytes())
                .unwrap();
        }
        drop(guard);
        let (bytes, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(n, l)| *l == format!("line {n}")));
        assert!(writes < 100, "{writes} writes for 10,000 lines");
    }

    #[test]
    fn a_quiet_line_is_written_within_the_flush_interval() {
        let sink = Sink::default();
        let (writer, _guard) = start(sink.clone());
        writer.make_writer().write_all(b"alone\n").unwrap();
        let deadline = std::time::Instant::now() + FLUSH_EVERY * 20;
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.0.lock().unwrap().0, b"alone\n");
    }

    #[test]
    fn writers_from_many_threads_lose_nothing_when_the_buffer_fills() {
        /// A slow output: the buffer reaches its limit and callers wait.
        #[derive(Clone, Default)]
        struct Slow(Sink);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(2));
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let slow = Slow::default();
        let (writer, guard) = start(slow.clone());
        let line = vec![b'x'; 4095];
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let writer = writer.clone();
                let mut line = line.clone();
                line.push(b'\n');
                std::thread::spawn(move || {
                    for _ in 0..1_500 {
                        writer.make_writer().write_all(&line).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let bytes = slow.0 .0.lock().unwrap().0.clone();
        assert_eq!(bytes.len(), 4 * 1_500 * 4096);
        assert!(bytes
            .chunks(4096)
            .all(|l| l[..4095].iter().all(|b| *b == b'x')));
    }
}
