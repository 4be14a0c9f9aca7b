//! Single-layer OCI image archives of one static program, for the test node: no registry is reachable here,
//! so the pause image of the pod sandbox and the workload images are written by hand and imported with
//! `ctr images import`. (irsa's own image comes from `hack/build-image.sh`, as users get it.)

use std::path::Path;

use anyhow::Context as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// An image of one program at `/<name>`, run as `entrypoint` by `user`.
pub struct ProgramImage<'a> {
    /// The full reference containerd names it by (`docker.io/local/pause:1`: `image: local/pause:1` in a pod).
    pub reference: &'a str,
    /// The program's file.
    pub program: &'a Path,
    /// Its path in the image, without the leading slash.
    pub name: &'a str,
    /// The image's user (`uid:gid`).
    pub user: &'a str,
}

impl ProgramImage<'_> {
    /// The archive (an OCI image layout, tarred) as `ctr images import` takes it.
    pub fn archive(&self) -> anyhow::Result<Vec<u8>> {
        let program = std::fs::read(self.program)
            .with_context(|| format!("reading {}", self.program.display()))?;
        let layer = tar_of(&[
            TarEntry::Dir("tmp/", 0o1777),
            TarEntry::File(self.name, &program, 0o755),
        ])?;
        let config = serde_json::to_vec(&json!({
            "architecture": architecture()?,
            "os": "linux",
            "config": {"Entrypoint": [format!("/{}", self.name)], "User": self.user},
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
        }))?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", &layer)],
        }))?;
        let tag = self.reference.rsplit_once(':').map_or("latest", |(_, t)| t);
        let mut manifest_descriptor =
            descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
        manifest_descriptor["annotations"] = json!({
            "io.containerd.image.name": self.reference,
            "org.opencontainers.image.ref.name": tag,
        });
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [manifest_descriptor],
        }))?;
        let blob = |bytes: &[u8]| format!("blobs/sha256/{}", hex_sha256(bytes));
        let (layer_path, config_path, manifest_path) =
            (blob(&layer), blob(&config), blob(&manifest));
        tar_of(&[
            TarEntry::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644),
            TarEntry::File("index.json", &index, 0o644),
            TarEntry::File(&layer_path, &layer, 0o644),
            TarEntry::File(&config_path, &config, 0o644),
            TarEntry::File(&manifest_path, &manifest, 0o644),
        ])
    }
}

enum TarEntry<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
}

/// A tar stream of `entries`, owned by root, dated at the epoch (the same program gives the same digest).
fn tar_of(entries: &[TarEntry<'_>]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match entry {
            TarEntry::Dir(path, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty())?;
            }
            TarEntry::File(path, bytes, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, *bytes)?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex_sha256(bytes))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()})
}

/// The OCI name of this machine's architecture.
fn architecture() -> anyhow::Result<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("amd64"),
        "aarch64" => Ok("arm64"),
        other => anyhow::bail!("no OCI architecture name for {other}"),
    }
}
