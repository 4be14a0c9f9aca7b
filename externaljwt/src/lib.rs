//! kube-apiserver's external JWT signer API (KEP-740, `k8s.io/externaljwt` v0.34.4): the types, server and
//! client generated from `proto/api.proto`, and a client that dials the unix socket the API is served on.
//!
//! `irsa signer serve` implements the server; kube-apiserver and `irsa issuer --signer-socket` are its
//! clients. One crate for the protocol, so both sides compile the same `.proto` once.

pub mod client;

pub use client::{ConnectError, connect, connect_lazy};

/// A client of the signer over its socket, as [`connect`] and [`connect_lazy`] make it.
pub type Client =
    proto::external_jwt_signer_client::ExternalJwtSignerClient<tonic::transport::Channel>;

/// The generated gRPC types, server and client of `proto/api.proto` (package `v1`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("v1");
}
