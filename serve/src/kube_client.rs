//! The Kubernetes client every irsa command builds the same way: `--kubeconfig` when given, else what kube's
//! `Config::infer` finds: `$KUBECONFIG` / `~/.kube/config` first, then the in-cluster configuration.

use std::path::{Path, PathBuf};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeClientError {
    /// `--kubeconfig` could not be read or parsed.
    #[error("cannot read kubeconfig {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: kube::config::KubeconfigError,
    },
    /// `--kubeconfig` was read but does not describe a usable cluster and user.
    #[error("invalid kubeconfig {path}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: kube::config::KubeconfigError,
    },
    /// Not in a cluster and no default kubeconfig.
    #[error(
        "no Kubernetes configuration: not in a cluster and no kubeconfig (use --kubeconfig): {0}"
    )]
    NoConfiguration(#[source] kube::config::InferConfigError),
    /// The configuration was found but the client could not be built (a bad certificate, say).
    #[error("cannot build a Kubernetes client: {0}")]
    Build(#[source] kube::Error),
}

/// A client from `kubeconfig`, or else the inferred configuration (`$KUBECONFIG` / `~/.kube/config`, then
/// in-cluster).
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, KubeClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                KubeClientError::Read {
                    path: path.to_owned(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|source| KubeClientError::Invalid {
                    path: path.to_owned(),
                    source,
                })?
        }
        None => kube::Config::infer()
            .await
            .map_err(KubeClientError::NoConfiguration)?,
    };
    kube::Client::try_from(config).map_err(KubeClientError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn error_of(kubeconfig: &Path) -> KubeClientError {
        match client(Some(kubeconfig)).await {
            Ok(_) => panic!("{} must be refused", kubeconfig.display()),
            Err(err) => err,
        }
    }

    #[tokio::test]
    async fn a_missing_or_broken_kubeconfig_is_one_clear_error() {
        let err = error_of(Path::new("/nonexistent/kubeconfig")).await;
        assert!(
            err.to_string()
                .contains("cannot read kubeconfig /nonexistent/kubeconfig"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("kubeconfig");
        std::fs::write(
            &broken,
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
        )
        .unwrap();
        let err = error_of(&broken).await;
        assert!(matches!(err, KubeClientError::Invalid { .. }), "{err}");
    }
}
