//! Runs the studio's effects against the engine and reports back as actions. No terminal here:
//! the TUI runs it on a worker thread, tests call it directly with fake services.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::app::action::OpenedCampaign;
use crate::app::state::SessionView;
use crate::app::{Action, Effect, JobId};
use crate::domain::{BrandKit, Campaign};
use crate::engine::campaign::{self, NewCampaign, RecommendOptions};
use crate::engine::generate::{self, GenerateOptions};
use crate::engine::ingest::{self, IngestOptions};
use crate::engine::{Library, export, moodboard, prompt};
use crate::services::cancel::CancelToken;
use crate::services::{ImageGenerator, PromptWriter};
use crate::store::Store;
use crate::{Error, Result};

/// The running ingest's job and its stop flag.
type IngestFlag = Option<(JobId, Arc<AtomicBool>)>;

/// Every job's cancel token; shared between the UI thread and the workers. A job cancelled
/// before it starts is skipped; one cancelled while it runs stops at the next check of its
/// token (`services::cancel`), its in-flight cloud call dropped.
#[derive(Clone, Default)]
pub struct Cancellation {
    jobs: Arc<Mutex<HashMap<JobId, CancelToken>>>,
    ingest: Arc<Mutex<IngestFlag>>,
}

impl Cancellation {
    pub fn cancel(&self, job: JobId) {
        if let Ok(mut j) = self.jobs.lock() {
            j.entry(job).or_default().cancel();
        }
        if let Ok(i) = self.ingest.lock()
            && let Some((id, flag)) = i.as_ref()
            && *id == job
        {
            flag.store(true, Ordering::Relaxed);
        }
    }
    pub fn is_cancelled(&self, job: JobId) -> bool {
        self.jobs
            .lock()
            .map(|j| j.get(&job).is_some_and(CancelToken::is_cancelled))
            .unwrap_or(false)
    }

    /// Job `job`'s token (made on first ask).
    pub fn token(&self, job: JobId) -> CancelToken {
        self.jobs
            .lock()
            .map(|mut j| j.entry(job).or_default().clone())
            .unwrap_or_default()
    }

    /// Forgets a finished job's token.
    fn finished(&self, job: JobId) {
        if let Ok(mut j) = self.jobs.lock() {
            j.remove(&job);
        }
    }
}

pub struct Runner {
    pub lib: Library,
    pub generator: Option<Box<dyn ImageGenerator>>,
    pub writer: std::result::Result<Box<dyn PromptWriter>, String>,
    pub cancellation: Cancellation,
}

