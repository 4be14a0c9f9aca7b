//! One local "cluster": etcd, kube-apiserver, irsa's issuer and webhook, MinIO as the STS, moto as IAM.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use irsa_testing::pki::{Ca, LOOPBACK, signing_key};
use irsa_testing::wait::{Check, Wait};

use crate::peers::Peers;
use crate::process::{Process, free_port};

/// The token audience the webhook projects and MinIO accepts as its client ID.
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// The region MinIO runs in.
pub const REGION: &str = "us-east-1";
/// The Service ClusterIP range. No kube-proxy runs, so these addresses lead nowhere local: the node suite
/// rejects traffic to them (see `crate::node`).
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The bucket created at start, which the pods' credentials must list.
pub const BUCKET: &str = "irsa-e2e";
/// The role-ARN pattern the webhook runs with: the AWS form and MinIO's.
pub const ROLE_ARN_PATTERN: &str = r"arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+|arn:minio:iam:[a-z0-9-]*::role/[A-Za-z0-9_-]+";
const ADMIN_TOKEN: &str = "irsa-e2e-admin-token";
const MINIO_USER: &str = "irsa-root";
const MINIO_PASSWORD: &str = "irsa-root-secret";

/// Where the cluster's servers listen, and whether irsa's webhook runs on the host.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The address kube-apiserver, the issuer and MinIO listen on and their clients dial: loopback for the
    /// host-process suite; the node's own address for the node suite, since pods cannot reach the host's
    /// 127.0.0.1.
    pub address: Ipv4Addr,
    /// Fixed ports for kube-apiserver, the issuer and MinIO (the node suite's installed manifests name them);
    /// `None`: free ports.
    pub fixed_ports: Option<FixedPorts>,
    /// Runs irsa's webhook as a host process registered by URL; `false` leaves the webhook to be installed in
    /// the cluster (the node suite installs the shipped manifests).
    pub host_webhook: bool,
    /// kube-apiserver flags added to the harness's own.
    pub apiserver_args: Vec<String>,
    /// An external signer's socket: kube-apiserver runs with `--service-account-signing-endpoint` and none of
    /// the key-file flags (they are mutually exclusive); `None`: the harness's own key files.
    pub signing_endpoint: Option<PathBuf>,
    /// The issuer's key source: the external signer's socket (`irsa issuer serve --signer-socket`, no key
    /// file), so its JWKS follows the signer's rotations; the signer must be serving before the cluster
    /// starts. `None`: the harness's key file, [`Cluster::issuer_keys`].
    pub issuer_signer_socket: Option<PathBuf>,
}

/// The ports of [`Layout::fixed_ports`].
#[derive(Clone, Copy, Debug)]
pub struct FixedPorts {
    /// kube-apiserver's secure port.
    pub apiserver: u16,
    /// The issuer's HTTPS port (in the apiserver's `--service-account-issuer`).
    pub issuer: u16,
    /// MinIO's S3 and STS port.
    pub minio: u16,
}

impl Default for Layout {
    /// Everything on 127.0.0.1 on free ports, the webhook a host process: the e2e suite and the demo.
    fn default() -> Self {
        Self {
            address: Ipv4Addr::LOCALHOST,
            fixed_ports: None,
            host_webhook: true,
            apiserver_args: Vec::new(),
            signing_endpoint: None,
            issuer_signer_socket: None,
        }
    }
}

