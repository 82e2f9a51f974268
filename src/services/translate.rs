//! A query in Spanish translated to English by Apertium, where it is installed.
//!
//! The offline text embedders' documents are English: human descriptions, and above all the
//! English class documents raw photos are indexed by (`local::label_space`). A Spanish brief
//! searched as it is loses part of its match (`language_offset` moves it toward English text,
//! and is what is left when this cannot run). No registry package carries a neural translation
//! model; Debian and Ubuntu carry Apertium, a rule-based translator (`apertium-eng-spa`, GPL,
//! about 9 MB with its engine). It runs here as a separate program, found on the PATH (or named
//! by `CAMPAIGN_STUDIO_APERTIUM`; `off` turns it off), once per query, with a time limit: the
//! app works the same without it. Measured in `tests/retrieval_quality.rs`.
//!
//! Written here rather than taken from a crate: no crate binds Apertium; the `apertium` Python
//! package wraps the same command.
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::services::language::{self, Reading};
use crate::services::{Embedder, language_offset};

/// Names the Apertium program, or `off` for none.
pub const ENV: &str = "CAMPAIGN_STUDIO_APERTIUM";

/// How long one translation may take (it takes about 0.1 s) before the query is searched
/// without it.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most a translation may hold; a brief is far shorter.
const MAX_OUTPUT: u64 = 64 * 1024;

/// How many translations a process keeps (a search, then the same run said again).
const MEMO_SIZE: usize = 256;

/// The Apertium mode that translates `language` (as `language::Reading::Other` names it) to
/// English, for the languages this uses it for.
pub fn mode_for(language: &str) -> Option<&'static str> {
    match language {
        "Spanish" => Some("spa-eng"),
        _ => None,
    }
}

/// One installed Apertium.
#[derive(Debug)]
pub struct Apertium {
    program: OsString,
    modes: Vec<String>,
    limit: Duration,
    memo: Mutex<HashMap<(String, String), String>>,
}

impl Apertium {
    /// The Apertium `program` with the modes it lists (`apertium -l`); an error that says what
    /// to do when it cannot run or lists no mode.
    pub fn open(program: impl Into<OsString>) -> crate::Result<Apertium> {
        let program = program.into();
        let listed = run(&program, &["-l"], "", TIME_LIMIT)?;
        let modes = parse_modes(&listed);
        if modes.is_empty() {
            return Err(crate::Error::Inference(format!(
                "{} lists no translation mode: install a pair such as apertium-eng-spa",
                program.to_string_lossy()
            )));
        }
        Ok(Apertium {
            program,
            modes,
            limit: TIME_LIMIT,
            memo: Mutex::default(),
        })
    }

    /// The same Apertium with another time limit.
    pub fn with_limit(mut self, limit: Duration) -> Apertium {
        self.limit = limit;
        self
    }

    /// Whether it has `mode` installed.
    pub fn has(&self, mode: &str) -> bool {
        self.modes.iter().any(|m| m == mode)
    }

    /// The modes it lists.
    pub fn modes(&self) -> &[String] {
        &self.modes
    }

    /// What it is, for the user: "Apertium spa-eng".
    pub fn name(mode: &str) -> String {
        format!("Apertium {mode}")
    }

