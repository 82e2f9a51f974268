//! Where campaign-studio keeps its files: XDG locations from `directories`, each overridable by
//! an environment variable (tests and CI point them at temp dirs).
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub const ENV_CONFIG_DIR: &str = "CAMPAIGN_STUDIO_CONFIG_DIR";
pub const ENV_DATA_DIR: &str = "CAMPAIGN_STUDIO_DATA_DIR";
pub const ENV_CACHE_DIR: &str = "CAMPAIGN_STUDIO_CACHE_DIR";

#[derive(Debug, Clone)]
pub struct Paths {
    /// User configuration (`config.toml`).
    pub config_dir: PathBuf,
    /// The library database, originals, thumbnails, logs.
    pub data_dir: PathBuf,
    /// Downloaded models live here, so a fresh data dir reuses them.
    pub cache_dir: PathBuf,
}

impl Paths {
    /// XDG defaults, then env overrides, then explicit overrides (CLI flags).
    pub fn resolve(data_dir: Option<PathBuf>, cache_dir: Option<PathBuf>) -> Result<Self> {
        let dirs = directories::ProjectDirs::from("", "", "campaign-studio");
        let pick = |flag: Option<PathBuf>, env: &str, default: Option<PathBuf>| {
            flag.or_else(|| {
                std::env::var_os(env)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or(default)
            .ok_or_else(|| {
                Error::Config(format!(
                    "no home directory to derive a default path from; set {env}"
                ))
            })
        };
        Ok(Paths {
            config_dir: pick(
                None,
                ENV_CONFIG_DIR,
                dirs.as_ref().map(|d| d.config_dir().to_path_buf()),
            )?,
            data_dir: pick(
                data_dir,
                ENV_DATA_DIR,
                dirs.as_ref().map(|d| d.data_dir().to_path_buf()),
            )?,
            cache_dir: pick(
                cache_dir,
                ENV_CACHE_DIR,
                dirs.as_ref().map(|d| d.cache_dir().to_path_buf()),
            )?,
        })
    }

    pub fn for_dirs(config: &Path, data: &Path, cache: &Path) -> Self {
        Paths {
            config_dir: config.to_path_buf(),
            data_dir: data.to_path_buf(),
            cache_dir: cache.to_path_buf(),
        }
    }

    pub fn user_config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
    pub fn models_dir(&self) -> PathBuf {
        self.cache_dir.join("models")
    }
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("library.sqlite3")
    }
    pub fn originals_dir(&self) -> PathBuf {
        self.data_dir.join("originals")
    }
    pub fn thumbnails_dir(&self) -> PathBuf {
        self.data_dir.join("thumbnails")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    /// `<dir>/<first two hex chars>/<hash>.<ext>`: content-addressed, so the same bytes are
    /// stored once whatever their name.
    pub fn content_path(dir: &Path, sha256: &str, ext: &str) -> PathBuf {
        dir.join(&sha256[..2]).join(format!("{sha256}.{ext}"))
    }
}
