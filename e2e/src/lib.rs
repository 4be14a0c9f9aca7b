//! The end-to-end harness: real etcd, kube-apiserver, MinIO (as the STS), moto (as IAM) and irsa's own issuer
//! and webhook, started as host processes on free loopback ports in one temp dir, and stopped at the end even
//! when a test fails or panics. Logs of every process stay in the temp dir, which is kept on failure.
//!
//! The node suite adds a real node to such a cluster ([`node`]): containerd, the kubelet, the controller
//! manager and the scheduler, with irsa installed from its image as its manifests say.

pub mod cluster;
pub mod fault_proxy;
pub mod node;
pub mod oci;
pub mod peers;
pub mod process;
pub mod runner;
pub mod scenario;
