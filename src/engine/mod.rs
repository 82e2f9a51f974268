//! Use cases shared by the CLI and (later) the TUI, each a function over the service traits.
pub mod campaign;
pub mod cost;
pub mod export;
pub mod generate;
pub mod import;
pub mod inferred;
pub mod ingest;
pub mod live;
pub mod manifest;
pub mod moodboard;
pub mod prompt;
pub mod reindex;
pub mod search;
pub mod sync;

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::domain::EmbedderId;
use crate::models::ModelFiles;
use crate::paths::Paths;
use crate::services::local::describer::LocalDescriber;
use crate::services::local::e5::{self, E5};
use crate::services::local::efficientnet::{self, EfficientNetLite0};
use crate::services::local::exact_index::ExactIndex;
use crate::services::local::minilm::{self, MiniLm};
use crate::services::local::smollm::SmolLm;
use crate::services::{Embedder, ImageAnalyser, VectorMeta};
use crate::store::Store;
use crate::{Error, Result};

/// Query embeddings a session keeps (a few KB each).
const QUERY_CACHE_ENTRIES: usize = 256;

/// The open library: configuration, store, and services loaded on first use (a re-run that
/// finds nothing to do never loads a model).
pub struct Library {
    pub paths: Paths,
    pub config: Config,
    pub store: Store,
    models: ModelFiles,
    text: Mutex<Option<Arc<dyn Embedder>>>,
    analyser: Mutex<Option<Arc<dyn ImageAnalyser>>>,
    small_lm: Mutex<Option<Arc<SmolLm>>>,
    bedrock: Mutex<Option<Arc<crate::services::bedrock::Bedrock>>>,
    /// Every paid model call, until the engine stores it with what it was for.
    pub meter: Arc<crate::services::meter::Meter>,
    /// The server index backend (`index.backend`), made on first use.
    backend: Mutex<Option<Arc<dyn crate::services::VectorBackend>>>,
    pub describer: LocalDescriber,
    /// The embedded index of each embedder, opened once and kept up to date (engine::live).
    live: live::LiveIndexes,
}

impl Drop for Library {
    fn drop(&mut self) {
        self.live.finish();
    }
}

impl Library {
    pub fn open(paths: Paths, config: Config) -> Result<Self> {
        let store = Store::open(&paths.database())?;
        let models = ModelFiles::new(paths.models_dir());
        let describer = LocalDescriber {
            min_prob: config.models.label_min_prob,
        };
        Ok(Library {
            paths,
            config,
            store,
            models,
            text: Mutex::new(None),
            analyser: Mutex::new(None),
            small_lm: Mutex::new(None),
            bedrock: Mutex::new(None),
            meter: Arc::default(),
            backend: Mutex::new(None),
            describer,
            live: live::LiveIndexes::default(),
        })
    }

    /// The server backend `index.backend` names; None for the embedded index.
    pub fn vector_backend(&self) -> Result<Option<Arc<dyn crate::services::VectorBackend>>> {
        let mut g = self.backend.lock().map_err(poisoned)?;
        if let Some(b) = g.as_ref() {
            return Ok(Some(b.clone()));
        }
        let b: Arc<dyn crate::services::VectorBackend> = match self.config.index.backend.as_str() {
            "opensearch" => Arc::new(crate::services::opensearch::OpenSearch::new(
                &self.config.index,
            )?),
            "s3vectors" => Arc::new(crate::services::s3vectors::S3Vectors::new(
                &self.config.index,
            )?),
            _ => return Ok(None),
        };
        *g = Some(b.clone());
        Ok(Some(b))
    }

    /// Uses `backend` as the library's server backend (tests give a fake or a configured one).
    pub fn use_vector_backend(
        &self,
        backend: Arc<dyn crate::services::VectorBackend>,
    ) -> Result<()> {
        *self.backend.lock().map_err(poisoned)? = Some(backend);
        Ok(())
    }

