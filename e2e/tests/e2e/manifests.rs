//! The shipped manifests: every overlay renders and passes a server-side dry run.

use std::sync::Arc;

use anyhow::{Context as _, ensure};
use irsa_e2e::cluster::Cluster;
use serde_json::Value;

pub(crate) async fn manifests_render_and_apply_with_server_dry_run(
    cluster: Arc<Cluster>,
) -> anyhow::Result<()> {
    let manifests = irsa_e2e::peers::workspace_root().join("manifests");
    // A server-side dry run creates nothing, so the namespace every object lives in must exist for real.
    cluster.kubectl(&[
        "apply",
        "-k",
        &manifests.join("base/namespace").display().to_string(),
    ])?;
    let overlays = std::fs::read_dir(manifests.join("overlays"))?;
    let mut checked = Vec::new();
    for overlay in overlays {
        let overlay = overlay?.path();
        let name = overlay
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let rendered = cluster.kubectl(&["kustomize", &overlay.display().to_string()])?;
        // cert-manager's own kinds need its CRDs, which a bare apiserver lacks; everything else must apply.
        let mut kept = Vec::new();
        let mut cert_manager_objects = 0;
        for document in rendered.split("\n---\n") {
            let object: Value =
                serde_yaml::from_str(document).with_context(|| format!("{name}: bad YAML"))?;
            if object["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("cert-manager.io/"))
            {
                cert_manager_objects += 1;
            } else {
                kept.push(document);
            }
        }
        ensure!(
            name != "cert-manager" || cert_manager_objects > 0,
            "the cert-manager overlay has no Certificate"
        );
        let applied = cluster
            .kubectl_stdin(
                &["apply", "--dry-run=server", "-f", "-"],
                Some(&kept.join("\n---\n")),
            )
            .with_context(|| format!("overlay {name}"))?;
        ensure!(applied.contains("(server dry run)"), "{name}: {applied}");
        checked.push(name);
    }
    ensure!(
        checked.len() >= 4,
        "only these overlays were found: {checked:?}"
    );
    Ok(())
}
