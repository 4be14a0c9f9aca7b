//! kube-apiserver's external service-account token signer (KEP-740): `externaljwt.v1.ExternalJWTSigner` served
//! on a unix socket, so the apiserver signs with keys irsa holds and the issuer publishes.
//!
//! [`keys`] loads the private keys of a directory (their key IDs are the issuer's, computed by
//! `irsa_issuer::keys`) and [`key_file`] names and writes new ones; [`source`] is what the signer needs of any
//! key (file or remote); [`rotation`] is the pure state machine of a rotation (pre-published, active,
//! retiring, retired) and [`live`] the evaluated key set the RPCs read, kept current by [`reload`]; [`jwt`] is
//! the pure signing core (header, signing input, signature), [`service`] answers the three RPCs, [`metrics`]
//! counts them, [`socket`] creates the socket safely, and [`cmd`] is the command line.

pub mod cmd;
pub mod jwt;
pub mod key_file;
pub mod keys;
pub mod kms;
pub mod live;
pub mod metrics;
pub mod reload;
pub mod rotation;
pub mod service;
pub mod socket;
pub mod source;

/// The generated gRPC types, server and client of the KEP-740 API, from `irsa-externaljwt`.
pub use irsa_externaljwt::proto;
