//! The pieces that make a workflow deterministic and contained: the
//! journaled clocks, the seeded random source, the captured standard output
//! and the resource limiter.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rand_core::TryRng;
use tokio::io::AsyncWrite;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

use super::Limits;

/// The instance's time as the journal records it, in milliseconds since the
/// Unix epoch. It moves only when the instance resumes from a wait, to the
/// time the wait's result was recorded, so a replay reads the same values.
#[derive(Clone, Default)]
pub struct JournaledClock {
    now_ms: Arc<AtomicU64>,
    started_ms: u64,
}

impl JournaledClock {
    pub fn new(started_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(started_ms)),
            started_ms,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock to `ms`; it never goes back.
    pub fn advance_to(&self, ms: u64) {
        self.now_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

impl HostWallClock for JournaledClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.now_ms())
    }
}

impl HostMonotonicClock for JournaledClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    /// Nanoseconds since the instance started.
    fn now(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.started_ms)
            .saturating_mul(1_000_000)
    }
}

/// A SplitMix64 generator. The sequence is defined here rather than taken
/// from a library, so a host upgrade cannot change what a replay reads.
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl TryRng for SeededRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.next() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// Standard output or error of an instance, kept in memory until the runner
/// journals it. Bytes past the capacity are dropped and counted.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Mutex<CaptureBuffer>>,
}

struct CaptureBuffer {
    bytes: Vec<u8>,
    capacity: usize,
    dropped: usize,
}

impl Capture {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(CaptureBuffer {
                bytes: Vec::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    /// Takes the text written so far as lines, with a final line for
    /// anything dropped.
    pub fn take_lines(&self) -> Vec<String> {
        let mut buffer = self.inner.lock().expect("capture lock poisoned");
        let text = String::from_utf8_lossy(&buffer.bytes).into_owned();
        buffer.bytes.clear();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if buffer.dropped > 0 {
            lines.push(format!(
                "[{} bytes of output dropped: over the captured output limit of {} bytes \
                 between two wait states]",
                buffer.dropped, buffer.capacity
            ));
            buffer.dropped = 0;
        }
        lines
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut buffer = self.inner.lock().expect("capture lock poisoned");
        let room = buffer.capacity.saturating_sub(buffer.bytes.len());
        let kept = room.min(buf.len());
        buffer.bytes.extend_from_slice(&buf[..kept]);
        buffer.dropped += buf.len() - kept;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Caps an instance's linear memory, tables and instances, and remembers
/// which cap was hit so the failure can name it.
pub struct Limiter {
    /// Bytes of all the instance's linear memories together.
    memory_bytes: usize,
    /// Elements of each table.
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// Bytes granted so far, summed over every linear memory. Memories never
    /// shrink and live as long as the store, so the sum only grows.
    memory_used: usize,
    /// The message for the first cap that was hit.
    pub exceeded: Option<String>,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            table_elements: limits.table_elements,
            instances: limits.instances,
            tables: limits.instances,
            memories: limits.instances,
            memory_used: 0,
            exceeded: None,
        }
    }

    /// Records a hit cap, keeping the first one.
    fn exceed(&mut self, message: String) {
        self.exceeded.get_or_insert(message);
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Growth past the memory's own declared maximum fails in wasmtime
        // whatever the limiter returns, so it is not counted against the limit.
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        let total = self.memory_used.saturating_add(growth);
        if total > self.memory_bytes {
            self.exceed(format!(
                "memory limit exceeded: the instance asked for {total} bytes of linear memory \
                 in all, the limit is {} bytes",
                self.memory_bytes
            ));
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        if desired > self.table_elements {
            self.exceed(format!(
                "table limit exceeded: the instance asked for a table of {desired} elements, the \
                 limit is {}",
                self.table_elements
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_random_repeats() {
        let mut first = SeededRandom::new(7);
        let mut second = SeededRandom::new(7);
        let mut other = SeededRandom::new(8);
        let a: Vec<u64> = (0..4).map(|_| first.next()).collect();
        let b: Vec<u64> = (0..4).map(|_| second.next()).collect();
        let c: Vec<u64> = (0..4).map(|_| other.next()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn capture_drops_past_capacity() {
        let capture = Capture::new(8);
        let mut buffer = capture.inner.lock().unwrap();
        buffer.bytes.extend_from_slice(b"one\ntwo\n");
        buffer.dropped = 3;
        drop(buffer);
        assert_eq!(
            capture.take_lines(),
            vec![
                "one",
                "two",
                "[3 bytes of output dropped: over the captured output limit of 8 bytes between \
                 two wait states]"
            ]
        );
        assert!(capture.take_lines().is_empty());
    }

    fn limiter(memory_bytes: usize, table_elements: usize) -> Limiter {
        Limiter::new(&Limits {
            memory_bytes,
            table_elements,
            ..Limits::default()
        })
    }

    #[test]
    fn limiter_sums_all_memories() {
        let mut limiter = limiter(100, 10);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(60, 70, None).unwrap());
        assert!(!limiter.memory_growing(0, 40, None).unwrap());
        assert_eq!(
            limiter.exceeded.as_deref(),
            Some(
                "memory limit exceeded: the instance asked for 110 bytes of linear memory in \
                 all, the limit is 100 bytes"
            )
        );
        // The rejected growth is not counted, so a smaller one still fits.
        assert!(limiter.memory_growing(0, 30, None).unwrap());
    }

    #[test]
    fn limiter_skips_growth_past_declared_maximum() {
        let mut limiter = limiter(100, 10);
        assert!(!limiter.memory_growing(0, 50, Some(40)).unwrap());
        assert!(!limiter.table_growing(0, 5, Some(4)).unwrap());
        assert_eq!(limiter.exceeded, None);
        assert!(limiter.memory_growing(0, 100, None).unwrap());
    }

    #[test]
    fn limiter_caps_each_table() {
        let mut limiter = limiter(100, 10);
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(limiter.table_growing(0, 10, None).unwrap());
        assert!(!limiter.table_growing(10, 11, None).unwrap());
        assert_eq!(
            limiter.exceeded.as_deref(),
            Some(
                "table limit exceeded: the instance asked for a table of 11 elements, the limit \
                 is 10"
            )
        );
    }

    #[test]
    fn limiter_keeps_first_exceeded() {
        let mut limiter = limiter(100, 10);
        assert!(!limiter.table_growing(0, 11, None).unwrap());
        assert!(!limiter.memory_growing(0, 101, None).unwrap());
        let exceeded = limiter.exceeded.unwrap();
        assert!(exceeded.starts_with("table limit exceeded"), "{exceeded}");
    }

    #[test]
    fn limiter_counts_come_from_instance_limit() {
        let limiter = Limiter::new(&Limits {
            instances: 7,
            ..Limits::default()
        });
        assert_eq!(limiter.instances(), 7);
        assert_eq!(limiter.tables(), 7);
        assert_eq!(limiter.memories(), 7);
    }

    #[test]
    fn clock_never_goes_back() {
        let clock = JournaledClock::new(1_000);
        clock.advance_to(2_000);
        clock.advance_to(1_500);
        assert_eq!(clock.now_ms(), 2_000);
        assert_eq!(HostMonotonicClock::now(&clock), 1_000_000_000);
    }
}
