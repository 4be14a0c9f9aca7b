//! `irsa signer rotate`: adds the next key where a running `irsa signer serve` reads its keys (a file in the
//! directory, or a KMS key of the set). The signer publishes it at once and signs with it after the
//! pre-publication period; no restart.

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use clap::Args;

use crate::cmd::args::KeyArgs;
use crate::cmd::{human, utc};
use crate::key_file::{self, NewKeyAlgorithm, WriteError};
use crate::keys::{KeyFileError, KeySet, SigningKey};
use crate::kms::{KmsKey, KmsKeySet};
use crate::live::Snapshot;
use crate::rotation::{Policy, State};
use crate::source::{Key, Source, kms_spec};

/// `irsa signer rotate`: generate a new key (published now, signing after --pre-publish).
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyArgs,

    /// The new key's algorithm: RSA 2048 (RS256) or EC P-256 (ES256); in KMS, key spec RSA_2048 or
    /// ECC_NIST_P256.
    #[arg(long, value_enum, default_value = "RS256")]
    pub algorithm: NewKeyAlgorithm,

    /// Also remove retired keys (every token they signed has expired), naming each: their files are deleted;
    /// KMS keys are scheduled for deletion (kms:ScheduleKeyDeletion, 7 days, cancellable meanwhile).
    #[arg(long)]
    pub prune: bool,
}

/// Adds the new key, prints its kid and when it starts signing, and prunes if asked.
pub async fn rotate(args: &RotateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let policy = args.keys.policy(None)?;
    match args.keys.source.source().await? {
        Source::Dir(dir) => rotate_dir(args, &policy, &dir, out),
        Source::Kms(set) => rotate_kms(args, &policy, &set, out).await,
    }
}

/// Writes the next key file into `dir`.
fn rotate_dir(
    args: &RotateArgs,
    policy: &Policy,
    dir: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Err(WriteError::NoDirectory(dir.to_path_buf()).into());
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
        policy,
        now,
        None,
    )?;
    writeln!(out, "wrote {}", path.display())?;
    report_new(&snapshot, new.as_ref(), now, out)?;
    if args.prune {
        prune(&keys, &snapshot, out)?;
    }
    Ok(())
}

/// Creates the next KMS key of `set`.
async fn rotate_kms(
    args: &RotateArgs,
    policy: &Policy,
    set: &KmsKeySet,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // A set that does not list (a permission, a key that cannot sign) is not rotated: fix it first.
    let mut keys = set
        .list()
        .await
        .context("the KMS key set does not list; nothing was changed")?;
    let new = set.create(kms_spec(args.algorithm)).await?;
    keys.push(new.clone());
    // Evaluated at the key's CreationDate, the publication time `serve` and `status` use.
    let now = new.published_at();
    let snapshot = Snapshot::evaluate(
        keys.iter()
            .map(|k| Arc::new(k.clone()) as Arc<dyn Key>)
            .collect(),
        policy,
        now,
        None,
    )?;
    writeln!(out, "created KMS key {} ({})", new.key_id(), new.arn())?;
    report_new(&snapshot, &new, now, out)?;
    if args.prune {
        prune_kms(set, &keys, &snapshot, out).await?;
    }
    Ok(())
}

/// Prints the new key's kid and when it signs.
fn report_new(
    snapshot: &Snapshot,
    new: &dyn Key,
    now: SystemTime,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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
            "  state {} (another key is newer)",
            other.map_or("unknown", |s| s.name())
        )?,
    }
    Ok(())
}

/// Schedules the deletion of the retired KMS keys of `set`.
async fn prune_kms(
    set: &KmsKeySet,
    keys: &[KmsKey],
    snapshot: &Snapshot,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut pruned = 0;
    for (key, state) in snapshot.states() {
        let State::Retired { since } = state else {
            continue;
        };
        let Some(key) = keys.iter().find(|k| k.kid() == key.kid()) else {
            continue;
        };
        let retired = set.retire(key).await?;
        writeln!(
            out,
            "scheduled the deletion of KMS key {} (kid {}, retired since {}){}",
            retired.key_id,
            retired.kid,
            utc(since),
            retired
                .deletion_date
                .map(|d| format!(" on {}", utc(d)))
                .unwrap_or_default()
        )?;
        pruned += 1;
    }
    if pruned == 0 {
        writeln!(out, "no retired key to remove")?;
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
