//! `irsa issuer publish`: write the discovery document and the JWKS for static hosting (a directory or S3).

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use clap::{ArgGroup, Args};

use super::{KeyFileArgs, SignerArgs, load, log_warnings, paths};
use crate::documents::Documents;
use crate::publish::{self, S3Uri};
use crate::routes::DEFAULT_MAX_AGE;
use crate::signer;

/// `irsa issuer publish`: write the two documents for static hosting (a directory or S3).
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["out", "s3_uri"])))]
#[command(group(ArgGroup::new("keys").required(true).args(["public_key_files", "signer_socket"])))]
#[command(mut_arg("public_key_files", |a| a.help(
    "A PEM file of public keys (see `serve`); repeat for several. Publish old and new keys together while \
     rotating"
)))]
pub struct PublishArgs {
    /// The issuer URL, exactly as the apiserver's --service-account-issuer (the tokens' `iss`).
    #[arg(long, env = "IRSA_ISSUER_URL", value_name = "URL")]
    pub issuer_url: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub keys: KeyFileArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub signer: SignerArgs,

    /// The `jwks_uri` to publish (default: <issuer-url path>/openid/v1/jwks on the issuer's host).
    #[arg(long, env = "IRSA_JWKS_URI", value_name = "URL")]
    pub jwks_uri: Option<String>,

    /// The site root to write into: files land at DIR<issuer path>/.well-known/openid-configuration and
    /// DIR<jwks path>, the layout a static site (S3 website, nginx) serves as-is.
    #[arg(long, env = "IRSA_OUT", value_name = "DIR", conflicts_with = "s3_uri")]
    pub out: Option<PathBuf>,

    /// Upload to s3://bucket[/prefix] (the prefix is the site root; the issuer path is appended), with the
    /// right Content-Type and Cache-Control and no ACL. Credentials and endpoint from the standard AWS chain
    /// (AWS_ENDPOINT_URL_S3 for MinIO and other emulators).
    #[arg(long, env = "IRSA_S3_URI", value_name = "S3URI")]
    pub s3_uri: Option<String>,

    /// Cache-Control max-age of the documents, in seconds.
    #[arg(long, env = "IRSA_MAX_AGE", value_name = "SECONDS", default_value_t = DEFAULT_MAX_AGE)]
    pub max_age: u32,

    /// Print what would be written, write nothing.
    #[arg(long, env = "IRSA_DRY_RUN")]
    pub dry_run: bool,
}

/// Runs `irsa issuer publish`, reporting on `out` what was (or would be) written.
pub async fn publish(args: PublishArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let paths = paths(&args.issuer_url, args.jwks_uri.as_deref(), false)?;
    let loaded = match &args.signer.signer_socket {
        Some(socket) => {
            let fetched = signer::fetch_once(socket).await?;
            log_warnings(&fetched.loaded.warnings);
            fetched.loaded
        }
        None => load(&args.keys.public_key_files)?,
    };
    let (docs, warnings) = Documents::render(&paths, &loaded.keys);
    log_warnings(&warnings);
    let files = publish::files(&paths, &docs)?;
    let cache_control = format!("public, max-age={}", args.max_age);
    let s3 = args.s3_uri.as_deref().map(S3Uri::parse).transpose()?;
    let destinations: Vec<String> = match (&args.out, &s3) {
        (Some(dir), None) => files
            .iter()
            .map(|f| publish::path_in(dir, f).display().to_string())
            .collect(),
        (None, Some(target)) => files
            .iter()
            .map(|f| format!("s3://{}/{}", target.bucket, target.key(f)))
            .collect(),
        _ => bail!("give exactly one of --out DIR and --s3-uri s3://bucket/prefix"),
    };
    if args.dry_run {
        for (file, dest) in files.iter().zip(&destinations) {
            writeln!(
                out,
                "would write {dest} (Content-Type: {}, Cache-Control: {cache_control}):",
                file.content_type
            )?;
            out.write_all(&file.body)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    match (&args.out, &s3) {
        (Some(dir), _) => {
            for path in publish::write_dir(dir, &files)? {
                writeln!(out, "wrote {}", path.display())?;
            }
        }
        (_, Some(target)) => {
            let client = publish::s3_client().await;
            for uri in publish::upload(&client, target, &files, args.max_age).await? {
                writeln!(out, "uploaded {uri} ({cache_control})")?;
            }
        }
        _ => unreachable!("checked above"),
    }
    writeln!(
        out,
        "issuer {} publishes {} key(s): {}",
        paths.issuer,
        docs.keys.len(),
        kids(&docs)
    )?;
    Ok(())
}

fn kids(docs: &Documents) -> String {
    docs.keys
        .iter()
        .map(|k| k.kid())
        .collect::<Vec<_>>()
        .join(", ")
}
