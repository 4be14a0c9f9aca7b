//! `tracing` set-up from `--log-format` and `--log-level`.

use tracing_subscriber::EnvFilter;

/// Output format of the logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging flags shared by every subcommand.
#[derive(Clone, Debug, clap::Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "IRSA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain, global = true)]
    pub log_format: LogFormat,

    /// Log filter: a level (error, warn, info, debug, trace) or a tracing directive such as
    /// `info,irsa_webhook=debug`.
    #[arg(long, env = "IRSA_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
}

impl LogArgs {
    /// Installs the global subscriber, writing to stderr so that stdout stays for command output.
    pub fn init(&self) -> Result<(), tracing_subscriber::filter::ParseError> {
        let filter = EnvFilter::try_new(&self.log_level)?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        // A second init (tests calling it twice) is harmless: keep the first subscriber.
        let _ = match self.log_format {
            LogFormat::Plain => builder.try_init(),
            LogFormat::Json => builder.json().flatten_event(true).try_init(),
        };
        Ok(())
    }
}

/// An error and its causes on one line, `: `-separated, each cause once (many errors repeat their source in
/// their own message), for a log field or a message.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle: inner")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_cause_once_in_order() {
        let err = Outer(Middle(std::io::Error::other("inner")));
        // "inner" is already part of the middle error's message: not repeated.
        assert_eq!(error_chain(&err), "outer: middle: inner");
    }
}
