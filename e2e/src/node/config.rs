//! The node's configuration files, rendered from its constants: containerd's, the CNI network's and the
//! kubelet's. Pure text, so that a reader sees every setting in one place.

use super::{BRIDGE, NODE_ADDRESS, NODE_NAME, PAUSE_IMAGE, POD_CIDR, STATE_DIR};

/// containerd's `config.toml`: its own root, state and socket under the state folder, the CRI plugin with
/// the local pause image and Debian's CNI plugins.
pub fn containerd() -> String {
    format!(
        r#"version = 2
root = "{STATE_DIR}/containerd/root"
state = "{STATE_DIR}/containerd/state"
[grpc]
  address = "{STATE_DIR}/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Processes here lack CAP_SYS_RESOURCE: without this every sandbox fails to start (runc cannot write the
  # -998 oom_score_adj containerd asks for).
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{STATE_DIR}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"#
    )
}

/// The pods' network: a bridge with the node as gateway, addresses from the pod CIDR. No masquerading:
/// nothing is meant to leave the machine (the egress guard rejects what would).
pub fn cni() -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "irsa-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": format!("{STATE_DIR}/cni/ipam"),
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
    .to_string()
}

/// The kubelet's `KubeletConfiguration`: serving on the node address (where the apiserver reaches it for
/// logs), anonymous and always-allow (only this machine can reach it), cgroupfs on this machine's cgroup v1,
/// no image garbage collection (the images cannot be pulled again).
pub fn kubelet() -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://{STATE_DIR}/containerd/containerd.sock
podLogsDir: {STATE_DIR}/pod-logs
volumePluginDir: {STATE_DIR}/kubelet/volume-plugins
address: {NODE_ADDRESS}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
  x509: {{}}
authorization:
  mode: AlwaysAllow
registerNode: true
rotateCertificates: false
serverTLSBootstrap: false
resolvConf: /etc/resolv.conf
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# The node is named, not found from the host name (which could resolve to an address off this machine).
# (The name lives on the command line: --hostname-override={NODE_NAME}.)
"#
    )
}
