//! `--help` as users read it, from the built binary: one test for what every command's help must say the same
//! way, whichever crate defines the command.

use std::process::Command;

/// Every leaf command, and whether it takes `--kubeconfig`.
const COMMANDS: [(&[&str], bool); 12] = [
    (&["webhook", "serve"], true),
    (&["webhook", "mutate"], false),
    (&["issuer", "serve"], true),
    (&["issuer", "publish"], false),
    (&["issuer", "jwks"], false),
    (&["associate-oidc-provider"], false),
    (&["create-role"], true),
    (&["migrate"], true),
    (&["doctor"], true),
    (&["signer", "serve"], false),
    (&["signer", "rotate"], false),
    (&["signer", "status"], false),
];

/// The command names `irsa <group> --help` lists (`irsa --help` for the top level), `help` left out.
fn listed_commands(group: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_irsa"))
        .args(group)
        .arg("--help")
        .output()
        .expect("run irsa");
    let help = String::from_utf8(out.stdout).unwrap();
    let Some((_, commands)) = help.split_once("Commands:") else {
        return Vec::new();
    };
    let commands = commands.split("Options:").next().unwrap_or_default();
    commands
        .lines()
        // A command's line starts with two spaces and its name; wrapped descriptions start further in.
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|rest| !rest.starts_with(' '))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

// A command added to the binary but not to COMMANDS would escape every check here.
#[test]
fn commands_lists_every_leaf_command_of_the_binary() {
    let mut leaves = Vec::new();
    for top in listed_commands(&[]) {
        let subcommands = listed_commands(&[&top]);
        if subcommands.is_empty() {
            leaves.push(vec![top]);
        } else {
            leaves.extend(subcommands.into_iter().map(|sub| vec![top.clone(), sub]));
        }
    }
    let listed: Vec<Vec<String>> = COMMANDS
        .iter()
        .map(|(command, _)| command.iter().map(|s| s.to_string()).collect())
        .collect();
    for leaf in &leaves {
        assert!(listed.contains(leaf), "{leaf:?} is missing from COMMANDS");
    }
    assert_eq!(leaves.len(), COMMANDS.len(), "{leaves:?}");
}

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
