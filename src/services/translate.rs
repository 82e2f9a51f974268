//! A query or brief in Spanish translated to English by Apertium, where it is installed.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::services::language::Reading;
use crate::services::language_offset;

/// Names the Apertium program, or `off` for none.
pub const ENV: &str = "CAMPAIGN_STUDIO_APERTIUM";

/// How long one translation may take (it takes about 0.1 s) before the query or brief is used
/// without it.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The most a translation may hold; a brief is far shorter.
const MAX_OUTPUT: u64 = 64 * 1024;

/// How many translations a process keeps (a search, then the same run said again).
const MEMO_SIZE: usize = 256;

/// The languages translated to English: (the language as `language::Reading::Other` names it,
/// Apertium's mode, the Debian and Ubuntu package that carries it).
const PAIRS: &[(&str, &str, &str)] = &[("Spanish", "spa-eng", "apertium-eng-spa")];

/// The Apertium mode that translates `language` to English, for the languages this uses it for.
pub fn mode_for(language: &str) -> Option<&'static str> {
    PAIRS.iter().find(|p| p.0 == language).map(|p| p.1)
}

/// The package that installs `mode`, for an error that says what to install.
fn package_of(mode: &str) -> String {
    PAIRS.iter().find(|p| p.1 == mode).map_or_else(
        || format!("the Apertium pair with {mode}"),
        |p| p.2.to_string(),
    )
}

/// One installed Apertium.
#[derive(Debug)]
pub struct Apertium {
    program: OsString,
    modes: Vec<String>,
    limit: Duration,
    memo: Mutex<HashMap<(String, String), String>>,
    /// Set when it gave no answer in time: not asked again in this process.
    stalled: AtomicBool,
}