/// The running peers and everything a test needs to reach them.
pub struct Cluster {
    /// The run's directory: certificates, keys, data, `logs/`.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Program paths.
    pub peers: Peers,
    /// The CA of every local serving certificate.
    pub ca: Ca,
    /// `https://<address>:<port>` of kube-apiserver.
    pub apiserver_url: String,
    /// A kubeconfig with the admin token.
    pub kubeconfig: PathBuf,
    /// The issuer URL the apiserver signs into tokens.
    pub issuer_url: String,
    /// The file of public keys the issuer serves (appended to on rotation); unread when the issuer reads a
    /// signer ([`Layout::issuer_signer_socket`]).
    pub issuer_keys: PathBuf,
    /// The issuer's admin base URL (`/readyz`, `/metrics`).
    pub issuer_admin: String,
    /// `https://127.0.0.1:<port>/mutate` of the webhook.
    pub webhook_url: String,
    /// The webhook's admin base URL.
    pub webhook_admin: String,
    /// MinIO's S3 + STS endpoint.
    pub minio_url: String,
    /// The role ARN MinIO admits for web identities.
    pub minio_role_arn: String,
    /// moto's endpoint (IAM and STS emulation).
    pub moto_url: String,
    /// Service-account signing keys: (private, public) paths; the last one signs.
    signing_keys: Mutex<Vec<(PathBuf, PathBuf)>>,
    etcd_url: String,
    apiserver_port: u16,
    layout: Layout,
    processes: Mutex<Vec<Process>>,
}

