//! What the test node changes on the host, saved before and put back after, also after a crashed run.
//!
//! A kubelet, containerd and the CNI bridge change the machine, not just their own folders: sysctls
//! (`vm.overcommit_memory`, `kernel.panic*`, `ip_forward`), iptables (`KUBE-*` and `CNI-*` chains), mounts
//! (the kubelet's root dir, volumes, container root filesystems, network namespaces), cgroups (`/kubepods`,
//! `/k8s.io`), a bridge link, and a few fixed paths whatever its flags say. The node suite also adds the node
//! address on `lo` and the egress guard. Everything it found is written to `saved.json` in the state folder
//! before anything changes, so that the next run restores a machine a killed run left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::{BRIDGE, NODE_ADDRESS, POD_CIDR, SERVICE_CIDR, STATE_DIR};

/// The sysctls the kubelet and the CNI plugins set (those this kernel has are saved).
const SYSCTLS: &[&str] = &[
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
];

/// Paths the kubelet writes whatever `--root-dir` says; removed afterwards when they did not exist before.
const FIXED_PATHS: &[&str] = &["/var/lib/kubelet", "/var/log/containers", "/var/log/pods"];

/// The cgroups the kubelet (cgroupfs driver) and containerd create, in every hierarchy.
const CGROUPS: &[&str] = &["kubepods", "k8s.io", "kubepods.slice"];

/// The iptables chain of the egress guard.
const GUARD_CHAIN: &str = "IRSA-E2E-GUARD";

/// The host as the suite found it.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    sysctls: BTreeMap<String, String>,
    iptables: String,
    ip6tables: Option<String>,
    address_existed: bool,
    fixed_paths_existed: Vec<String>,
    netns_before: Vec<String>,
}

fn saved_file() -> PathBuf {
    Path::new(STATE_DIR).join("saved.json")
}

/// Runs a command, failing with its stderr.
pub(super) fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a command whose failure is expected now and then (deleting what may be gone already).
fn run_quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}

fn sysctl_path(name: &str) -> PathBuf {
    Path::new("/proc/sys").join(name.replace('.', "/"))
}

fn netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The host prepared for a node: restored when stopped or dropped.
pub struct Host {
    restored: bool,
}

impl Host {
    /// Restores what a previous run left (if it left its `saved.json`), then saves the host as it is now and
    /// makes the node's changes: the node address on `lo` (the cluster's servers bind it) and the egress
    /// guard. Needs root.
    pub fn prepare() -> anyhow::Result<Self> {
        if uid() != 0 {
            bail!("the node suite needs root (containerd, the kubelet, iptables)");
        }
        eprintln!("[node] preparing the host (state in {STATE_DIR})");
        prepare()?;
        Ok(Self { restored: false })
    }

    /// Puts the host back (once).
    pub fn restore(&mut self) -> anyhow::Result<()> {
        if std::mem::replace(&mut self.restored, true) {
            return Ok(());
        }
        restore()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Err(err) = self.restore() {
            eprintln!("[node] teardown: {err:#}");
        }
    }
}

/// This process's user ID, from `/proc` (no `unsafe` libc call needed).
fn uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

fn prepare() -> anyhow::Result<()> {
    if saved_file().exists() {
        eprintln!("[node] a previous run did not tear down: restoring the host it found first");
        restore()?;
    } else {
        // No record, but perhaps processes or mounts of a run killed before it wrote one.
        stop_leftovers();
        unmount_under(Path::new(STATE_DIR));
    }
    if Path::new(STATE_DIR).exists() {
        std::fs::remove_dir_all(STATE_DIR).with_context(|| format!("removing {STATE_DIR}"))?;
    }
    std::fs::create_dir_all(STATE_DIR)?;
    let address = format!("{NODE_ADDRESS}/32");
    let saved = Saved {
        sysctls: SYSCTLS
            .iter()
            .filter_map(|name| {
                let value = std::fs::read_to_string(sysctl_path(name)).ok()?;
                Some((name.to_string(), value.trim().to_string()))
            })
            .collect(),
        iptables: run("iptables-save", &[])?,
        ip6tables: run("ip6tables-save", &[]).ok(),
        address_existed: run("ip", &["-o", "addr", "show", "dev", "lo"])?
            .contains(&format!(" {address} ")),
        fixed_paths_existed: FIXED_PATHS
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| p.to_string())
            .collect(),
        netns_before: netns(),
    };
    std::fs::write(saved_file(), serde_json::to_vec_pretty(&saved)?)?;
    if !saved.address_existed {
        run("ip", &["addr", "add", &address, "dev", "lo"])?;
    }
    install_guard()
}

