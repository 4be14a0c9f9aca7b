//! `irsa signer status`: every key of the directory or KMS key set with its rotation state and dates, as
//! `irsa signer serve` sees them with the same flags.

use std::io::Write;
use std::time::SystemTime;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::cmd::args::KeyArgs;
use crate::cmd::utc;
use crate::live::Snapshot;
use crate::rotation::{Policy, State};

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for people.
    Text,
    /// One JSON document for scripts.
    Json,
}

/// `irsa signer status`: show each key's state (pre-published, active, retiring, retired) and dates.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyArgs,

    /// The output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// Prints the states of the keys in `--key-dir` or `--kms-key-set` now.
pub async fn status(args: &StatusArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let policy = args.keys.policy(None)?;
    let keys = args.keys.source.source().await?.load().await?;
    let now = SystemTime::now();
    let snapshot = Snapshot::evaluate(keys, &policy, now, None)?;
    match args.output {
        Output::Text => out.write_all(text(&snapshot, now).as_bytes())?,
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &json(&snapshot, &policy, now))?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// What a state says about the key's dates, in words.
fn dates(state: State) -> String {
    match state {
        State::PrePublished { signs_from } => format!("signs from {}", utc(signs_from)),
        State::Active { since } => format!("signing since {}", utc(since)),
        State::Retiring { published_until } => {
            format!("published until {}", utc(published_until))
        }
        State::Retired { since } => format!("retired since {} (--prune removes it)", utc(since)),
    }
}

/// The table: one line per key, oldest first, then the next change.
pub fn text(snapshot: &Snapshot, now: SystemTime) -> String {
    let rows: Vec<[String; 6]> = snapshot
        .states()
        .map(|(key, state)| {
            [
                state.name().to_string(),
                key.kid().to_string(),
                key.algorithm().to_string(),
                utc(key.published_at()),
                dates(state),
                key.location(),
            ]
        })
        .collect();
    let header = ["STATE", "KID", "ALG", "PUBLISHED", "DATES", "KEY"].map(String::from);
    let mut widths = [0; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut table = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        table.push_str(line.join("  ").trim_end());
        table.push('\n');
    }
    match snapshot.next_change() {
        Some(at) => table.push_str(&format!(
            "now {}; next change {} (in {})\n",
            utc(now),
            utc(at),
            crate::cmd::human(at.duration_since(now).unwrap_or_default())
        )),
        None => table.push_str(&format!(
            "now {}; no change ahead until the next rotation\n",
            utc(now)
        )),
    }
    table
}

/// A public key as a PEM `PUBLIC KEY` block.
fn public_pem(spki_der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("PUBLIC KEY", spki_der), config)
}

/// The JSON document: the time, the policy, each key and the next change.
pub fn json(snapshot: &Snapshot, policy: &Policy, now: SystemTime) -> Value {
    let keys: Vec<Value> = snapshot
        .states()
        .map(|(key, state)| {
            let mut entry = json!({
                "kid": key.kid(),
                "algorithm": key.algorithm().as_str(),
                "key": key.location(),
                "state": state.name(),
                "published_at": utc(key.published_at()),
                // What an issuer publishes for it (a PEM file of these is `irsa issuer serve`'s key file).
                "public_key_pem": public_pem(key.spki_der()),
            });
            let (field, at) = match state {
                State::PrePublished { signs_from } => ("signs_from", signs_from),
                State::Active { since } => ("active_since", since),
                State::Retiring { published_until } => ("published_until", published_until),
                State::Retired { since } => ("retired_since", since),
            };
            entry[field] = json!(utc(at));
            entry
        })
        .collect();
    json!({
        "now": utc(now),
        "policy": {
            "pre_publish_seconds": policy.pre_publish.as_secs(),
            "max_token_expiration_seconds": policy.max_token_expiration.as_secs(),
            "margin_seconds": policy.margin.as_secs(),
        },
        "signing": snapshot.signing().kid(),
        "next_change": snapshot.next_change().map(utc),
        "keys": keys,
    })
}
