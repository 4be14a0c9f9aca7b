//! `irsa signer rotate`: writes the next key into the directory a running `irsa signer serve` reads. The
//! signer publishes it at once and signs with it after the pre-publication period; no restart.

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::Args;

use crate::cmd::args::KeyArgs;
use crate::cmd::{human, utc};
use crate::key_file::{self, NewKeyAlgorithm, WriteError};
use crate::keys::{KeyFileError, KeySet, SigningKey};
use crate::live::Snapshot;
use crate::rotation::State;
use crate::source::Key;

/// `irsa signer rotate`: generate a new key (published now, signing after --pre-publish).
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyArgs,

    /// The new key's algorithm: RSA 2048 (RS256) or EC P-256 (ES256).
    #[arg(long, value_enum, default_value = "RS256")]
    pub algorithm: NewKeyAlgorithm,

    /// Also delete the files of retired keys (every token they signed has expired), naming each.
    #[arg(long)]
    pub prune: bool,
}

/// Writes the new key, prints its kid and when it starts signing, and prunes if asked.
pub fn rotate(args: &RotateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let policy = args.keys.policy(None)?;
    let dir = &args.keys.key_dir;
    if !dir.is_dir() {
        return Err(WriteError::NoDirectory(dir.clone()).into());
    }
    // A directory the signer could not load is not rotated: the operator fixes it first.
    let mut keys: Vec<Arc<SigningKey>> = match KeySet::load_dir(dir, None) {
        Ok(set) => set.keys().to_vec(),
        Err(KeyFileError::Empty { .. }) => Vec::new(),
        Err(err) => {
            return Err(err).context("the key directory does not load; nothing was changed");
        }
    };
    let now = SystemTime::now();
    let path = key_file::rotate(dir, args.algorithm, now)?;
    let new = Arc::new(
        SigningKey::load(&path)
            .with_context(|| format!("reading back the new key {}", path.display()))?,
    );
    keys.push(new.clone());
    // Evaluated at the instant the key is published (its name's, to the second), so the dates printed are the
    // ones `status` and `serve` will show.
    let now = new.published_at();
    let snapshot = Snapshot::evaluate(
        keys.iter().map(|k| k.clone() as Arc<dyn Key>).collect(),
        &policy,
        now,
        None,
    )?;
    writeln!(out, "wrote {}", path.display())?;
    writeln!(out, "  kid {} ({})", new.kid(), new.algorithm())?;
    let state = snapshot
        .states()
        .find(|(k, _)| k.kid() == new.kid())
        .map(|(_, s)| s);
    match state {
        Some(State::PrePublished { signs_from }) => writeln!(
            out,
            "  published now; signs from {} (in {}), while {} signs until then",
            utc(signs_from),
            human(signs_from.duration_since(now).unwrap_or_default()),
            snapshot.signing().kid()
        )?,
        Some(State::Active { .. }) => writeln!(out, "  signs now (no other key signs)")?,
        other => writeln!(
            out,
            "  state {} (a key in the directory is newer)",
            other.map_or("unknown", |s| s.name())
        )?,
    }
    if args.prune {
        prune(&keys, &snapshot, out)?;
    }
    Ok(())
}

/// Deletes the files of the retired keys; `keys` and `snapshot` hold the same keys in the same order.
fn prune(
    keys: &[Arc<SigningKey>],
    snapshot: &Snapshot,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut pruned = 0;
    for (key, (_, state)) in keys.iter().zip(snapshot.states()) {
        if let State::Retired { since } = state {
            std::fs::remove_file(key.file())
                .with_context(|| format!("removing the retired key {}", key.file().display()))?;
            writeln!(
                out,
                "removed {} (kid {}, retired since {})",
                key.file().display(),
                key.kid(),
                utc(since)
            )?;
            pruned += 1;
        }
    }
    if pruned == 0 {
        writeln!(out, "no retired key to remove")?;
    }
    Ok(())
}