/// Brand kits: every `*.toml` in `<config dir>/brands`, sorted by file name. A bad file is
/// reported by name and skipped.
pub fn load_brand_kits(dir: &std::path::Path) -> (Vec<BrandKit>, Vec<String>) {
    let mut kits = Vec::new();
    let mut errors = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (kits, errors);
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for f in files {
        match campaign::load_brand_kit(&f) {
            Ok(k) => kits.push(k),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (kits, errors)
}

/// Writes a session view (the persistence actor's one job).
pub fn save_view(store: &Store, campaign_id: &str, view: &SessionView) -> Result<()> {
    let json = serde_json::to_string(view)?;
    store.set_view(campaign_id, &json)
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "campaign".into() } else { s }
}

impl Runner {
    /// The writer is the configured one; if it cannot be made (a cloud writer without a
    /// region, say), writing a prompt fails with that reason.
    pub fn new(lib: Library, generator: Option<Box<dyn ImageGenerator>>) -> Self {
        let writer = lib.prompt_writer().map_err(|e| e.to_string());
        Runner {
            lib,
            generator,
            writer,
            cancellation: Cancellation::default(),
        }
    }

    fn opened(&self, c: Campaign) -> Result<OpenedCampaign> {
        let store = &self.lib.store;
        let view = store
            .view(&c.id)?
            .and_then(|j| serde_json::from_str::<SessionView>(&j).ok());
        let last = store.runs(&c.id)?.pop();
        Ok(OpenedCampaign {
            query: last.as_ref().map(|r| r.query.clone()).unwrap_or_default(),
            widen_offer: last
                .as_ref()
                .and_then(|r| campaign::widen_offer_of(&self.lib, &c, r)),
            read_as: last
                .as_ref()
                .and_then(|r| r.searched_as.as_ref())
                .and_then(|s| s.describe()),
            hits: last.map(|r| r.hits).unwrap_or_default(),
            versions: store.prompt_versions(&c.id)?,
            gallery: store.generated_images(&c.id)?,
            view,
            campaign: c,
        })
    }

    /// Runs one effect; results (and failures, as `JobFailed`) go to `emit`.
    pub fn run(&mut self, effect: Effect, emit: &mut dyn FnMut(Action)) {
        let job = match &effect {
            Effect::Search { job, .. }
            | Effect::WritePrompt { job, .. }
            | Effect::Generate { job, .. }
            | Effect::Ingest { job, .. } => *job,
            _ => 0,
        };
        if job != 0 && self.cancellation.is_cancelled(job) {
            self.cancellation.finished(job);
            return;
        }
        let token = if job == 0 {
            CancelToken::new()
        } else {
            self.cancellation.token(job)
        };
        let result = crate::services::cancel::scoped(&token, || self.try_run(effect, emit));
        if job != 0 {
            self.cancellation.finished(job);
        }
        match result {
            Ok(()) => {}
            // The studio said "Cancelled." when the user asked; nothing was saved.
            Err(Error::Cancelled) => tracing::info!(job, "studio job cancelled"),
            Err(e) => {
                tracing::error!(error = %e, "studio job failed");
                emit(Action::JobFailed {
                    job,
                    error: e.to_string(),
                });
            }
        }
    }

    /// Whether an effect is a long job, run on its own worker so that it never holds up a
    /// search or a load behind it.
    pub fn is_long(effect: &Effect) -> bool {
        matches!(
            effect,
            Effect::WritePrompt { .. }
                | Effect::Generate { .. }
                | Effect::Ingest { .. }
                | Effect::MoodBoard { .. }
        )
    }

    fn try_run(&mut self, effect: Effect, emit: &mut dyn FnMut(Action)) -> Result<()> {
        let lib = &mut self.lib;
        match effect {
            Effect::Quit | Effect::Suspend | Effect::CancelJob(_) | Effect::Copy(_) => {}
            Effect::LoadCampaigns => emit(Action::CampaignsLoaded(lib.store.campaigns()?)),
            Effect::LoadBrands => {
                let (kits, errors) = load_brand_kits(&lib.paths.config_dir.join("brands"));
                emit(Action::BrandsLoaded(kits));
                if !errors.is_empty() {
                    emit(Action::JobFailed {
                        job: 0,
                        error: format!("brand kit skipped: {}", errors.join("; ")),
                    });
                }
            }
            Effect::LoadStats => {
                emit(Action::StatsLoaded(Box::new(lib.store.stats()?)));
                emit(Action::IndexStatus(index_status(lib)));
            }
            Effect::LoadAssets => emit(Action::AssetsLoaded(lib.store.list(
                &Default::default(),
                500,
                0,
            )?)),
            Effect::OpenCampaign(id) => {
                let c = lib.store.resolve_campaign(&id)?;
                emit(Action::CampaignOpened(Box::new(self.opened(c)?)));
            }
            Effect::RenameCampaign { campaign_id, name } => {
                lib.store.rename_campaign(&campaign_id, &name)?;
            }
            Effect::DeleteCampaign(id) => {
                for f in lib.store.delete_campaign(&id)? {
                    let _ = std::fs::remove_file(f);
                }
                emit(Action::Notice("Campaign deleted.".into()));
            }
            Effect::ExportCampaign(id) => {
                let c = lib.store.resolve_campaign(&id)?;
                let out = lib.paths.data_dir.join("exports").join(format!(
                    "{}-{}",
                    slug(&c.name),
                    &c.id[..8.min(c.id.len())]
                ));
                let r = export::export(lib, &c, &out, None)?;
                emit(Action::Exported {
                    summary: format!(
                        "Exported {} image(s), {} reference(s), {} prompt version(s) to {}",
                        r.images, r.references, r.prompt_versions, r.dir
                    ),
                    dir: r.dir.to_string(),
                });
            }
            Effect::Search {
                job,
                campaign_id,
                name,
                brief,
                objective,
                node,
                brand,
                query,
                like,
                k,
                kpi_weight,
                widen,
            } => {
                let existing = campaign_id.and_then(|id| lib.store.campaign(&id).ok().flatten());
                let c = match existing {
                    Some(c)
                        if c.brief == brief
                            && c.objective == objective
                            && c.node == node
                            && c.brand == brand =>
                    {
                        if c.name != name {
                            lib.store.rename_campaign(&c.id, &name)?;
                        }
                        c
                    }
                    // A changed brief is a new campaign version: the old one keeps its history.
                    _ => campaign::create(
                        lib,
                        NewCampaign {
                            name,
                            brief,
                            objective,
                            node,
                            brand,
                        },
                    )?,
                };
                let opts = RecommendOptions {
                    k,
                    query,
                    kpi_weight,
                    rerank_factor: lib.config.search.rerank_factor,
                    widen,
                };
                let run = match like {
                    Some(asset) => campaign::recommend_like(lib, &c, &asset, &opts)?,
                    None => {
                        let embedder = lib.text_embedder()?;
                        let index = lib.search_index(embedder.id())?;
                        // Only reached with search.allow_partial_index: say what cannot be
                        // found.
                        if let Some(partial) = lib.index_coverage(embedder.id())? {
                            emit(Action::Notice(format!("Warning: {partial}")));
                        }
                        if self.cancellation.is_cancelled(job) {
                            return Ok(());
                        }
                        campaign::recommend(lib, &c, index.as_ref(), embedder.as_ref(), &opts)?
                    }
                };
                let c = lib.store.campaign(&c.id)?.unwrap_or(c);
                emit(Action::SearchDone {
                    job,
                    widen_offer: campaign::widen_offer_of(lib, &c, &run),
                    read_as: run.searched_as.as_ref().and_then(|s| s.describe()),
                    campaign: Box::new(c),
                    hits: run.hits,
                    query: run.query,
                });
            }
            Effect::SaveSelection {
                campaign_id,
                selected,
            } => lib.store.set_selection(&campaign_id, &selected)?,
            Effect::WritePrompt {
                job,
                campaign_id,
                instruction,
            } => {
                let c = lib.store.resolve_campaign(&campaign_id)?;
                let max = lib.config.prompt.max_chars;
                let cancellation = self.cancellation.clone();
                let writer = self
                    .writer
                    .as_ref()
                    .map_err(|e| Error::Config(format!("prompt.writer: {e}")))?;
                let v =
                    prompt::write_prompt(lib, &c, writer.as_ref(), instruction, max, &mut |e| {
                        if !cancellation.is_cancelled(job) {
                            emit(Action::PromptStream { job, event: e });
                        }
                    })?;
                emit(Action::PromptDone {
                    job,
                    version: Box::new(v),
                });
            }
            Effect::SavePromptEdit {
                campaign_id,
                prompt: text,
                negative,
            } => {
                let c = lib.store.resolve_campaign(&campaign_id)?;
                let v = prompt::edit(lib, &c, &text, Some(&negative))?;
                emit(Action::PromptSaved(Box::new(v)));
            }
            Effect::RestorePrompt { campaign_id } => {
                let c = lib.store.resolve_campaign(&campaign_id)?;
                let v = prompt::restore(lib, &c)?;
                emit(Action::PromptSaved(Box::new(v)));
            }
            Effect::Generate {
                job,
                campaign_id,
                params,
            } => {
                let Some(generator) = self.generator.as_deref() else {
                    return Err(Error::Invalid(generate::no_generator_message(&campaign_id)));
                };
                let c = lib.store.resolve_campaign(&campaign_id)?;
                let (images, withheld) = generate::generate_with_notes(
                    lib,
                    &c,
                    generator,
                    &GenerateOptions {
                        count: params.count,
                        size: None,
                        aspect: Some(params.aspect),
                        seed: params.seed,
                        cfg_scale: params.cfg_scale,
                        quality: params.quality,
                        negative: params.negative,
                        task: params.task,
                        similarity_strength: None,
                    },
                )?;
                if self.cancellation.is_cancelled(job) {
                    // Paid for before the cancel: kept, and said so.
                    emit(Action::KeptAfterCancel {
                        campaign_id: c.id.clone(),
                        images,
                    });
                } else {
                    emit(Action::Generated {
                        job,
                        images,
                        withheld,
                    });
                }
            }
            Effect::MoodBoard { campaign_id } => {
                let c = lib.store.resolve_campaign(&campaign_id)?;
                let out = lib
                    .paths
                    .data_dir
                    .join("moodboards")
                    .join(format!("{}.png", c.id));
                moodboard::render(lib, &c, &out)?;
                emit(Action::Notice(format!(
                    "Mood board written to {} (not a generated image).",
                    out.display()
                )));
            }
            Effect::Ingest {
                job,
                folder,
                objective,
                node,
            } => {
                let root = PathBuf::from(shellexpand_home(&folder));
                let manifest = ["manifest.jsonl", "manifest.csv"]
                    .iter()
                    .map(|m| root.join(m))
                    .find(|m| m.is_file());
                let flag = Arc::new(AtomicBool::new(false));
                if let Ok(mut i) = self.cancellation.ingest.lock() {
                    *i = Some((job, flag.clone()));
                }
                let opts = IngestOptions {
                    root,
                    manifest,
                    jobs: lib.config.library.ingest_jobs,
                    cancel: Some(flag),
                    objective: Some(objective),
                    node: Some(node),
                    ..Default::default()
                };
                let report = ingest::ingest(lib, &opts, &mut |event| {
                    emit(Action::IngestProgress { job, event })
                })?;
                emit(Action::IngestDone { job, report });
            }
            Effect::SaveView { campaign_id, view } => save_view(&lib.store, &campaign_id, &view)?,
        }
        Ok(())
    }
}

/// `~/x` -> `$HOME/x` (people type paths that way).
fn shellexpand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

/// "index: embedded", or "index: opensearch · 3 unsynced" (counted from the library's own
/// marks: no network call).
pub fn index_status(lib: &Library) -> String {
    match lib.vector_backend() {
        Ok(None) => "index: embedded".into(),
        Ok(Some(b)) => {
            let kind = b.info().kind;
            match crate::engine::sync::unsynced(lib, b.as_ref()) {
                Ok(u) => {
                    let n: u64 = u.iter().map(|(_, n)| n).sum();
                    if n == 0 {
                        format!("index: {kind}")
                    } else {
                        format!("index: {kind} · {n} unsynced")
                    }
                }
                Err(_) => format!("index: {kind} · unsynced unknown"),
            }
        }
        Err(_) => "index: not reachable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_home() {
        assert_eq!(slug("Summer Sale: 2026!"), "summer-sale--2026");
        assert_eq!(slug("¡!"), "campaign");
        assert!(!shellexpand_home("~/x").starts_with('~') || std::env::var("HOME").is_err());
    }
}
