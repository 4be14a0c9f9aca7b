//! The `irsa signer` commands.

pub mod serve;
