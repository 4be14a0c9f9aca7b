//! The signer the suite runs beside the cluster: started, stopped and restarted by the tests, its keys rotated
//! and read with `irsa signer rotate` / `status` exactly as an operator would. The issuer reads its key set
//! from the socket itself: nothing here copies a key.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use irsa_e2e::process::Process;
use irsa_testing::wait::{Check, Wait};
use serde_json::Value;

/// The rotation policy, shortened so a rotation happens within a test: a new key is published 10 s before it
/// signs. The floor that rule enforces is the longest cache plus the margin: the issuer's JWKS is declared
/// cacheable for 1 s here, the apiserver re-fetches every second.
const POLICY: [&str; 3] = [
    "--pre-publish=10s",
    "--jwks-max-age=1",
    "--rotation-margin=1s",
];

/// The signer process and its files.
pub struct Signer {
    irsa: PathBuf,
    /// The key directory.
    pub keys: PathBuf,
    /// The socket kube-apiserver calls.
    pub socket: PathBuf,
    logs: PathBuf,
    process: Mutex<Option<Process>>,
}

impl Signer {
    /// A signer over `keys` (which must hold a key), not yet started.
    pub fn new(irsa: &Path, run: &Path) -> anyhow::Result<Signer> {
        let (keys, logs) = (run.join("keys"), run.join("logs"));
        std::fs::create_dir_all(&keys)?;
        std::fs::create_dir_all(&logs)?;
        Ok(Signer {
            irsa: irsa.to_path_buf(),
            keys,
            socket: run.join("signer.sock"),
            logs,
            process: Mutex::new(None),
        })
    }

    /// Starts `irsa signer serve` (its log `<name>.log`) and waits for its socket.
    pub async fn start(&self, name: &str) -> anyhow::Result<()> {
        let mut args = vec![
            "signer".to_string(),
            "serve".into(),
            format!("--socket={}", self.socket.display()),
            format!("--key-dir={}", self.keys.display()),
            "--refresh-hint-seconds=1".into(),
            "--reload-interval=500ms".into(),
            "--log-level=debug".into(),
        ];
        args.extend(POLICY.map(String::from));
        let mut process = Process::start(name, &self.irsa, &args, &[], &self.logs)?;
        let socket = &self.socket;
        let waited = Wait::up_to(Duration::from_secs(30))
            .every(Duration::from_millis(100))
            .until("the signer's socket", || {
                let (exists, exited) = (socket.exists(), process.exited());
                async move {
                    match (exists, exited) {
                        (true, _) => Check::Ready(()),
                        (false, true) => Check::NotYet("irsa signer serve exited".into()),
                        (false, false) => Check::NotYet("no socket yet".into()),
                    }
                }
            })
            .await;
        if let Err(err) = waited {
            anyhow::bail!("{err}:\n{}", process.log_tail(20));
        }
        *self.process.lock().unwrap() = Some(process);
        Ok(())
    }

    /// Stops the signer (SIGTERM: it removes its socket).
    pub fn stop(&self) {
        if let Some(mut process) = self.process.lock().unwrap().take() {
            process.stop();
        }
    }

    /// Runs `irsa signer <command> --key-dir=... <policy>`; its standard output.
    pub fn command(&self, command: &str, extra: &[&str]) -> anyhow::Result<String> {
        let output = std::process::Command::new(&self.irsa)
            .args(["signer", command])
            .arg(format!("--key-dir={}", self.keys.display()))
            .args(POLICY)
            .args(extra)
            .output()
            .with_context(|| format!("running irsa signer {command}"))?;
        ensure!(
            output.status.success(),
            "irsa signer {command} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    /// `irsa signer status --output json`.
    pub fn status(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(
            &self.command("status", &["--output=json"])?,
        )?)
    }

    /// The state `status` gives the key `kid`.
    pub fn state_of(&self, kid: &str) -> anyhow::Result<String> {
        let status = self.status()?;
        let key = status["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["kid"] == kid)
            .with_context(|| format!("no key {kid} in {status}"))?;
        Ok(key["state"].as_str().unwrap_or_default().to_string())
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        self.stop();
    }
}
