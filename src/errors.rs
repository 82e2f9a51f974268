//! Library errors. Each names the item and the reason, so the CLI and the TUI can show it as is.
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),

    #[error(
        "model '{name}' is not installed (expected {path}); run `campaign-studio models fetch`"
    )]
    ModelMissing { name: String, path: PathBuf },

    #[error(
        "model '{name}' is damaged ({reason}) in {path}; run `campaign-studio models fetch` to fetch it again"
    )]
    ModelDamaged {
        name: String,
        path: PathBuf,
        reason: String,
    },

    #[error("models fetch: {0}")]
    Fetch(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("store: {0}")]
    Store(#[from] rusqlite::Error),

    #[error("inference: {0}")]
    Inference(String),

    #[error("{0}")]
    Invalid(String),

    #[error(
        "the library has no vectors from embedder '{wanted}' (it has: {have}); run `campaign-studio library reindex --embedder {wanted}`, or set models.text_embedder back to the embedder the library was built with"
    )]
    EmbedderMismatch { wanted: String, have: String },

    #[error(
        "the library's vectors from embedder '{embedder}' cover {have} of its {total} assets (a reindex or an ingest stopped half-way), so a search would silently miss {missing}; run `campaign-studio library reindex --embedder {embedder}` to finish it, or pass --allow-partial-index (search.allow_partial_index = true) to search the {have} anyway",
        missing = total.saturating_sub(*have)
    )]
    IndexIncomplete {
        embedder: String,
        have: u64,
        total: u64,
    },

    /// The user cancelled the job; nothing of it was saved (unless the message says what was
    /// kept because it was already paid for).
    #[error("cancelled")]
    Cancelled,

    #[error("not found: {0}")]
    NotFound(String),

    /// A cloud call failed; the text says which model, what happened and what to do.
    #[error("{0}")]
    Cloud(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Inference(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(format!("JSON: {e}"))
    }
}