/// The egress guard: nothing may leave this machine, and without kube-proxy a packet to a Service ClusterIP
/// (or a pod's packet to any address that is not local) would. REJECT makes such a mistake fail at once.
fn install_guard() -> anyhow::Result<()> {
    run("iptables", &["-N", GUARD_CHAIN])?;
    for rule in [
        vec!["-d", SERVICE_CIDR, "-j", "REJECT"],
        // Pod to pod stays on the bridge; pod to the node is INPUT, not FORWARD; anything else would be routed
        // out of the machine.
        vec!["-s", POD_CIDR, "!", "-d", POD_CIDR, "-j", "REJECT"],
    ] {
        let mut args = vec!["-A", GUARD_CHAIN];
        args.extend(rule);
        run("iptables", &args)?;
    }
    run("iptables", &["-I", "OUTPUT", "1", "-j", GUARD_CHAIN])?;
    run("iptables", &["-I", "FORWARD", "1", "-j", GUARD_CHAIN])?;
    Ok(())
}

/// Puts back everything `prepare` saved and removes what the node made. Best effort in every step (one that
/// fails must not keep the others from running); fails at the end naming what could not be restored.
fn restore() -> anyhow::Result<()> {
    let saved: Saved = serde_json::from_slice(
        &std::fs::read(saved_file())
            .with_context(|| format!("reading {}", saved_file().display()))?,
    )?;
    let mut problems = Vec::new();
    stop_leftovers();
    unmount_under(Path::new(STATE_DIR));
    for ns in netns() {
        if !saved.netns_before.contains(&ns) {
            let path = format!("/run/netns/{ns}");
            run_quiet("umount", &["-l", &path]);
            let _ = std::fs::remove_file(&path);
        }
    }
    if Path::new("/var/lib/kubelet").exists() {
        unmount_under(Path::new("/var/lib/kubelet"));
    }
    if let Err(err) = restore_iptables("iptables-restore", &saved.iptables) {
        problems.push(format!("{err:#}"));
    }
    if let Some(rules) = &saved.ip6tables
        && let Err(err) = restore_iptables("ip6tables-restore", rules)
    {
        problems.push(format!("{err:#}"));
    }
    run_quiet("ip", &["link", "delete", BRIDGE]);
    if !saved.address_existed {
        run_quiet(
            "ip",
            &["addr", "del", &format!("{NODE_ADDRESS}/32"), "dev", "lo"],
        );
    }
    for (name, value) in &saved.sysctls {
        if let Err(err) = std::fs::write(sysctl_path(name), value) {
            problems.push(format!("sysctl {name}={value}: {err}"));
        }
    }
    remove_cgroups();
    for path in FIXED_PATHS {
        if !saved.fixed_paths_existed.iter().any(|p| p == path) && Path::new(path).exists() {
            unmount_under(Path::new(path));
            if let Err(err) = std::fs::remove_dir_all(path) {
                problems.push(format!("removing {path}: {err}"));
            }
        }
    }
    if let Err(err) = std::fs::remove_dir_all(STATE_DIR) {
        problems.push(format!("removing {STATE_DIR}: {err}"));
    }
    if !problems.is_empty() {
        bail!("the host was not fully restored: {}", problems.join("; "));
    }
    Ok(())
}

/// The iptables tables the node's programs write to.
const TABLES: &[&str] = &["filter", "nat", "mangle", "raw"];

/// Restores `saved` (iptables-save output). iptables-save leaves out a table that had no rules at all, and
/// iptables-restore leaves alone a table its input does not name: such a table gets an empty block, which
/// flushes it and deletes its chains.
fn restore_iptables(program: &str, saved: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut rules = saved.to_string();
    for table in TABLES {
        if !saved.lines().any(|l| l == format!("*{table}")) {
            rules.push_str(&format!("*{table}\nCOMMIT\n"));
        }
    }
    let mut child = Command::new(program)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(rules.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Kills what a node leaves running: containers (every process in a kubelet or containerd cgroup), the
/// containerd shims, and a containerd or kubelet of a run killed before its harness could stop them.
fn stop_leftovers() {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in procs.filter_map(|e| e.ok()) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let in_pod_cgroup = cgroup
            .lines()
            .any(|l| l.contains(":/kubepods") || l.contains(":/k8s.io"));
        let ours = cmdline.contains(STATE_DIR);
        if in_pod_cgroup || ours {
            run_quiet("kill", &["-KILL", &pid.to_string()]);
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// Unmounts every mount at or below `root`, deepest first (lazily: a busy one goes when its users do).
fn unmount_under(root: &Path) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| point.replace("\\040", " "))
        .filter(|point| Path::new(point).starts_with(root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        run_quiet("umount", &["-l", &point]);
    }
}

/// Removes the node's cgroups, deepest first, in every v1 hierarchy and the unified one.
fn remove_cgroups() {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.filter_map(|e| e.ok()).map(|e| e.path()) {
        for name in CGROUPS {
            remove_cgroup_tree(&hierarchy.join(name));
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.filter_map(|e| e.ok()) {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&child.path());
            }
        }
    }
    // rmdir, not remove_dir_all: a cgroup's control files cannot be deleted, only the directory itself.
    let _ = std::fs::remove_dir(dir);
}
