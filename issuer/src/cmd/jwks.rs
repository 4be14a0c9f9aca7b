//! `irsa issuer jwks`: print the JWKS of key files.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{load, log_warnings};

/// `irsa issuer jwks`: print the JWKS of key files.
#[derive(Debug, Clone, Args)]
pub struct JwksArgs {
    /// A PEM file of public keys (see `serve`); repeat for several.
    #[arg(
        long = "public-key-file",
        env = "IRSA_PUBLIC_KEY_FILE",
        value_name = "FILE",
        value_delimiter = ',',
        required = true
    )]
    pub public_key_files: Vec<PathBuf>,
}

/// Runs `irsa issuer jwks`: prints the JWKS, exactly the bytes `serve` and `publish` publish, and a newline.
pub fn jwks(args: JwksArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let loaded = load(&args.public_key_files)?;
    let rendered = crate::jwks::render(&loaded.keys);
    log_warnings(&rendered.warnings);
    out.write_all(&rendered.json)?;
    writeln!(out)?;
    Ok(())
}
