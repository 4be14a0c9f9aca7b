//! `irsa issuer jwks`: print the JWKS of key files.

use std::io::Write;

use clap::Args;

use super::{KeyFileArgs, load, log_warnings};

/// `irsa issuer jwks`: print the JWKS of key files.
#[derive(Debug, Clone, Args)]
#[command(mut_arg("public_key_files", |a| a
    .required(true)
    .help("A PEM file of public keys (see `serve`); repeat for several")))]
pub struct JwksArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyFileArgs,
}

/// Runs `irsa issuer jwks`: prints the JWKS, exactly the bytes `serve` and `publish` publish, and a newline.
pub fn jwks(args: JwksArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let loaded = load(&args.keys.public_key_files)?;
    let rendered = crate::jwks::render(&loaded.keys);
    log_warnings(&rendered.warnings);
    out.write_all(&rendered.json)?;
    writeln!(out)?;
    Ok(())
}
