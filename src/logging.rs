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
        .with_writer(Redacting(writer))
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(guard)
}

/// A log writer that blanks credential fields in what other crates print: at trace level the
/// AWS SDK logs the resolved identity with `Debug`, which shows the access key id in full (the
/// secret and session token are already redacted there). Each log line arrives in one write.
#[derive(Clone)]
struct Redacting<W>(W);

impl<'a, W: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for Redacting<W>
{
    type Writer = RedactingWriter<W::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

struct RedactingWriter<W>(W);

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if SENSITIVE_FIELDS.iter().any(|f| text.contains(f)) {
            self.0.write_all(redact(&text).as_bytes())?;
        } else {
            self.0.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Field names whose quoted values are blanked (as `Debug` output prints them).
const SENSITIVE_FIELDS: [&str; 6] = [
    "access_key_id: \"",
    "secret_access_key: \"",
    "session_token: \"",
    "aws_access_key_id: \"",
    "password: \"",
    "authorization: \"",
];

/// `text` with the quoted value after each sensitive field name replaced.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for field in SENSITIVE_FIELDS {
        let mut from = 0;
        while let Some(i) = out[from..]
            .to_ascii_lowercase()
            .find(field)
            .map(|i| from + i)
        {
            let start = i + field.len();
            let end = out[start..].find('"').map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "** redacted **");
            from = start + "** redacted **".len();
        }
    }
    out
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
    fn credentials_printed_by_debug_are_blanked() {
        let line = r#"identity=Identity { data: Credentials { provider_name: "Env", access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "** redacted **" } }"#;
        let r = redact(line);
        assert!(!r.contains("AKIAIOSFODNN7EXAMPLE"), "{r}");
        assert!(r.contains(r#"provider_name: "Env""#), "{r}");
    }

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
