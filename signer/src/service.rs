//! The three RPCs of `ExternalJWTSigner`, answered from the [`Live`] key set: `Sign` with the active key,
//! `FetchKeys` with the published ones.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::jwt;
use crate::live::Live;
use crate::metrics::Metrics;
use crate::proto::external_jwt_signer_server::{ExternalJwtSigner, ExternalJwtSignerServer};
use crate::proto::{
    FetchKeysRequest, FetchKeysResponse, Key, MetadataRequest, MetadataResponse, SignJwtRequest,
    SignJwtResponse,
};

/// The smallest `max_token_expiration_seconds` kube-apiserver accepts.
pub const MIN_MAX_TOKEN_EXPIRATION_SECONDS: i64 = 600;

/// The signer: keys plus what `Metadata` and `FetchKeys` tell the apiserver.
#[derive(Debug, Clone)]
pub struct Signer {
    keys: Arc<Live>,
    metrics: Metrics,
    max_token_expiration_seconds: i64,
    refresh_hint_seconds: i64,
}

impl Signer {
    /// A signer over `keys`. `max_token_expiration_seconds` (at least 600) caps the tokens the apiserver
    /// issues; `refresh_hint_seconds` (at least 1) is how often it re-fetches the public keys.
    pub fn new(
        keys: Arc<Live>,
        max_token_expiration_seconds: i64,
        refresh_hint_seconds: i64,
    ) -> Signer {
        Signer {
            keys,
            metrics: Metrics::default(),
            // The apiserver exits on values under 600 or a non-positive hint: clamp rather than break it.
            max_token_expiration_seconds: max_token_expiration_seconds
                .max(MIN_MAX_TOKEN_EXPIRATION_SECONDS),
            refresh_hint_seconds: refresh_hint_seconds.max(1),
        }
    }

    /// Records signatures in `metrics` (registered ones) instead of unregistered ones.
    pub fn with_metrics(mut self, metrics: Metrics) -> Signer {
        self.metrics = metrics;
        self
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> ExternalJwtSignerServer<Signer> {
        ExternalJwtSignerServer::new(self)
    }
}

#[tonic::async_trait]
impl ExternalJwtSigner for Signer {
    async fn sign(
        &self,
        request: Request<SignJwtRequest>,
    ) -> Result<Response<SignJwtResponse>, Status> {
        let claims = &request.get_ref().claims;
        jwt::check_claims(claims).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let snapshot = self.keys.current();
        let key = snapshot.signing();
        let header = jwt::header(key.algorithm(), key.kid());
        let started = Instant::now();
        let signed = key
            .sign(jwt::signing_input(&header, claims).as_bytes())
            .await;
        self.metrics
            .signed(key.kid(), started.elapsed(), signed.is_ok());
        match signed {
            Ok(signature) => {
                tracing::debug!(kid = key.kid(), "signed a token");
                Ok(Response::new(SignJwtResponse {
                    header,
                    signature: jwt::encode_signature(&signature),
                }))
            }
            Err(e) => {
                tracing::error!(error = %e, "signing failed");
                Err(Status::internal(e.to_string()))
            }
        }
    }

    async fn fetch_keys(
        &self,
        _request: Request<FetchKeysRequest>,
    ) -> Result<Response<FetchKeysResponse>, Status> {
        let snapshot = self.keys.current();
        let keys = snapshot
            .published()
            .map(|k| Key {
                key_id: k.kid().to_string(),
                key: k.spki_der().to_vec(),
                exclude_from_oidc_discovery: false,
            })
            .collect();
        Ok(Response::new(FetchKeysResponse {
            keys,
            data_timestamp: Some(snapshot.data_timestamp().into()),
            refresh_hint_seconds: self.refresh_hint_seconds,
        }))
    }

    async fn metadata(
        &self,
        _request: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        Ok(Response::new(MetadataResponse {
            max_token_expiration_seconds: self.max_token_expiration_seconds,
        }))
    }
}