    /// The index searches of `embedder` read: the server's when a backend is configured (it
    /// must exist: `library sync` makes it), else the embedded exact index read from the store.
    pub fn search_index(
        &self,
        embedder: &EmbedderId,
    ) -> Result<Box<dyn crate::services::VectorIndex>> {
        if let Some(partial) = self.index_coverage(embedder)? {
            if !self.config.search.allow_partial_index {
                return Err(partial);
            }
            tracing::warn!(%partial, "searching a partial index");
        }
        match self.vector_backend()? {
            None => Ok(Box::new(self.embedded_index(embedder)?)),
            Some(b) => {
                if self.store.vector_dim(embedder)?.is_none() && self.store.count()? > 0 {
                    // Same message as the embedded index: the library lacks these vectors.
                    self.load_index(embedder)?;
                }
                match crate::engine::sync::spec(self, embedder) {
                    Ok(spec) => b.open(&spec, false),
                    // An empty library: an empty embedded index answers every search.
                    Err(Error::NotFound(_)) => Ok(Box::new(self.load_index(embedder)?)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// `Some(Error::IndexIncomplete)` when `embedder`'s vectors cover some but not all of the
    /// library's assets (none at all is `EmbedderMismatch`, raised where the index is read):
    /// searches refuse it unless `search.allow_partial_index`, and callers that allow it show
    /// the error's words as a warning.
    pub fn index_coverage(&self, embedder: &EmbedderId) -> Result<Option<Error>> {
        let total = self.store.count()?;
        let have = self.store.vector_count(embedder)?;
        Ok((have > 0 && have < total).then(|| Error::IndexIncomplete {
            embedder: embedder.to_string(),
            have,
            total,
        }))
    }

    /// With `index.sync = "inline"` and a server backend: pushes what changed to the text
    /// embedder's server index. A server that cannot be reached leaves the changes committed
    /// locally and counted as unsynced (`doctor`, the studio's status line): the failure is
    /// logged and returned as a note, never an error of the write that came before.
    pub fn sync_inline(&self) -> Option<String> {
        self.sync_inline_for(&self.text_embedder_id())
    }

    /// `sync_inline` for one embedder's index (a reindex pushes the embedder it made).
    pub fn sync_inline_for(&self, embedder: &EmbedderId) -> Option<String> {
        if self.config.index.sync != "inline" {
            return None;
        }
        let backend = match self.vector_backend() {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => return Some(format!("not synced to the server index: {e}")),
        };
        let embedder = embedder.clone();
        // Nothing of this embedder's in the library yet: nothing to push.
        self.store.vector_dim(&embedder).ok().flatten()?;
        match crate::engine::sync::sync(
            self,
            backend.as_ref(),
            &embedder,
            &crate::engine::sync::SyncOptions::default(),
            &mut |_, _| {},
        ) {
            Ok(r) if r.failed.is_empty() => None,
            Ok(r) => Some(format!(
                "{} vector(s) refused by the server index ({}); run `campaign-studio library sync`",
                r.failed.len(),
                r.failed[0].reason
            )),
            Err(e) => {
                tracing::warn!(error = %e, "inline sync failed; changes stay unsynced");
                Some(format!(
                    "changes saved locally but not synced to the server index ({e}); run `campaign-studio library sync` when it is reachable"
                ))
            }
        }
    }

    /// Uses `analyser` as the library's image analyser (tests give a deterministic one).
    pub fn use_analyser(&self, analyser: Arc<dyn ImageAnalyser>) -> Result<()> {
        *self.analyser.lock().map_err(poisoned)? = Some(analyser);
        Ok(())
    }

    /// Uses `bedrock` as the library's Bedrock client (tests give one with static credentials
    /// and a fake endpoint; it must share `self.meter`, see `Library::bedrock_with`).
    pub fn use_bedrock(&self, bedrock: Arc<crate::services::bedrock::Bedrock>) -> Result<()> {
        *self.bedrock.lock().map_err(poisoned)? = Some(bedrock);
        Ok(())
    }

    /// A Bedrock client from the library's `[bedrock]` with the given credentials, recording
    /// into the library's meter, made the library's client.
    pub fn bedrock_with(
        &self,
        credentials: aws_credential_types::Credentials,
    ) -> Result<Arc<crate::services::bedrock::Bedrock>> {
        let b = Arc::new(crate::services::bedrock::Bedrock::with_credentials(
            &self.config.bedrock,
            self.meter.clone(),
            credentials,
        )?);
        self.use_bedrock(b.clone())?;
        Ok(b)
    }

    /// Stores the paid calls this thread made since it last did, as made for `campaign` (or
    /// for the library when None). Called whether the use case succeeded or not.
    pub fn store_model_calls(&self, campaign: Option<&str>, what: &str) -> Result<Vec<i64>> {
        let calls = self.meter.take_this_thread();
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.store.insert_model_calls(campaign, what, &calls)
    }

    /// A library whose services are given (tests use the deterministic fakes).
    pub fn with_services(
        paths: Paths,
        config: Config,
        text: Arc<dyn Embedder>,
        analyser: Arc<dyn ImageAnalyser>,
    ) -> Result<Self> {
        let lib = Self::open(paths, config)?;
        *lib.text.lock().map_err(poisoned)? = Some(text);
        *lib.analyser.lock().map_err(poisoned)? = Some(analyser);
        Ok(lib)
    }

    /// The configured text embedder's id, known without loading it.
    pub fn text_embedder_id(&self) -> EmbedderId {
        if let Ok(g) = self.text.lock()
            && let Some(e) = g.as_ref()
        {
            return e.id().clone();
        }
        EmbedderId::new(&self.config.models.text_embedder)
    }

    pub fn text_embedder(&self) -> Result<Arc<dyn Embedder>> {
        let mut g = self.text.lock().map_err(poisoned)?;
        if let Some(e) = g.as_ref() {
            return Ok(e.clone());
        }
        let e = self.make_embedder(&self.config.models.text_embedder)?;
        // Repeated queries in a session (a re-run search, a brief searched again) are embedded
        // once.
        let e: Arc<dyn Embedder> = Arc::new(crate::services::query_cache::QueryCache::new(
            e,
            QUERY_CACHE_ENTRIES,
        ));
        *g = Some(e.clone());
        Ok(e)
    }

    /// The embedder an id names (for `library reindex`); the configured one is shared.
    pub fn embedder_for(&self, id: &str) -> Result<Arc<dyn Embedder>> {
        if id == self.text_embedder_id().as_str() {
            return self.text_embedder();
        }
        self.make_embedder(id)
    }

    fn make_embedder(&self, id: &str) -> Result<Arc<dyn Embedder>> {
        let e: Arc<dyn Embedder> = match id {
            minilm::EMBEDDER_ID => {
                let t = std::time::Instant::now();
                let m = MiniLm::load(&self.models.minilm_dir()?)?;
                tracing::info!(ms = t.elapsed().as_millis() as u64, "loaded MiniLM");
                Arc::new(m)
            }
            e5::EMBEDDER_ID => {
                let t = std::time::Instant::now();
                let m = E5::load(&self.models.e5_small()?)?;
                tracing::info!(
                    ms = t.elapsed().as_millis() as u64,
                    "loaded multilingual-e5-small"
                );
                Arc::new(m)
            }
            cloud if cloud.starts_with(crate::services::bedrock::titan::PREFIX) => {
                crate::services::bedrock::embedder(
                    self.bedrock()?,
                    cloud,
                    &self.config.bedrock.models,
                )?
            }
            other => {
                return Err(Error::Config(format!(
                    "key 'models.text_embedder': unknown embedder '{other}' (available: {}, {}, bedrock/amazon.titan-embed-image-v1/<256|384|1024>, bedrock/amazon.nova-2-multimodal-embeddings-v1:0/generic/<256|384|1024|3072>)",
                    e5::EMBEDDER_ID,
                    minilm::EMBEDDER_ID
                )));
            }
        };
        Ok(e)
    }

    pub fn analyser(&self) -> Result<Arc<dyn ImageAnalyser>> {
        let mut g = self.analyser.lock().map_err(poisoned)?;
        if let Some(a) = g.as_ref() {
            return Ok(a.clone());
        }
        let t = std::time::Instant::now();
        let a: Arc<dyn ImageAnalyser> = Arc::new(EfficientNetLite0::load(
            &self.models.efficientnet_weights()?,
            &self.models.imagenet_names()?,
        )?);
        tracing::info!(
            ms = t.elapsed().as_millis() as u64,
            "loaded EfficientNet-Lite0"
        );
        *g = Some(a.clone());
        Ok(a)
    }

    /// The Bedrock client (`[bedrock]`), made on first use.
    pub fn bedrock(&self) -> Result<Arc<crate::services::bedrock::Bedrock>> {
        let mut g = self.bedrock.lock().map_err(poisoned)?;
        if let Some(b) = g.as_ref() {
            return Ok(b.clone());
        }
        let b = Arc::new(crate::services::bedrock::Bedrock::new(
            &self.config.bedrock,
            self.meter.clone(),
        )?);
        *g = Some(b.clone());
        Ok(b)
    }

    /// The cloud image describer `models.describer` names; None for "local".
    pub fn image_describer(&self) -> Result<Option<Arc<dyn crate::services::ImageDescriber>>> {
        if !self.config.bedrock_describer() {
            return Ok(None);
        }
        let b = self.bedrock()?;
        let route = b.route("describer", &self.config.bedrock.models.describer)?;
        Ok(Some(Arc::new(
            crate::services::bedrock::describe::NovaDescriber::new(b, route),
        )))
    }

    /// The image generator `generator.backend` names (sharing the library's Bedrock client).
    pub fn image_generator(&self) -> Result<Option<Box<dyn crate::services::ImageGenerator>>> {
        crate::services::generator_using(&self.config, &|| self.bedrock())
    }

    /// The prompt writer `prompt.writer` names.
    pub fn prompt_writer(&self) -> Result<Box<dyn crate::services::PromptWriter>> {
        if !self.config.bedrock_writer() {
            return Ok(Box::new(crate::services::local::composer::Composer));
        }
        use crate::services::bedrock::nova::{Effort, NovaWriter};
        let b = self.bedrock()?;
        let route = b.route("writer", &self.config.bedrock.models.writer)?;
        let effort = Effort::parse(&self.config.bedrock.reasoning_effort).unwrap_or(Effort::Low);
        Ok(Box::new(NovaWriter::new(b, route, effort)))
    }

    /// SmolLM2-135M, the small local language model (loaded on first use).
    pub fn small_lm(&self) -> Result<Arc<SmolLm>> {
        let mut g = self.small_lm.lock().map_err(poisoned)?;
        if let Some(m) = g.as_ref() {
            return Ok(m.clone());
        }
        let t = std::time::Instant::now();
        let m = Arc::new(SmolLm::load(&self.models.smollm2_gguf()?)?);
        tracing::info!(ms = t.elapsed().as_millis() as u64, "loaded SmolLM2-135M");
        *g = Some(m.clone());
        Ok(m)
    }

    pub fn image_features_id(&self) -> EmbedderId {
        if let Ok(g) = self.analyser.lock()
            && let Some(a) = g.as_ref()
        {
            return a.features_id().clone();
        }
        EmbedderId::new(efficientnet::FEATURES_ID)
    }

    /// Loads the in-memory index of one embedder's vectors from the store. A library that has
    /// vectors, but none from this embedder, is an error naming the fix (never a silent
    /// comparison across embedders).
    pub fn load_index(&self, embedder: &EmbedderId) -> Result<ExactIndex> {
        let t = std::time::Instant::now();
        let vectors = self.store.vectors(embedder)?;
        let read_ms = t.elapsed().as_millis() as u64;
        if vectors.is_empty() && self.store.count()? > 0 {
            let have: Vec<String> = self
                .store
                .embedder_counts()?
                .into_iter()
                .map(|(e, n)| format!("{e} ({n})"))
                .collect();
            return Err(Error::EmbedderMismatch {
                wanted: embedder.to_string(),
                have: have.join(", "),
            });
        }
        let dim = vectors.first().map(|v| v.vector.len()).unwrap_or(0);
        let mut ix = ExactIndex::new(
            embedder.clone(),
            dim,
            self.config.search.storage_for(vectors.len(), dim),
            self.config.search.threads,
        );
        ix.reserve(vectors.len());
        for v in vectors {
            ix.put(
                &v.asset_id,
                &v.vector,
                VectorMeta {
                    objective: v.objective,
                    node: v.node,
                    kpi: v.kpi,
                },
                v.seq,
            )?;
        }
        ix.rebuild_sketches();
        tracing::info!(
            embedder = %embedder,
            vectors = ix.len(),
            storage = ?ix.storage(),
            read_ms,
            total_ms = t.elapsed().as_millis() as u64,
            "index loaded"
        );
        Ok(ix)
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Inference("a model loader panicked earlier in this process".into())
}
