//! A real node on this machine: containerd + runc + a CNI bridge from Debian, and the pinned kubelet,
//! kube-controller-manager and kube-scheduler, joined to the harness's kube-apiserver. Pods run from local OCI
//! archives (no registry is reachable), their tokens written by the kubelet itself.
//!
//! This machine's rules, each enforced here:
//! - Nothing may leave the machine. There is no kube-proxy, so a Service ClusterIP leads off the machine:
//!   kube-apiserver runs with `--enable-aggregator-routing` (it dials the webhook's endpoint IP), the apiserver
//!   and MinIO listen on the node address (an alias on `lo`, reachable from pods), pods that talk to the
//!   apiserver are given `KUBERNETES_SERVICE_HOST/PORT` of that address (the test overlay does it for irsa's
//!   Deployments), and an iptables guard REJECTs the service CIDR and anything a pod sends off the machine.
//! - One node per machine: the kubelet's port 10250 and some of its paths are fixed, so the state folder is
//!   fixed too ([`STATE_DIR`]) and a second run first restores what a killed one left (see [`host`]).

pub mod config;
pub mod host;
pub mod install;
pub mod pods;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use irsa_testing::wait::{Check, Wait};

use crate::cluster::{Cluster, FixedPorts, Layout};
use crate::oci::ProgramImage;
use crate::peers::Listed;
use crate::process::Process;

