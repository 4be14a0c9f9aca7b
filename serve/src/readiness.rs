//! The readiness flag reported on `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the process should receive traffic. Cheap to clone; all clones share one flag.
///
/// Starts unready: a server becomes ready only when what it serves is complete (the webhook's
/// service-account cache has applied its first list; the issuer has rendered its documents).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A new flag, initially not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Reads the flag.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
