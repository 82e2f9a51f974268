//! Logs go to a file (mode 0600) in the data dir; stdout belongs to the UI and CLI output.
use std::fs::OpenOptions;
use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::{Error, Result};

pub const LOG_FILE: &str = "campaign-studio.log";

/// Installs the global subscriber. Keep the returned guard alive until exit so buffered lines
/// are flushed.
pub fn init(log_dir: &Path, level: &str) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(log_dir).map_err(|e| Error::io(log_dir, e))?;
    let path = log_dir.join(LOG_FILE);
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(|e| Error::io(&path, e))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let directives = filter_directives(level);
    let filter = EnvFilter::try_new(&directives)
        .map_err(|e| Error::Config(format!("logging.level = {level:?}: {e}")))?;
    // A second init (tests calling the CLI entry twice) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(guard)
}

/// `logging.level` as tracing directives: a plain level ("debug", "trace") applies to this
/// program only, and every other crate (the AWS SDK, HTTP stacks) stays at warn unless named
/// ("info,aws_smithy_runtime=debug" turns that one crate up).
pub fn filter_directives(level: &str) -> String {
    let mut out = vec!["warn".to_string()];
    for part in level.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.contains('=') {
            out.push(part.to_string());
        } else {
            out.push(format!("campaign_studio={part}"));
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_level_applies_to_this_program_only() {
        assert_eq!(filter_directives("trace"), "warn,campaign_studio=trace");
    }

    #[test]
    fn a_crate_named_in_the_level_is_turned_up() {
        assert_eq!(
            filter_directives("info, aws_smithy_runtime=debug"),
            "warn,campaign_studio=info,aws_smithy_runtime=debug"
        );
    }
}
