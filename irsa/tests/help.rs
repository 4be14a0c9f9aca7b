//! `--help` as users read it, from the built binary: one test for what every command's help must say the same
//! way, whichever crate defines the command.

use std::process::Command;

/// Every leaf command, and whether it takes `--kubeconfig`.
const COMMANDS: [(&[&str], bool); 7] = [
    (&["webhook", "serve"], true),
    (&["webhook", "mutate"], false),
    (&["issuer", "serve"], true),
    (&["issuer", "publish"], false),
    (&["issuer", "jwks"], false),
    (&["associate-oidc-provider"], false),
    (&["create-role"], true),
];

/// `irsa <command> --help`, with white space folded (clap wraps lines at the terminal's width).
fn long_help(command: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_irsa"))
        .args(command)
        .arg("--help")
        .env_remove("COLUMNS")
        .output()
        .expect("run irsa");
    assert!(out.status.success(), "{command:?}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `--kubeconfig` flag's help text: from its name to its environment variable.
fn kubeconfig_help(help: &str) -> Option<&str> {
    let rest = help.split_once("--kubeconfig <FILE>")?.1;
    Some(rest.split_once("[env: IRSA_KUBECONFIG=]")?.0)
}

// kube's Config::infer (kube 5) reads $KUBECONFIG / ~/.kube/config first and falls back to the in-cluster
// configuration only when there is none: a pod with $KUBECONFIG set talks to that file's cluster. Every
// command that takes --kubeconfig must say it in that order.
#[test]
fn every_kubeconfig_help_gives_the_order_kube_infers_in() {
    for (command, takes_kubeconfig) in COMMANDS {
        let help = long_help(command);
        let Some(kubeconfig) = kubeconfig_help(&help) else {
            assert!(!takes_kubeconfig, "{command:?}: no --kubeconfig in\n{help}");
            continue;
        };
        assert!(
            takes_kubeconfig,
            "{command:?} takes --kubeconfig: add it to COMMANDS"
        );
        let local = kubeconfig
            .find("~/.kube/config")
            .unwrap_or_else(|| panic!("{command:?}: {kubeconfig}"));
        let in_cluster = kubeconfig
            .find("in-cluster")
            .unwrap_or_else(|| panic!("{command:?}: {kubeconfig}"));
        assert!(
            local < in_cluster,
            "{command:?}: the kubeconfig must come first: {kubeconfig}"
        );
        assert!(
            !kubeconfig.contains("in-cluster configuration, then"),
            "{command:?} claims in-cluster first: {kubeconfig}"
        );
    }
    // The issuer's client is only for --from-apiserver, and its help says so.
    let issuer = long_help(&["issuer", "serve"]);
    let kubeconfig = kubeconfig_help(&issuer).unwrap();
    assert!(kubeconfig.contains("--from-apiserver"), "{kubeconfig}");
}
