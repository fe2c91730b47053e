//! The engine's only view of time.
//!
//! The engine reads time to decide when a checkpoint is due, and waits only to pace a fuzzy
//! checkpoint's page writes ([`Clock::sleep`]). Loops that wait (the checkpointer, the
//! group-commit log sync) belong to the embedder's runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What [`Clock::sleep`] returns.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since an arbitrary origin fixed when the clock was made.
    fn now(&self) -> Duration;

    /// Waits `duration`. The default returns at once: a clock that cannot wait without a
    /// runtime (the engine spawns nothing and owns no runtime) only loses checkpoint pacing.
    /// A simulator or an async embedder gives it its runtime's sleep.
    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        let _ = duration;
        Box::pin(std::future::ready(()))
    }
}

/// Real monotonic time, for running on a real machine.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to: for unit tests, and for simulators that own time.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    pub fn set(&self, to: Duration) {
        self.nanos.store(to.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `duration` instead of waiting.
    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

impl<C: Clock> Clock for std::sync::Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn sleep(&self, duration: Duration) -> Sleep<'_> {
        (**self).sleep(duration)
    }
}
