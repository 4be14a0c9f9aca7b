//! Where the peer binaries are: the cache `hack/install-peers.sh` fills, or paths given in the environment.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Paths of every program the harness starts.
#[derive(Clone, Debug)]
pub struct Peers {
    /// etcd.
    pub etcd: PathBuf,
    /// kube-apiserver.
    pub kube_apiserver: PathBuf,
    /// MinIO.
    pub minio: PathBuf,
    /// The Python venv with moto, the AWS CLI and boto3.
    pub venv: PathBuf,
    /// The `irsa` binary under test.
    pub irsa: PathBuf,
    /// kubectl.
    pub kubectl: PathBuf,
    /// sdk-probe: an unmodified aws-sdk-go-v2 program (hack/node/sdk-probe).
    pub sdk_probe: PathBuf,
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e is inside the workspace")
        .to_path_buf()
}

impl Peers {
    /// Asks `hack/install-peers.sh paths` where the pinned peers live (it installs nothing in that mode), lets
    /// `IRSA_ETCD`, `IRSA_KUBE_APISERVER`, `IRSA_MINIO`, `IRSA_PYTHON_VENV`, `IRSA_BIN` override, and checks
    /// that each exists.
    pub fn locate() -> anyhow::Result<Self> {
        let root = workspace_root();
        let listed = Listed::read()?;
        let path = |key: &str| listed.path(key);
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let irsa =
            std::env::var_os("IRSA_BIN").map_or_else(|| target.join("debug/irsa"), PathBuf::from);
        let peers = Self {
            etcd: path("IRSA_ETCD")?,
            kube_apiserver: path("IRSA_KUBE_APISERVER")?,
            minio: path("IRSA_MINIO")?,
            venv: path("IRSA_PYTHON_VENV")?,
            irsa,
            kubectl: std::env::var_os("KUBECTL")
                .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from),
            sdk_probe: path("IRSA_NODE_PROGRAMS")?.join("sdk-probe"),
        };
        for (what, file) in [
            ("etcd", &peers.etcd),
            ("kube-apiserver", &peers.kube_apiserver),
            ("minio", &peers.minio),
            ("moto_server", &peers.venv.join("bin/moto_server")),
            ("aws", &peers.venv.join("bin/aws")),
            ("sdk-probe", &peers.sdk_probe),
        ] {
            if !file.exists() {
                bail!(
                    "{what} not found at {}: run `make peers` (hack/install-peers.sh) first",
                    file.display()
                );
            }
        }
        if !peers.irsa.exists() {
            bail!(
                "the irsa binary is not at {}: run `cargo build -p irsa` (or set IRSA_BIN)",
                peers.irsa.display()
            );
        }
        Ok(peers)
    }

    /// A program of the Python venv (`aws`, `python`, `moto_server`).
    pub fn venv_bin(&self, name: &str) -> PathBuf {
        self.venv.join("bin").join(name)
    }
}

/// What `hack/install-peers.sh paths` prints: `KEY=path` lines, each overridable by the environment variable
/// of the same name.
pub struct Listed(String);

impl Listed {
    /// Runs `hack/install-peers.sh paths` (it installs nothing in that mode).
    pub fn read() -> anyhow::Result<Self> {
        let script = workspace_root().join("hack/install-peers.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg("paths")
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        Ok(Self(String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// The path of `key`: the environment's value, or the script's.
    pub fn path(&self, key: &str) -> anyhow::Result<PathBuf> {
        if let Some(value) = std::env::var_os(key) {
            return Ok(PathBuf::from(value));
        }
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('=').map(PathBuf::from))
            .with_context(|| format!("hack/install-peers.sh paths did not print {key}"))
    }
}