    /// `text` translated by `mode`: one line, unknown words left as they are (`-u`).
    pub fn translate(&self, mode: &str, text: &str) -> crate::Result<String> {
        if !self.has(mode) {
            return Err(crate::Error::Inference(format!(
                "Apertium has no {mode} mode: install its pair (apertium-eng-spa)"
            )));
        }
        // Apertium translates line by line; a brief is one query.
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let key = (mode.to_string(), line.clone());
        if let Some(t) = self.memo().get(&key) {
            return Ok(t.clone());
        }
        let out = run(&self.program, &["-u", mode], &line, self.limit)?;
        let out = clean(&out);
        if out.is_empty() {
            return Err(crate::Error::Inference(format!(
                "Apertium {mode} returned nothing for the query"
            )));
        }
        let mut memo = self.memo();
        if memo.len() >= MEMO_SIZE {
            memo.clear();
        }
        memo.insert(key, out.clone());
        Ok(out)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        // Only finished translations are kept; one left by a panicking thread is still sound.
        self.memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The modes in `apertium -l`'s output: one a line, indented.
fn parse_modes(listed: &str) -> Vec<String> {
    listed
        .lines()
        .map(str::trim)
        .filter(|m| !m.is_empty() && !m.contains(char::is_whitespace))
        .map(str::to_string)
        .collect()
}

/// A translation as one line of words: Apertium marks words it could not generate with `#`
/// and words its bilingual dictionary lacks with `@`; the words are kept, the marks dropped.
fn clean(out: &str) -> String {
    out.split_whitespace()
        .map(|w| w.trim_start_matches(['#', '@']))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program args` with `input` on its stdin; its stdout, or an error naming the program,
/// the reason and what to do. Killed past `limit`.
fn run(program: &OsString, args: &[&str], input: &str, limit: Duration) -> crate::Result<String> {
    let name = program.to_string_lossy().into_owned();
    let failed = |why: String| {
        crate::Error::Inference(format!(
            "translation with {name} failed: {why} (set {ENV}=off to search without it)"
        ))
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("could not start it: {e}")))?;
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let input = input.as_bytes().to_vec();
    // Written and read on their own threads, so neither pipe can fill and stall the other.
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = stdin.take() {
            let _ = s.write_all(&input).and_then(|()| s.write_all(b"\n"));
        }
    });
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        }
        buf
    });
    let status = match child.wait_timeout(limit) {
        Ok(Some(status)) => status,
        Ok(None) => {
            // Our own child, ended by its handle.
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!(
                "no answer within {} s",
                limit.as_secs_f32()
            )));
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(format!("it exited with {status}")));
    }
    if out.len() as u64 > MAX_OUTPUT {
        return Err(failed(format!("it wrote more than {MAX_OUTPUT} bytes")));
    }
    String::from_utf8(out).map_err(|_| failed("its output is not UTF-8".into()))
}

/// The process's Apertium: `CAMPAIGN_STUDIO_APERTIUM` or `apertium` on the PATH, looked for
/// once; `None` when it is off, absent or has no mode (logged once).
pub fn shared() -> Option<&'static Apertium> {
    static APERTIUM: OnceLock<Option<Apertium>> = OnceLock::new();
    APERTIUM
        .get_or_init(|| {
            let program = std::env::var_os(ENV).unwrap_or_else(|| "apertium".into());
            if program.is_empty() || program == "off" {
                tracing::info!("translation off ({ENV}=off)");
                return None;
            }
            match Apertium::open(&program) {
                Ok(a) => {
                    tracing::info!(program = %program.to_string_lossy(), modes = ?a.modes, "Apertium found: queries in its languages are translated to English");
                    Some(a)
                }
                Err(e) => {
                    tracing::info!(error = %e, "no Apertium: queries in other languages are searched without translation");
                    None
                }
            }
        })
        .as_ref()
}

/// What `doctor` says of the process's translator.
pub fn status() -> String {
    match shared() {
        Some(a) if a.has("spa-eng") => {
            "Apertium spa-eng: Spanish queries are searched as their English translation".into()
        }
        Some(_) => "Apertium without spa-eng: install apertium-eng-spa to translate Spanish queries"
            .into(),
        None if std::env::var_os(ENV).is_some_and(|v| v == "off") => format!("off ({ENV}=off)"),
        None => "none: Spanish queries are moved by the Spanish offset; install Apertium (apertium-eng-spa) to search their English translation".into(),
    }
}

/// A query searched as its English translation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Translation {
    /// The language it was read as.
    pub from: String,
    /// What translated it ("Apertium spa-eng").
    pub by: String,
    /// The English text searched.
    pub text: String,
}

/// The language `text` (read as `reading`) is translated from for `embedder`: one whose
/// documents are English (`Embedder::translates_queries`), that Apertium has a mode for, and
/// that the detector is sure of (`language_offset::MIN_CONFIDENCE`, the same gate as the
/// offset's). Nothing runs.
pub fn language_for(embedder: &dyn Embedder, text: &str, reading: &Reading) -> Option<String> {
    if !embedder.translates_queries() {
        return None;
    }
    let Reading::Other(Some(name)) = reading else {
        return None;
    };
    mode_for(name)?;
    (language::confidence(text, name) >= language_offset::MIN_CONFIDENCE).then(|| name.clone())
}

/// `text` translated by `apertium` when `language_for` says so; `None` otherwise, or when the
/// translation failed (logged: the query is then searched without it).
pub fn translate_query(
    apertium: &Apertium,
    embedder: &dyn Embedder,
    text: &str,
    reading: &Reading,
) -> Option<Translation> {
    let from = language_for(embedder, text, reading)?;
    let mode = mode_for(&from)?;
    if !apertium.has(mode) {
        return None;
    }
    match apertium.translate(mode, text) {
        Ok(t) => Some(Translation {
            by: Apertium::name(mode),
            from,
            text: t,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the query is searched without translation");
            None
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in for the apertium program: a shell script with `body` after the mode list.
    fn fake(dir: &std::path::Path, body: &str) -> OsString {
        let path = dir.join("apertium");
        std::fs::write(
            &path,
            format!("#!/bin/sh\nif [ \"$1\" = -l ]; then printf '  spa-eng\\n  eng-spa\\n'; exit 0; fi\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.into_os_string()
    }

    #[test]
    fn the_listed_modes_are_read_one_a_line() {
        assert_eq!(
            parse_modes("  eng-spa\n  spa-eng\n\n"),
            ["eng-spa", "spa-eng"]
        );
    }

    #[test]
    fn a_line_of_prose_is_not_a_mode() {
        assert!(parse_modes("Error: no mode found\n").is_empty());
    }

    #[test]
    fn generation_and_dictionary_marks_are_dropped_from_the_words() {
        assert_eq!(
            clean(" A #happy @perro\n on the beach\n"),
            "A happy perro on the beach"
        );
    }

    #[test]
    fn a_query_is_translated_by_the_program_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        // Echoes its arguments and input: the mode, -u, and the query on one line.
        let a = Apertium::open(fake(dir.path(), "echo \"$@\" $(cat)")).unwrap();
        assert_eq!(
            a.translate("spa-eng", "un perro\nfeliz").unwrap(),
            "-u spa-eng un perro feliz"
        );
    }

    #[test]
    fn a_mode_it_lacks_is_an_error_that_names_the_pair_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "cat")).unwrap();
        let e = a.translate("fra-eng", "un chien").unwrap_err().to_string();
        assert!(e.contains("fra-eng") && e.contains("install"), "{e}");
    }

    #[test]
    fn a_program_that_fails_is_an_error_that_says_how_to_turn_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "exit 3")).unwrap();
        let e = a.translate("spa-eng", "un perro").unwrap_err().to_string();
        assert!(e.contains("exited") && e.contains(ENV), "{e}");
    }

    #[test]
    fn a_program_that_does_not_answer_is_ended_at_the_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "exec sleep 30"))
            .unwrap()
            .with_limit(Duration::from_millis(200));
        let e = a.translate("spa-eng", "un perro").unwrap_err().to_string();
        assert!(e.contains("no answer"), "{e}");
    }

    #[test]
    fn an_empty_translation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "cat > /dev/null")).unwrap();
        assert!(a.translate("spa-eng", "un perro").is_err());
    }

    #[test]
    fn a_missing_program_is_an_error_that_names_it() {
        let e = Apertium::open("/nonexistent/apertium")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/apertium"), "{e}");
    }

    #[test]
    fn a_translation_is_asked_of_the_program_once() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("count");
        let a = Apertium::open(fake(
            dir.path(),
            &format!("echo x >> {}; echo a dog", count.display()),
        ))
        .unwrap();
        for _ in 0..3 {
            assert_eq!(a.translate("spa-eng", "un perro").unwrap(), "a dog");
        }
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
    }
}