impl Apertium {
    /// The Apertium `program` with the modes it lists (`apertium -l`); an error that says what
    /// to do when it cannot run or lists no mode.
    pub fn open(program: impl Into<OsString>) -> crate::Result<Apertium> {
        let program = program.into();
        let listed = run(&program, &["-l"], "", TIME_LIMIT).map_err(Run::into_error)?;
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
            stalled: AtomicBool::new(false),
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

    /// `text` translated by `mode`: one line, unknown words left as they are (`-u`). Kept for
    /// the process (the latest 256). After one translation that took past the time limit, none
    /// is asked for again in this process.
    pub fn translate(&self, mode: &str, text: &str) -> crate::Result<String> {
        if !self.has(mode) {
            return Err(crate::Error::Inference(format!(
                "Apertium has no {mode} mode: install {}",
                package_of(mode)
            )));
        }
        if self.stalled.load(Ordering::Relaxed) {
            return Err(crate::Error::Inference(format!(
                "Apertium gave no answer within {} s earlier in this session, so it is not asked again until the app restarts (set {ENV}=off to stop using it)",
                self.limit.as_secs_f32()
            )));
        }
        // Apertium translates line by line; a brief is one query.
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let key = (mode.to_string(), line.clone());
        if let Some(t) = self.memo().get(&key) {
            return Ok(t.clone());
        }
        let out = match run(&self.program, &["-u", mode], &line, self.limit) {
            Err(Run::Stalled(e)) => {
                self.stalled.store(true, Ordering::Relaxed);
                return Err(e);
            }
            Err(Run::Failed(e)) => return Err(e),
            Ok(out) => clean(&out),
        };
        if out.is_empty() {
            return Err(crate::Error::Inference(format!(
                "Apertium {mode} returned nothing for the query (set {ENV}=off to search without it)"
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

/// How a run of the program failed.
enum Run {
    /// No answer within the time limit (the program and what it started were ended).
    Stalled(crate::Error),
    Failed(crate::Error),
}

impl Run {
    fn into_error(self) -> crate::Error {
        match self {
            Run::Stalled(e) | Run::Failed(e) => e,
        }
    }
}

/// How much of the program's stderr an error quotes (its last bytes).
const STDERR_TAIL: usize = 300;

/// Runs `program args` with `input` on its stdin; its stdout, or an error naming the program,
/// the reason (with the end of its stderr) and what to do. Past `limit` it is ended with
/// everything it started: `apertium` is a shell script running a pipeline, so on Unix it runs
/// in a process group of its own and the whole group is ended (only processes this started).
fn run(
    program: &OsString,
    args: &[&str],
    input: &str,
    limit: Duration,
) -> std::result::Result<String, Run> {
    let name = program.to_string_lossy().into_owned();
    let failed = |why: String| {
        crate::Error::Inference(format!(
            "translation with {name} failed: {why} (set {ENV}=off to search without it)"
        ))
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| Run::Failed(failed(format!("could not start it: {e}"))))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let input = input.as_bytes().to_vec();
    // Written and read on their own threads, so no pipe can fill and stall the others.
    let writer = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            let _ = s.write_all(&input).and_then(|()| s.write_all(b"\n"));
        }
    });
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = pipe {
                let _ = s.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
            }
            buf
        })
    };
    let reader = read(stdout.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let errors = read(stderr.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let waited = child.wait_timeout(limit);
    let stalled = !matches!(waited, Ok(Some(_)));
    if stalled {
        end(&mut child);
    }
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = errors.join().unwrap_or_default();
    let said = {
        let text = String::from_utf8_lossy(&err);
        let text = text.trim();
        let start = text.len().saturating_sub(STDERR_TAIL);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        if text.is_empty() {
            String::new()
        } else {
            format!(": {}", &text[start..])
        }
    };
    let status = match waited {
        Ok(Some(status)) => status,
        Ok(None) => {
            return Err(Run::Stalled(failed(format!(
                "no answer within {} s",
                limit.as_secs_f32()
            ))));
        }
        Err(e) => return Err(Run::Failed(failed(e.to_string()))),
    };
    if !status.success() {
        return Err(Run::Failed(failed(format!(
            "it exited with {status}{said}"
        ))));
    }
    if out.len() as u64 > MAX_OUTPUT {
        return Err(Run::Failed(failed(format!(
            "it wrote more than {MAX_OUTPUT} bytes"
        ))));
    }
    String::from_utf8(out).map_err(|_| Run::Failed(failed("its output is not UTF-8".into())))
}

/// Ends `child` and, on Unix, the process group it leads (`run` made it; nothing else is in it),
/// then reaps it.
fn end(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the group whose id is -pid: the group
        // `run` created for this child, which holds only it and what it started.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether the process has a translator.
pub enum Availability {
    /// Turned off (`CAMPAIGN_STUDIO_APERTIUM=off` or empty).
    Off,
    /// Not found, or it could not list its modes: why.
    Missing(String),
    Ready(&'static Apertium),
}

/// The process's Apertium: `CAMPAIGN_STUDIO_APERTIUM` or `apertium` on the PATH, looked for
/// once, on the first query or brief that would be translated.
pub fn availability() -> Availability {
    static APERTIUM: OnceLock<Option<Result<Apertium, String>>> = OnceLock::new();
    let found = APERTIUM.get_or_init(|| {
        let program = std::env::var_os(ENV).unwrap_or_else(|| "apertium".into());
        if program.is_empty() || program == "off" {
            tracing::info!("translation off ({ENV})");
            return None;
        }
        Some(match Apertium::open(&program) {
            Ok(a) => {
                tracing::info!(program = %program.to_string_lossy(), modes = ?a.modes, "Apertium found: queries in its languages are translated to English");
                Ok(a)
            }
            Err(e) => {
                tracing::info!(error = %e, "no Apertium: queries in other languages are searched without translation");
                Err(e.to_string())
            }
        })
    });
    match found {
        None => Availability::Off,
        Some(Err(why)) => Availability::Missing(why.clone()),
        Some(Ok(a)) => Availability::Ready(a),
    }
}

/// The process's Apertium, when it has one (`availability`).
pub fn shared() -> Option<&'static Apertium> {
    match availability() {
        Availability::Ready(a) => Some(a),
        _ => None,
    }
}

/// Why text read as `language` was not translated, where a translator would have served it
/// (`why_not_translated_by` with the process's Apertium).
pub fn why_not_translated(language: &str, tried: bool) -> Option<String> {
    why_not_translated_by(language, &availability(), tried)
}

/// Why text read as `language` was not translated under `availability`: Apertium could not be
/// used (and why), lacks the pair, or, when a translation was `tried`, failed; `None` when no
/// pair serves the language, translation is turned off, or nothing was tried with a ready
/// Apertium (a caller that chose not to translate). Said where the text is used (a search, the
/// composer), when it is used.
pub fn why_not_translated_by(
    language: &str,
    availability: &Availability,
    tried: bool,
) -> Option<String> {
    let mode = mode_for(language)?;
    match availability {
        Availability::Off => None,
        Availability::Missing(why) => Some(format!(
            "Apertium is not available ({why}); apt-get install apertium {}",
            package_of(mode)
        )),
        Availability::Ready(a) if !a.has(mode) => Some(format!(
            "Apertium lacks {mode}; apt-get install {}",
            package_of(mode)
        )),
        Availability::Ready(_) => {
            tried.then(|| "Apertium's translation failed; the log says why".to_string())
        }
    }
}

/// What `doctor` says of the process's translator.
pub fn status() -> String {
    match availability() {
        Availability::Ready(a) if a.has("spa-eng") => {
            "Apertium spa-eng: Spanish queries are searched as their English translation, and the offline composer writes from a Spanish brief's".into()
        }
        Availability::Ready(_) => {
            "Apertium without spa-eng: install apertium-eng-spa to translate Spanish queries".into()
        }
        Availability::Off => format!("off ({ENV}=off)"),
        Availability::Missing(why) => format!(
            "none ({why}): Spanish queries are moved by the Spanish offset; install Apertium (apertium-eng-spa) to search their English translation"
        ),
    }
}

pub use crate::domain::Translation;

/// The language `text` (read as `reading`) is translated from: one Apertium has a mode for,
/// that the detector is sure of (`language_offset::sure_of`, the offset's gate). Nothing runs.
pub fn language_of(text: &str, reading: &Reading) -> Option<String> {
    let Reading::Other(Some(name)) = reading else {
        return None;
    };
    mode_for(name)?;
    language_offset::sure_of(text, name).then(|| name.clone())
}

/// `text` in `from` translated by `apertium`; `None` when it has no mode for `from` or the
/// translation failed (logged: the text is then used as it is).
pub fn translate_from(apertium: &Apertium, from: &str, text: &str) -> Option<Translation> {
    let mode = mode_for(from)?;
    if !apertium.has(mode) {
        return None;
    }
    match apertium.translate(mode, text) {
        Ok(t) => Some(Translation {
            by: Apertium::name(mode),
            from: from.to_string(),
            text: t,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "used without translation");
            None
        }
    }
}

/// `text` in `from` translated line by line by `apertium` (the composer reads a brief's first
/// line as its first sentence, so its lines stay lines); empty lines are kept; `None` when any
/// line could not be translated (logged).
pub fn translate_lines(apertium: &Apertium, from: &str, text: &str) -> Option<Translation> {
    let mut lines = Vec::new();
    let mut by = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            lines.push(String::new());
            continue;
        }
        let t = translate_from(apertium, from, line)?;
        by = Some(t.by);
        lines.push(t.text);
    }
    Some(Translation {
        from: from.to_string(),
        by: by?,
        text: lines.join("\n"),
    })
}

/// A brief's English translation by the process's Apertium, when it reads as a language this
/// translates (`language_of`): `Ok(None)` for a brief that needs none, or when translation is
/// turned off (nothing is looked for or run); `Err` with why (`why_not_translated`) when one
/// was wanted and not made.
pub fn translate_brief(brief: &str) -> std::result::Result<Option<Translation>, String> {
    let Some(from) = language_of(brief, &crate::services::language::reading(brief)) else {
        return Ok(None);
    };
    let made = shared().and_then(|a| translate_lines(a, &from, brief));
    match made {
        Some(t) => Ok(Some(t)),
        None => why_not_translated(&from, true).map_or(Ok(None), Err),
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
        runnable(&path);
        path.into_os_string()
    }

    /// Waits until the script at `path` can be run: a child another test forked while it was
    /// being written holds it open for writing until that child execs ("Text file busy").
    fn runnable(path: &std::path::Path) {
        for _ in 0..1000 {
            match Command::new(path).arg("-l").output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::yield_now(),
                _ => return,
            }
        }
    }

    /// A ready Apertium listing `modes` (never run), for `why_not_translated_by`.
    fn listing(modes: &[&str]) -> Availability {
        Availability::Ready(Box::leak(Box::new(Apertium {
            program: "apertium".into(),
            modes: modes.iter().map(|m| m.to_string()).collect(),
            limit: Duration::from_secs(1),
            memo: Mutex::default(),
            stalled: AtomicBool::new(false),
        })))
    }

    #[test]
    fn no_reason_is_given_when_translation_is_turned_off() {
        assert_eq!(
            why_not_translated_by("Spanish", &Availability::Off, true),
            None
        );
    }

    #[test]
    fn a_missing_apertium_is_said_with_why_and_what_to_install() {
        let why = why_not_translated_by(
            "Spanish",
            &Availability::Missing("could not start it".into()),
            true,
        )
        .unwrap();
        assert!(
            why.contains("(could not start it)")
                && why.contains("apt-get install apertium apertium-eng-spa"),
            "{why}"
        );
    }

    #[test]
    fn an_apertium_without_the_pair_names_the_package() {
        let why = why_not_translated_by("Spanish", &listing(&["eng-spa"]), true).unwrap();
        assert!(
            why.contains("lacks spa-eng; apt-get install apertium-eng-spa"),
            "{why}"
        );
    }

    #[test]
    fn a_tried_translation_that_gave_nothing_is_said_to_have_failed() {
        let why = why_not_translated_by("Spanish", &listing(&["spa-eng"]), true).unwrap();
        assert!(why.contains("translation failed"), "{why}");
    }

    #[test]
    fn a_translation_not_tried_with_a_ready_apertium_is_not_called_failed() {
        assert_eq!(
            why_not_translated_by("Spanish", &listing(&["spa-eng"]), false),
            None
        );
    }

    #[test]
    fn a_language_without_a_pair_needs_no_reason() {
        assert_eq!(
            why_not_translated_by("German", &Availability::Missing("x".into()), true),
            None
        );
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
    fn a_program_past_the_time_limit_is_not_asked_again_in_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "exec sleep 30"))
            .unwrap()
            .with_limit(Duration::from_millis(200));
        assert!(a.translate("spa-eng", "un perro").is_err());
        let e = a.translate("spa-eng", "un gato").unwrap_err().to_string();
        assert!(e.contains("not asked again"), "{e}");
    }

    #[test]
    fn what_a_stalled_program_started_is_ended_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The script starts a process of its own and waits for it, as apertium's pipeline does.
        let a = Apertium::open(fake(
            dir.path(),
            &format!("sleep 30 &\necho $! > {}\nwait", pid_file.display()),
        ))
        .unwrap()
        .with_limit(Duration::from_millis(300));
        assert!(a.translate("spa-eng", "un perro").is_err());
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // Gone, or a zombie waiting for init to reap it: not running. A killed process dies
        // when it is next scheduled, so its state is read until it is dead, for at most 10 s
        // (it would sleep on for 30); CI once read it as still running ("R") just after the kill.
        let path = format!("/proc/{}/stat", pid.trim());
        let dead =
            |stat: &std::io::Result<String>| stat.as_deref().map_or(true, |s| s.contains(") Z "));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut stat = std::fs::read_to_string(&path);
        while !dead(&stat) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
            stat = std::fs::read_to_string(&path);
        }
        assert!(dead(&stat), "the script's sleep still runs: {stat:?}");
    }

    #[test]
    fn a_failing_program_s_own_message_is_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "echo 'Error: mode broken' >&2; exit 1")).unwrap();
        let e = a.translate("spa-eng", "un perro").unwrap_err().to_string();
        assert!(e.contains("Error: mode broken"), "{e}");
    }

    #[test]
    fn a_brief_is_translated_line_by_line_and_keeps_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let a = Apertium::open(fake(dir.path(), "tr a-z A-Z")).unwrap();
        let t = translate_lines(&a, "Spanish", "un perro\n\nen la playa").unwrap();
        assert_eq!(t.text, "UN PERRO\n\nEN LA PLAYA");
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