/// The node's address: an alias on `lo`, so that pods (whose packets arrive on the bridge) and host processes
/// both reach what listens there, and nothing is ever routed off the machine to reach it.
pub const NODE_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 245, 0, 1);
/// The node's name (`--hostname-override`).
pub const NODE_NAME: &str = "irsa-node";
/// The pods' addresses.
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The Service ClusterIP range (kube-apiserver's `--service-cluster-ip-range`).
pub use crate::cluster::SERVICE_CIDR;
/// The CNI bridge.
pub const BRIDGE: &str = "cni-irsa0";
/// The node's state: containerd's root, the kubelet's root dir, the CNI state, `saved.json`.
pub const STATE_DIR: &str = "/var/lib/irsa-e2e-node";
/// The ports the test overlay's manifests name (e2e/manifests/node): fixed, as its files are static.
pub const PORTS: FixedPorts = FixedPorts {
    apiserver: 6443,
    issuer: 8443,
    minio: 9000,
};
/// The pod sandbox's image.
pub const PAUSE_IMAGE: &str = "docker.io/local/irsa-pause:1";
/// The workload image: sdk-probe, an unmodified aws-sdk-go-v2 program (hack/node/sdk-probe), as root.
pub const PROBE_IMAGE: &str = "docker.io/local/irsa-sdk-probe:1";

/// The cluster layout the node joins: everything on the node address, the webhook installed as pods.
pub fn layout() -> Layout {
    Layout {
        address: NODE_ADDRESS,
        fixed_ports: Some(PORTS),
        host_webhook: false,
        apiserver_args: vec![
            // Dial a webhook's (or aggregated API's) endpoint IP, never its Service ClusterIP.
            "--enable-aggregator-routing=true".into(),
            // Reach the kubelet (logs, exec) at its InternalIP, never by a host name that could resolve
            // somewhere else.
            "--kubelet-preferred-address-types=InternalIP".into(),
        ],
        signing_endpoint: None,
        issuer_signer_socket: None,
    }
}

/// The node's programs and images, from `hack/install-peers.sh paths` (or the environment).
#[derive(Clone, Debug)]
pub struct NodePeers {
    /// The kubelet.
    pub kubelet: PathBuf,
    /// kube-controller-manager.
    pub controller_manager: PathBuf,
    /// kube-scheduler.
    pub scheduler: PathBuf,
    /// The folder with `pause` and `sdk-probe`.
    pub programs: PathBuf,
    /// irsa's image archive (`make image`, or `IRSA_IMAGE_ARCHIVE`).
    pub irsa_image: PathBuf,
}

impl NodePeers {
    /// Finds them, and says what to run when one is missing.
    pub fn locate() -> anyhow::Result<Self> {
        let listed = Listed::read()?;
        let irsa_image = std::env::var_os("IRSA_IMAGE_ARCHIVE").map_or_else(
            || crate::peers::workspace_root().join("target/image/irsa.tar"),
            PathBuf::from,
        );
        let peers = Self {
            kubelet: listed.path("IRSA_KUBELET")?,
            controller_manager: listed.path("IRSA_KUBE_CONTROLLER_MANAGER")?,
            scheduler: listed.path("IRSA_KUBE_SCHEDULER")?,
            programs: listed.path("IRSA_NODE_PROGRAMS")?,
            irsa_image,
        };
        for (what, file) in [
            ("kubelet", peers.kubelet.clone()),
            ("kube-controller-manager", peers.controller_manager.clone()),
            ("kube-scheduler", peers.scheduler.clone()),
            ("pause", peers.programs.join("pause")),
            ("sdk-probe", peers.programs.join("sdk-probe")),
        ] {
            if !file.exists() {
                bail!(
                    "{what} not found at {}: run `hack/install-peers.sh node` first",
                    file.display()
                );
            }
        }
        if !peers.irsa_image.exists() {
            bail!(
                "irsa's image archive is not at {}: run `make image` first (or set IRSA_IMAGE_ARCHIVE)",
                peers.irsa_image.display()
            );
        }
        for program in ["containerd", "ctr", "runc", "iptables", "ip"] {
            if which(program).is_none() {
                bail!("{program} is not on PATH: run `hack/install-peers.sh node` (as root) first");
            }
        }
        Ok(peers)
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

/// The running node. Stopping it (or dropping it) kills its pods' containers and puts the host back.
pub struct Node {
    processes: Vec<Process>,
    host: host::Host,
}

fn socket() -> String {
    format!("{STATE_DIR}/containerd/containerd.sock")
}

/// Runs `ctr` against the node's containerd, in the CRI's namespace.
pub fn ctr(args: &[&str]) -> anyhow::Result<String> {
    let socket = socket();
    let mut all = vec!["--address", &socket, "--namespace", "k8s.io"];
    all.extend_from_slice(args);
    host::run("ctr", &all)
}

impl Node {
    /// Prepares the host, starts containerd, imports the images, starts the control-plane controllers and
    /// the kubelet, and waits until the node is Ready and the `default` ServiceAccount exists.
    /// `host` comes from [`host::Host::prepare`], before the cluster starts (its servers bind the node
    /// address); the node owns it from here and restores it when stopped.
    pub async fn start(
        cluster: &Cluster,
        peers: &NodePeers,
        host: host::Host,
    ) -> anyhow::Result<Self> {
        if !cluster.apiserver_url.contains(&NODE_ADDRESS.to_string()) {
            bail!(
                "the cluster was not started with node::layout(): pods could not reach its apiserver"
            );
        }
        let mut node = Self {
            processes: Vec::new(),
            host,
        };
        let state = Path::new(STATE_DIR);
        let logs = cluster.dir.join("logs");
        for (file, contents) in [
            ("containerd/config.toml", config::containerd()),
            ("cni/net.d/10-irsa.conflist", config::cni()),
            ("kubelet/config.yaml", config::kubelet()),
        ] {
            let path = state.join(file);
            std::fs::create_dir_all(path.parent().expect("a folder"))?;
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
        }

        eprintln!("[node] starting containerd");
        node.processes.push(Process::start(
            "containerd",
            Path::new("containerd"),
            &[
                "--config".into(),
                state.join("containerd/config.toml").display().to_string(),
            ],
            &[],
            &logs,
        )?);
        Wait::up_to(Duration::from_secs(30))
            .every(Duration::from_millis(200))
            .until_blocking("containerd answers on its socket", || {
                Check::ready_if(ctr(&["version"]).is_ok(), || "not yet".into())
            })?;
        node.import_images(peers)?;

        eprintln!("[node] starting kube-controller-manager, kube-scheduler and the kubelet");
        let kubeconfig = cluster.kubeconfig.display().to_string();
        node.processes.push(Process::start(
            "kube-controller-manager",
            &peers.controller_manager,
            &[
                format!("--kubeconfig={kubeconfig}"),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
                // The CA that kube-root-ca.crt carries into every pod (in-cluster clients verify the
                // apiserver with it).
                format!("--root-ca-file={}", cluster.dir.join("ca.crt").display()),
                "--use-service-account-credentials=false".into(),
                "--v=1".into(),
            ],
            &[],
            &logs,
        )?);
        node.processes.push(Process::start(
            "kube-scheduler",
            &peers.scheduler,
            &[
                format!("--kubeconfig={kubeconfig}"),
                "--leader-elect=false".into(),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={}", crate::process::free_port()),
                "--v=1".into(),
            ],
            &[],
            &logs,
        )?);
        node.processes.push(Process::start(
            "kubelet",
            &peers.kubelet,
            &[
                format!("--config={}", state.join("kubelet/config.yaml").display()),
                format!("--kubeconfig={kubeconfig}"),
                format!("--root-dir={}", state.join("kubelet").display()),
                format!("--cert-dir={}", state.join("kubelet/pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={NODE_ADDRESS}"),
                "--v=1".into(),
            ],
            &[],
            &logs,
        )?);
        node.wait_ready(cluster).await?;
        Ok(node)
    }

    fn import_images(&self, peers: &NodePeers) -> anyhow::Result<()> {
        let images = Path::new(STATE_DIR).join("images");
        std::fs::create_dir_all(&images)?;
        for (reference, program, user) in [
            (PAUSE_IMAGE, "pause", "65535:65535"),
            (PROBE_IMAGE, "sdk-probe", "0:0"),
        ] {
            let archive = ProgramImage {
                reference,
                program: &peers.programs.join(program),
                name: program,
                user,
            }
            .archive()?;
            let path = images.join(format!("{program}.tar"));
            std::fs::write(&path, archive)?;
            ctr(&["images", "import", &path.display().to_string()])?;
        }
        let imported = ctr(&["images", "import", &peers.irsa_image.display().to_string()])?;
        eprintln!(
            "[node] images imported: pause, sdk-probe, irsa ({})",
            imported.trim()
        );
        Ok(())
    }

    async fn wait_ready(&mut self, cluster: &Cluster) -> anyhow::Result<()> {
        let processes = std::sync::Mutex::new(&mut self.processes);
        Wait::up_to(Duration::from_secs(120))
            .every(Duration::from_millis(500))
            .try_until(
                "the node is Ready and the default ServiceAccount exists",
                || async {
                    for process in processes.lock().unwrap().iter_mut() {
                        if process.exited() {
                            bail!(
                                "{} exited during start-up; log {}:\n{}",
                                process.name(),
                                process.log().display(),
                                process.log_tail(30)
                            );
                        }
                    }
                    let ready = cluster
                        .kubectl(&[
                            "get",
                            "node",
                            NODE_NAME,
                            "-o",
                            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                        ])
                        .unwrap_or_default();
                    let account =
                        cluster.kubectl(&["get", "serviceaccount", "default", "-o", "name"]);
                    Ok(Check::ready_if(ready == "True" && account.is_ok(), || {
                        format!(
                            "Ready={ready:?}, default ServiceAccount: {}",
                            account.is_ok()
                        )
                    }))
                },
            )
            .await?;
        eprintln!("[node] {NODE_NAME} is Ready");
        Ok(())
    }

    /// Stops the kubelet, kills every container, stops the rest and restores the host.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        // The kubelet first, so that it does not restart the containers killed below.
        if let Some(kubelet) = self.processes.iter_mut().find(|p| p.name() == "kubelet") {
            kubelet.stop();
        }
        if let Ok(tasks) = ctr(&["tasks", "list", "--quiet"]) {
            for task in tasks.lines().filter(|t| !t.is_empty()) {
                let _ = ctr(&["tasks", "kill", "--signal", "SIGKILL", task]);
            }
        }
        while let Some(mut process) = self.processes.pop() {
            process.stop();
        }
        self.host.restore()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("[node] teardown: {err:#}");
        }
    }
}
