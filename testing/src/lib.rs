//! Test support shared by irsa's crates, so that each rule of a test fixture has one home:
//!
//! - [`pki`]: a throw-away certificate authority and the leaves it signs, for servers on 127.0.0.1;
//! - [`wait`]: polling for a condition until a deadline, failing with what was last seen.
//!
//! Only tests (and the e2e harness) depend on it; it is never published.

pub mod pki;
pub mod wait;

pub use pki::{Ca, LOOPBACK, Leaf, signing_key};
pub use wait::{Check, TimedOut, Wait, wait_until};
