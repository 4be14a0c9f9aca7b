//! The command-line edge, one file per command: `irsa associate-oidc-provider` ([`associate`]) and
//! `irsa create-role` ([`create_role`]), each its clap arguments and the function that runs it and
//! prints the report. The only modules that speak `anyhow`.
//!
//! Here: the flag groups both commands share (AWS credentials, the report format) and the printing.

pub mod associate;
pub mod create_role;

use std::io::Write;

use crate::aws::AwsOptions;

/// How the report is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object for programs.
    Json,
}

/// Where AWS credentials come from, beyond the standard chain (environment, profile, web identity,
/// container, IMDS). `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_IAM` and `AWS_ENDPOINT_URL_STS` redirect
/// the calls (to an emulator, for instance).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AwsArgs {
    /// AWS region for signing and STS; IAM itself is global. Default: the standard chain, else
    /// us-east-1.
    #[arg(long, env = "IRSA_REGION", value_name = "REGION")]
    pub region: Option<String>,

    /// Named profile from the AWS shared config and credentials files.
    #[arg(long, env = "IRSA_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,

    /// Assume this role (sts:AssumeRole) before calling IAM, for instance to act in another
    /// account.
    #[arg(long, env = "IRSA_ASSUME_ROLE_ARN", value_name = "ARN")]
    pub assume_role_arn: Option<String>,
}

impl From<AwsArgs> for AwsOptions {
    fn from(a: AwsArgs) -> AwsOptions {
        AwsOptions {
            region: a.region,
            profile: a.profile,
            assume_role_arn: a.assume_role_arn,
        }
    }
}

/// Prints a report in `format`: `text` as is, `json` pretty, with a final newline.
fn print(
    out: &mut (dyn Write + Send),
    format: OutputFormat,
    text: impl FnOnce() -> String,
    json: impl FnOnce() -> serde_json::Value,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Text => out.write_all(text().as_bytes())?,
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &json())?;
            writeln!(out)?;
        }
    }
    Ok(())
}
