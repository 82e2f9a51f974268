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
    let filter = EnvFilter::try_new(level)
        .map_err(|e| Error::Config(format!("logging.level = {level:?}: {e}")))?;
    // A second init (tests calling the CLI entry twice) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(guard)
}