fn write(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

impl Cluster {
    /// Starts everything on loopback and waits until each peer is ready.
    pub async fn start(peers: Peers) -> anyhow::Result<Self> {
        Self::start_with(peers, Layout::default()).await
    }

    /// Starts everything where `layout` says and waits until each peer is ready.
    pub async fn start_with(peers: Peers, layout: Layout) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new().prefix("irsa-e2e-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)?;
        let ca = Ca::new("irsa-e2e-ca");
        write(&dir.join("ca.crt"), ca.pem())?;
        let address = layout.address;
        let node_address = address.to_string();
        let mut names = LOOPBACK.to_vec();
        if !address.is_loopback() {
            names.push(&node_address);
        }
        let serving = ca.leaf(&names);
        write(&dir.join("serving.crt"), &serving.chain_pem)?;
        write(&dir.join("serving.key"), &serving.key_pem)?;
        let (private, public) = signing_key();
        let (sa_key, sa_pub) = (dir.join("sa-1.key"), dir.join("sa-1.pub"));
        write(&sa_key, private)?;
        write(&sa_pub, &public)?;
        let issuer_keys = dir.join("issuer-keys.pem");
        write(&issuer_keys, &public)?;

        let [
            etcd_port,
            etcd_peer_port,
            issuer_port,
            issuer_admin_port,
            apiserver_port,
            webhook_port,
            webhook_admin_port,
            minio_port,
            minio_console_port,
            moto_port,
        ] = std::array::from_fn(|_| free_port());
        let (apiserver_port, issuer_port, minio_port) = match layout.fixed_ports {
            Some(fixed) => (fixed.apiserver, fixed.issuer, fixed.minio),
            None => (apiserver_port, issuer_port, minio_port),
        };
        let issuer_url = format!("https://{address}:{issuer_port}");
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let cluster = Self {
            dir: dir.clone(),
            _tmp: Some(tmp),
            peers,
            ca,
            apiserver_url: format!("https://{address}:{apiserver_port}"),
            kubeconfig: dir.join("kubeconfig"),
            issuer_url: issuer_url.clone(),
            issuer_keys: issuer_keys.clone(),
            issuer_admin: format!("http://127.0.0.1:{issuer_admin_port}"),
            webhook_url: format!("https://127.0.0.1:{webhook_port}/mutate"),
            webhook_admin: format!("http://127.0.0.1:{webhook_admin_port}"),
            minio_url: format!("http://{address}:{minio_port}"),
            minio_role_arn: minio_role_arn(AUDIENCE),
            moto_url: format!("http://127.0.0.1:{moto_port}"),
            signing_keys: Mutex::new(vec![(sa_key, sa_pub)]),
            etcd_url: etcd_url.clone(),
            apiserver_port,
            layout,
            processes: Mutex::new(Vec::new()),
        };
        cluster.write_kubeconfig()?;
        let p = &cluster.peers;
        let s = |v: &str| v.to_string();

        eprintln!(
            "[e2e] starting etcd, the issuer, MinIO and moto in {}",
            dir.display()
        );
        cluster.spawn(Process::start(
            "etcd",
            &p.etcd,
            &[
                s("--name=e2e"),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
                format!("--initial-cluster=e2e=http://127.0.0.1:{etcd_peer_port}"),
                s("--log-level=warn"),
            ],
            &[],
            &logs,
        )?);
        let issuer_keys_args = match &cluster.layout.issuer_signer_socket {
            // The signer's refresh hint paces the issuer's reads (--reload-interval is refused with it).
            Some(socket) => vec![format!("--signer-socket={}", socket.display())],
            None => vec![
                format!("--public-key-file={}", issuer_keys.display()),
                s("--reload-interval=1s"),
            ],
        };
        let mut issuer_args = vec![
            s("issuer"),
            s("serve"),
            format!("--issuer-url={issuer_url}"),
            format!("--tls-cert-file={}", dir.join("serving.crt").display()),
            format!("--tls-key-file={}", dir.join("serving.key").display()),
            format!("--listen={address}:{issuer_port}"),
            format!("--admin-listen=127.0.0.1:{issuer_admin_port}"),
            s("--log-level=debug"),
        ];
        issuer_args.extend(issuer_keys_args);
        cluster.spawn(Process::start("issuer", &p.irsa, &issuer_args, &[], &logs)?);
        let minio_certs = dir.join("minio-certs");
        std::fs::create_dir_all(minio_certs.join("CAs"))?;
        write(&minio_certs.join("CAs/ca.crt"), cluster.ca.pem())?;
        cluster.spawn(Process::start(
            "minio",
            &p.minio,
            &[
                s("server"),
                format!("--address={address}:{minio_port}"),
                format!("--console-address=127.0.0.1:{minio_console_port}"),
                format!("--certs-dir={}", minio_certs.display()),
                dir.join("minio-data").display().to_string(),
            ],
            &[
                ("MINIO_ROOT_USER", s(MINIO_USER)),
                ("MINIO_ROOT_PASSWORD", s(MINIO_PASSWORD)),
                (
                    "MINIO_IDENTITY_OPENID_CONFIG_URL",
                    format!("{issuer_url}/.well-known/openid-configuration"),
                ),
                ("MINIO_IDENTITY_OPENID_CLIENT_ID", s(AUDIENCE)),
                ("MINIO_IDENTITY_OPENID_ROLE_POLICY", s("readwrite")),
                ("MINIO_SITE_REGION", s(REGION)),
                ("MINIO_BROWSER", s("off")),
                ("MINIO_UPDATE", s("off")),
            ],
            &logs,
        )?);
        cluster.spawn(Process::start(
            "moto",
            &p.venv_bin("moto_server"),
            &[s("-H"), s("127.0.0.1"), s("-p"), moto_port.to_string()],
            &[],
            &logs,
        )?);

        cluster
            .wait_http("etcd", &format!("{etcd_url}/health"), None)
            .await?;
        // The issuer is ready once it publishes keys (from a signer: after its first FetchKeys), before the
        // apiserver issues tokens that name it.
        cluster
            .wait_http("issuer", &format!("{}/readyz", cluster.issuer_admin), None)
            .await?;
        cluster.start_apiserver().await?;

        if cluster.layout.host_webhook {
            cluster.start_host_webhook(webhook_port, webhook_admin_port)?;
        }
        if cluster.layout.host_webhook {
            cluster
                .wait_http(
                    "webhook",
                    &format!("{}/readyz", cluster.webhook_admin),
                    None,
                )
                .await?;
            cluster.register_webhook().await?;
        }
        cluster
            .wait_http(
                "minio",
                &format!("{}/minio/health/live", cluster.minio_url),
                None,
            )
            .await?;
        cluster
            .wait_http("moto", &format!("{}/moto-api/", cluster.moto_url), None)
            .await?;
        cluster.make_bucket()?;
        eprintln!(
            "[e2e] cluster up: apiserver {} issuer {}",
            cluster.apiserver_url, cluster.issuer_url
        );
        Ok(cluster)
    }

    /// Starts irsa's webhook as a host process with the admin kubeconfig (registered later by URL).
    fn start_host_webhook(&self, webhook_port: u16, webhook_admin_port: u16) -> anyhow::Result<()> {
        let (dir, logs) = (&self.dir, self.dir.join("logs"));
        let s = |v: &str| v.to_string();
        eprintln!("[e2e] starting the webhook");
        self.spawn(Process::start(
            "webhook",
            &self.peers.irsa,
            &[
                s("webhook"),
                s("serve"),
                format!("--kubeconfig={}", self.kubeconfig.display()),
                format!("--tls-cert-file={}", dir.join("serving.crt").display()),
                format!("--tls-key-file={}", dir.join("serving.key").display()),
                format!("--listen=127.0.0.1:{webhook_port}"),
                format!("--admin-listen=127.0.0.1:{webhook_admin_port}"),
                format!("--role-arn-pattern={ROLE_ARN_PATTERN}"),
                // One debug line per admission helps a failing test; benchmarks set IRSA_E2E_WEBHOOK_LOG=info.
                format!(
                    "--log-level={}",
                    std::env::var("IRSA_E2E_WEBHOOK_LOG")
                        .unwrap_or_else(|_| "info,irsa_webhook=debug".into())
                ),
            ],
            &[],
            &logs,
        )?);
        Ok(())
    }

    /// Starts another `irsa` process (a second webhook, say) that is stopped with the cluster.
    pub fn start_irsa(&self, name: &str, args: &[String]) -> anyhow::Result<()> {
        let process = Process::start(name, &self.peers.irsa, args, &[], &self.dir.join("logs"))?;
        self.spawn(process);
        Ok(())
    }

    /// Stops the peer `name` ahead of the rest (a benchmark that needs neither MinIO nor moto, say).
    pub fn stop_peer(&self, name: &str) {
        let mut processes = self.processes.lock().unwrap();
        if let Some(at) = processes.iter().position(|p| p.name() == name) {
            processes.remove(at).stop();
        }
    }

    /// The PID of the running peer `name` (`webhook`, `issuer`, `kube-apiserver`, ...).
    pub fn pid_of(&self, name: &str) -> Option<u32> {
        let processes = self.processes.lock().unwrap();
        processes
            .iter()
            .rev()
            .find(|p| p.name() == name)?
            .program_pid()
    }

    /// Waits until `url` answers 200, failing early with the log tail if the process `name` exited.
    pub async fn wait_ready(&self, name: &str, url: &str) -> anyhow::Result<()> {
        self.wait_http(name, url, None).await
    }

    fn spawn(&self, process: Process) {
        self.processes.lock().unwrap().push(process);
    }

    fn write_kubeconfig(&self) -> anyhow::Result<()> {
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority: {}\n\
             users:\n- name: admin\n  user:\n    token: {ADMIN_TOKEN}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: admin\n\
             current-context: e2e\n",
            self.apiserver_url,
            self.dir.join("ca.crt").display()
        );
        write(&self.kubeconfig, kubeconfig)
    }

    /// (Re)starts kube-apiserver with every signing key's public half and the last one signing: the same
    /// flags, port and etcd each time; returns once it is ready.
    pub async fn start_apiserver(&self) -> anyhow::Result<()> {
        eprintln!("[e2e] starting kube-apiserver");
        let dir = &self.dir;
        write(
            &dir.join("tokens.csv"),
            format!("{ADMIN_TOKEN},admin,admin,\"system:masters\"\n"),
        )?;
        let keys = self.signing_keys.lock().unwrap().clone();
        let mut args = vec![
            format!("--etcd-servers={}", self.etcd_url),
            format!("--bind-address={}", self.layout.address),
            format!("--advertise-address={}", self.layout.address),
            format!("--secure-port={}", self.apiserver_port),
            format!("--tls-cert-file={}", dir.join("serving.crt").display()),
            format!(
                "--tls-private-key-file={}",
                dir.join("serving.key").display()
            ),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--token-auth-file={}", dir.join("tokens.csv").display()),
            "--authorization-mode=RBAC".to_string(),
            format!("--service-account-issuer={}", self.issuer_url),
            "--api-audiences=https://kubernetes.default.svc".to_string(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--endpoint-reconciler-type=none".to_string(),
            "--enable-priority-and-fairness=false".to_string(),
            "--v=1".to_string(),
        ];
        if let Some(socket) = &self.layout.signing_endpoint {
            args.push(format!(
                "--service-account-signing-endpoint={}",
                socket.display()
            ));
        } else {
            args.push(format!(
                "--service-account-signing-key-file={}",
                keys.last().expect("a signing key").0.display()
            ));
            for (_, public) in &keys {
                args.push(format!("--service-account-key-file={}", public.display()));
            }
        }
        args.extend(self.layout.apiserver_args.iter().cloned());
        self.spawn(Process::start(
            "kube-apiserver",
            &self.peers.kube_apiserver,
            &args,
            &[],
            &dir.join("logs"),
        )?);
        self.wait_http(
            "kube-apiserver",
            &format!("{}/readyz", self.apiserver_url),
            Some(ADMIN_TOKEN),
        )
        .await
    }

    /// Polls `url` until it answers 200 (90 s), failing early with the log tail if the peer exited.
    async fn wait_http(&self, name: &str, url: &str, token: Option<&str>) -> anyhow::Result<()> {
        let client = self.http()?;
        let what = format!(
            "{name} answers 200 at {url} (log: {}/logs/{name}.log)",
            self.dir.display()
        );
        Wait::up_to(Duration::from_secs(90))
            .every(Duration::from_millis(200))
            .try_until(&what, || async {
                let mut request = client.get(url);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let answer = match request.send().await {
                    Ok(response) if response.status().is_success() => return Ok(Check::Ready(())),
                    Ok(response) => format!("HTTP {}", response.status()),
                    Err(err) => format!("{err:#}"),
                };
                let mut processes = self.processes.lock().unwrap();
                if let Some(process) = processes.iter_mut().rev().find(|p| p.name() == name)
                    && process.exited()
                {
                    bail!(
                        "{name} exited during start-up; log {}:\n{}",
                        process.log().display(),
                        process.log_tail(30)
                    );
                }
                Ok(Check::NotYet(answer))
            })
            .await
    }

    /// An HTTP client trusting the run's CA.
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.pem().as_bytes())?])
            .timeout(Duration::from_secs(10))
            .build()?)
    }

    /// The Prometheus text exposition of an admin port, e.g. `metrics(&cluster.webhook_admin)`.
    pub async fn metrics(&self, admin_base: &str) -> anyhow::Result<String> {
        Ok(self
            .http()?
            .get(format!("{admin_base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// A kube client with the admin token.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(kube::Client::try_from(config)?)
    }

    async fn register_webhook(&self) -> anyhow::Result<()> {
        use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
        let configuration: MutatingWebhookConfiguration = serde_json::from_value(
            serde_json::json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "irsa-e2e"},
                "webhooks": [{
                    "name": "pod-identity.irsa.dev",
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {
                        "url": self.webhook_url,
                        "caBundle": base64::engine::general_purpose::STANDARD.encode(self.ca.pem()),
                    },
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "timeoutSeconds": 3,
                    "reinvocationPolicy": "IfNeeded",
                    "objectSelector": {"matchExpressions": [
                        {"key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "DoesNotExist"}
                    ]},
                }],
            }),
        )?;
        let api: kube::Api<MutatingWebhookConfiguration> = kube::Api::all(self.client().await?);
        api.create(&kube::api::PostParams::default(), &configuration)
            .await
            .context("registering the webhook")?;
        Ok(())
    }

    fn make_bucket(&self) -> anyhow::Result<()> {
        let output = self.as_minio_root(
            &self.peers.venv_bin("aws"),
            &["s3api", "create-bucket", "--bucket", BUCKET],
        )?;
        if !output.status.success() {
            bail!(
                "creating bucket {BUCKET} in MinIO failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Runs `program` with MinIO's root credentials and endpoint as its only AWS configuration.
    pub fn as_minio_root(
        &self,
        program: &Path,
        args: &[&str],
    ) -> anyhow::Result<std::process::Output> {
        std::process::Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("AWS_ACCESS_KEY_ID", MINIO_USER)
            .env("AWS_SECRET_ACCESS_KEY", MINIO_PASSWORD)
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.minio_url)
            .output()
            .with_context(|| format!("running {}", program.display()))
    }

    /// Runs kubectl against the cluster; returns stdout, or an error with stderr.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `stdin` as its input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        use std::io::Write as _;
        let mut child = std::process::Command::new(&self.peers.kubectl)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running kubectl")?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Mints a token the way the kubelet does for a projected volume: TokenRequest bound to the pod.
    pub fn mint_token(
        &self,
        namespace: &str,
        account: &str,
        pod: &str,
        audience: &str,
        seconds: i64,
    ) -> anyhow::Result<String> {
        let duration = format!("{seconds}s");
        let token = self.kubectl(&[
            "create",
            "token",
            account,
            "-n",
            namespace,
            "--audience",
            audience,
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            pod,
            "--duration",
            &duration,
        ])?;
        Ok(token.trim().to_string())
    }

    /// Rotates the service-account signing key the way an operator should: publish the new public key (the
    /// issuer re-reads its key file), then restart kube-apiserver signing with the new key while still
    /// accepting the old one.
    pub async fn rotate_signing_key(&self) -> anyhow::Result<()> {
        let (private, public) = signing_key();
        let n = self.signing_keys.lock().unwrap().len() + 1;
        let (key, public_path) = (
            self.dir.join(format!("sa-{n}.key")),
            self.dir.join(format!("sa-{n}.pub")),
        );
        write(&key, private)?;
        write(&public_path, &public)?;
        let mut published = std::fs::read_to_string(&self.issuer_keys)?;
        published.push_str(&public);
        // Write then rename, as a config-management tool or a Secret update would: never a half-written file.
        let staged = self.dir.join("issuer-keys.pem.new");
        write(&staged, published)?;
        std::fs::rename(&staged, &self.issuer_keys)?;
        self.signing_keys.lock().unwrap().push((key, public_path));
        self.stop_apiserver("before-rotation");
        self.start_apiserver().await
    }

    /// Stops kube-apiserver alone (etcd and every other peer keep running), keeping its log as
    /// `logs/kube-apiserver.<log_suffix>.log`; [`Self::start_apiserver`] brings it back as it was.
    pub fn stop_apiserver(&self, log_suffix: &str) {
        self.end_apiserver(log_suffix, Process::stop);
    }

    /// [`Self::stop_apiserver`], but at once (SIGKILL), as a crash or an OOM kill ends it.
    pub fn kill_apiserver(&self, log_suffix: &str) {
        self.end_apiserver(log_suffix, Process::kill);
    }

    fn end_apiserver(&self, log_suffix: &str, end: fn(&mut Process)) {
        let mut processes = self.processes.lock().unwrap();
        if let Some(at) = processes.iter().position(|p| p.name() == "kube-apiserver") {
            let mut old = processes.remove(at);
            end(&mut old);
            let kept = self
                .dir
                .join(format!("logs/kube-apiserver.{log_suffix}.log"));
            let _ = std::fs::rename(old.log(), kept);
        }
    }

    /// Keeps the run directory (logs) instead of deleting it; returns its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(tmp) = self._tmp.take() {
            let _ = tmp.keep();
        }
        self.dir.clone()
    }

    /// Stops every process, newest first.
    pub fn stop(&self) {
        let mut processes = self.processes.lock().unwrap();
        while let Some(mut process) = processes.pop() {
            process.stop();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The role ARN MinIO derives for an OpenID provider in role-policy mode:
/// `arn:minio:iam:<region>::role/<base64url_nopad(sha1(client_id))>`.
pub fn minio_role_arn(client_id: &str) -> String {
    use sha1_smol::Sha1;
    let digest = Sha1::from(client_id).digest().bytes();
    format!(
        "arn:minio:iam:{REGION}::role/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    )
}
