//! The command-line edge, one file per command: `irsa associate-oidc-provider` ([`associate`]),
//! `irsa create-role` ([`create_role`]) and `irsa migrate` ([`migrate`]), each its clap arguments and the
//! function that runs it and prints the report. The only modules that speak `anyhow`.
//!
//! Here: the flag groups the commands share (dry run, report format, AWS credentials) and the printing.

pub mod associate;
pub mod create_role;
pub mod migrate;

use std::io::Write;

use crate::aws::AwsOptions;
use crate::plan::report::Report;

/// How the report is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object for programs.
    Json,
}

/// The flags every IAM command ends with: a dry run, the report's format, the AWS credentials. Each command
/// says what its dry run still does (`mut_arg("dry_run", ...)`), as with irsa-serve's groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct RunArgs {
    /// Read and print the plan; change nothing.
    #[arg(long, env = "IRSA_DRY_RUN")]
    pub dry_run: bool,

    /// Report format.
    #[arg(long, env = "IRSA_OUTPUT", value_enum, default_value_t)]
    pub output: OutputFormat,

    /// AWS credentials, region and role.
    #[command(flatten)]
    pub aws: AwsArgs,
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
    report: &impl Report,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Text => out.write_all(report.render_text().as_bytes())?,
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report.to_json())?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Test support: one command's flags under `irsa <name>`, as the binary nests them, without the binary.
#[cfg(test)]
mod testing {
    use std::ffi::OsString;

    use clap::{Args, Command};

    fn cli<A: Args>(name: &'static str) -> Command {
        Command::new("irsa").subcommand(A::augment_args(Command::new(name)))
    }

    /// Parses `argv` (`irsa`, `name`, flags...) into the command's flags.
    pub(super) fn parse<A: Args>(
        name: &'static str,
        argv: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    ) -> Result<A, clap::Error> {
        let matches = cli::<A>(name).try_get_matches_from(argv)?;
        match matches.subcommand_matches(name) {
            Some(flags) => A::from_arg_matches(flags),
            None => Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand)),
        }
    }

    /// `irsa <name> --help`.
    pub(super) fn long_help<A: Args>(name: &'static str) -> String {
        cli::<A>(name)
            .find_subcommand_mut(name)
            .expect("the subcommand")
            .render_long_help()
            .to_string()
    }
}
