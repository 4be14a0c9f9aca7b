//! The three RPCs of `ExternalJWTSigner`, answered from a loaded [`KeySet`].

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::jwt::{self, SignError};
use crate::keys::KeySet;
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
    keys: Arc<KeySet>,
    max_token_expiration_seconds: i64,
    refresh_hint_seconds: i64,
}

impl Signer {
    /// A signer over `keys`. `max_token_expiration_seconds` (at least 600) caps the tokens the apiserver
    /// issues; `refresh_hint_seconds` (at least 1) is how often it re-fetches the public keys.
    pub fn new(
        keys: Arc<KeySet>,
        max_token_expiration_seconds: i64,
        refresh_hint_seconds: i64,
    ) -> Signer {
        Signer {
            keys,
            // The apiserver exits on values under 600 or a non-positive hint: clamp rather than break it.
            max_token_expiration_seconds: max_token_expiration_seconds
                .max(MIN_MAX_TOKEN_EXPIRATION_SECONDS),
            refresh_hint_seconds: refresh_hint_seconds.max(1),
        }
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
        let key = self.keys.active();
        match jwt::sign(key, &request.get_ref().claims) {
            Ok(signed) => {
                tracing::debug!(kid = key.kid(), "signed a token");
                Ok(Response::new(SignJwtResponse {
                    header: signed.header,
                    signature: signed.signature,
                }))
            }
            Err(SignError::Claims(e)) => Err(Status::invalid_argument(e.to_string())),
            Err(e @ SignError::Key(_)) => {
                tracing::error!(error = %e, "signing failed");
                Err(Status::internal(e.to_string()))
            }
        }
    }

    async fn fetch_keys(
        &self,
        _request: Request<FetchKeysRequest>,
    ) -> Result<Response<FetchKeysResponse>, Status> {
        let keys = self
            .keys
            .keys()
            .iter()
            .map(|k| Key {
                key_id: k.kid().to_string(),
                key: k.spki_der().to_vec(),
                exclude_from_oidc_discovery: false,
            })
            .collect();
        Ok(Response::new(FetchKeysResponse {
            keys,
            data_timestamp: Some(self.keys.loaded_at().into()),
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
