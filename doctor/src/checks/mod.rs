//! The checks, one file per link of the chain, each a pure function from recorded inputs to a
//! [`Finding`](crate::finding::Finding): no I/O, no clock (the time is an input).

pub mod clock;
pub mod cluster;
pub mod discovery;
pub mod iam;
pub mod issuers;
pub mod sdk;
pub mod sts;
pub mod tls;
pub mod webhook;

/// A document as it was fetched: what the checks need of an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fetched {
    /// The URL asked.
    pub url: String,
    /// The status code.
    pub status: u16,
    /// The `Location` header, for redirects.
    pub location: Option<String>,
    /// The `Cache-Control` header.
    pub cache_control: Option<String>,
    /// How long the answer took, in milliseconds.
    pub millis: u64,
    /// The body.
    pub body: Vec<u8>,
}

/// Something that was gathered, or why it could not be.
pub type Gathered<T> = Result<T, String>;

/// `kubectl` arguments naming the ServiceAccount, for fixes.
pub(crate) fn sa_ref(namespace: &str, service_account: &str) -> String {
    format!("serviceaccount {service_account} -n {namespace}")
}
