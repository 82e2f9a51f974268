//! `campaign-studio campaign ...`: the headless campaign flow.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use campaign_studio::domain::Campaign;
use campaign_studio::engine::Library;
use campaign_studio::engine::campaign::{self, NewCampaign, RecommendOptions};
use campaign_studio::engine::{export, generate, moodboard, prompt};
use campaign_studio::services::local::rephrase::Rephrased;
use campaign_studio::services::{PromptEvent, PromptWriter};

use super::{Ctx, print_hits_of, print_searched_as, stdout_line};

#[derive(Subcommand, Debug)]
pub enum CampaignCmd {
    /// Create a campaign from a brief, an objective and an audience node.
    New(NewArgs),
    /// List campaigns, most recently changed first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Everything a campaign holds: brief, runs, references, prompt versions.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Rename a campaign.
    Rename {
        id: String,
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a campaign and everything it holds.
    Delete {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Find references: filtered k-NN with the campaign's objective and node (query = the brief).
    Recommend {
        id: String,
        /// How many references, 1..=1000 (default: search.k).
        #[arg(short, long, value_parser = crate::cli::parse_k)]
        k: Option<usize>,
        /// Search with this text instead of the brief.
        #[arg(long)]
        query: Option<String>,
        #[arg(long)]
        kpi_weight: Option<f32>,
        /// Search even when the text embedder's vectors cover only some of the library's
        /// assets (a reindex stopped half-way). Warns on stderr.
        #[arg(long)]
        allow_partial_index: bool,
        /// When the campaign's objective and audience leave no strong match or fewer than k,
        /// add references from other objectives and audiences, marked as outside its filter.
        #[arg(long)]
        widen: bool,
        #[arg(long)]
        json: bool,
    },
    /// Choose the references to use (manifest ids, files or hashes); --clear to choose none.
    Select {
        id: String,
        #[arg(required_unless_present = "clear")]
        assets: Vec<String>,
        #[arg(long, conflicts_with = "assets")]
        clear: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write a text-to-image prompt from the brief and the selected references. The reasoning
    /// streams to stderr as it is written.
    Prompt {
        id: String,
        /// Re-run with an extra instruction ("make it more playful").
        #[arg(long)]
        instruction: Option<String>,
        /// Then rephrase the prompt with SmolLM2-135M, a small local language model (streamed).
        #[arg(long)]
        rephrase: bool,
        /// Stream JSON Lines events on stdout: {"type":"reasoning"|"answer","delta"}, then
        /// {"type":"result",...}.
        #[arg(long, conflicts_with = "json")]
        stream_json: bool,
        #[arg(long)]
        json: bool,
    },
    /// Store your own version of the prompt.
    PromptEdit {
        id: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        negative: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print a generated image (by id or prefix) or a library asset (manifest id or hash) in
    /// the terminal (kitty, iTerm2 or sixel when the terminal speaks it, else half blocks).
    ShowImage {
        key: String,
        /// Width in terminal cells (default: fit the terminal).
        #[arg(long)]
        width: Option<u32>,
    },
    /// Make the last AI-written prompt current again.
    PromptRestore {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Generate images from the current prompt (needs an image generator; offline there is
    /// none, and this says so and offers `moodboard`).
    Generate(GenerateArgs),
    /// A PNG sheet of the selected references, their colours and the prompt, titled "mood board".
    Moodboard {
        id: String,
        /// Where to write it (default: <data dir>/moodboards/<campaign id>.png).
        #[arg(long, value_name = "FILE.png")]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Write images, campaign.json and a self-contained index.html contact sheet to a folder.
    Export {
        id: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Record the real result (KPI) of a generated image.
    Results {
        id: String,
        /// The generated image's id (or a prefix of at least 6 characters).
        #[arg(long)]
        image: String,
        #[arg(long)]
        kpi: f64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    id: String,
    /// Images in one call.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    count: u32,
    #[arg(long, requires = "height", conflicts_with = "aspect")]
    width: Option<u32>,
    #[arg(long, requires = "width")]
    height: Option<u32>,
    /// Aspect ratio such as 16:9; the size is the largest the model allows.
    #[arg(long)]
    aspect: Option<String>,
    /// Seed (a random one is drawn and recorded when not given).
    #[arg(long)]
    seed: Option<u32>,
    /// How strictly to follow the prompt.
    #[arg(long, default_value_t = 6.5)]
    cfg: f32,
    #[arg(long, default_value = "standard", value_parser = ["standard", "premium"])]
    quality: String,
    /// Negative prompt (default: the current prompt version's).
    #[arg(long)]
    negative: Option<String>,
    #[arg(long, default_value = "text", value_parser = ["text", "variation", "color-guided"])]
    task: String,
    /// Variation only: how close to the references, 0.2..1.0.
    #[arg(long)]
    similarity: Option<f32>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    #[arg(long)]
    name: String,
    #[arg(
        long,
        required_unless_present = "brief_file",
        conflicts_with = "brief_file"
    )]
    brief: Option<String>,
    #[arg(long, value_name = "FILE")]
    brief_file: Option<PathBuf>,
    #[arg(long)]
    objective: String,
    #[arg(long)]
    node: String,
    /// A brand kit TOML (name, palette, tone, must_include, must_avoid, negative_terms).
    #[arg(long, value_name = "FILE")]
    brand: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

fn print_campaign_line(c: &Campaign) -> Result<()> {
    stdout_line(&format!(
        "{}  {:<28} {:<11} {:<12} {:<14} {}",
        c.id,
        c.name,
        c.step.as_str(),
        c.objective,
        c.node,
        c.updated_at
    ))
}

fn writer(lib: &Library) -> Result<Box<dyn PromptWriter>> {
    Ok(lib.prompt_writer()?)
}

pub fn run(ctx: &Ctx, cmd: CampaignCmd) -> Result<i32> {
    let mut opened = Library::open(ctx.paths.clone(), ctx.config.clone())?;
    let lib = &mut opened;
    match cmd {
        CampaignCmd::New(a) => {
            let brief = match (a.brief, a.brief_file) {
                (Some(b), _) => b,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, None) => bail!("give --brief TEXT or --brief-file FILE"),
            };
            let brand = a
                .brand
                .as_deref()
                .map(campaign::load_brand_kit)
                .transpose()?;
            let c = campaign::create(
                lib,
                NewCampaign {
                    name: a.name,
                    brief,
                    objective: a.objective,
                    node: a.node,
                    brand,
                },
            )?;
            if a.json {
                stdout_line(&serde_json::to_string(&c)?)?;
            } else {
                stdout_line(&format!("created campaign {} ({})", c.id, c.name))?;
            }
        }
        CampaignCmd::List { json } => {
            let all = lib.store.campaigns()?;
            if json {
                stdout_line(&serde_json::to_string(&all)?)?;
            } else {
                for c in &all {
                    print_campaign_line(c)?;
                }
                if all.is_empty() {
                    eprintln!(
                        "no campaigns yet: campaign-studio campaign new --name ... --brief ... --objective ... --node ..."
                    );
                }
            }
        }
        CampaignCmd::Show { id, json } => {
            let c = lib.store.resolve_campaign(&id)?;
            let runs = lib.store.runs(&c.id)?;
            let prompts = lib.store.prompt_versions(&c.id)?;
            let images = lib.store.generated_images(&c.id)?;
            let cost = campaign_studio::engine::cost::campaign_cost(lib, &c)?;
            if json {
                stdout_line(&serde_json::to_string(&json!({
                    "campaign": c, "runs": runs, "prompt_versions": prompts, "generated_images": images,
                    "cost": cost,
                }))?)?;
            } else {
                print_campaign_line(&c)?;
                stdout_line(&format!("brief: {}", c.brief))?;
                if let Some(b) = &c.brand {
                    stdout_line(&format!("brand kit: {}", b.name))?;
                }
                stdout_line(&format!("recommendation runs: {}", runs.len()))?;
                if let Some(said) = runs
                    .last()
                    .and_then(|r| r.searched_as.as_ref())
                    .and_then(|s| s.describe())
                {
                    stdout_line(&format!("  latest run: {said}"))?;
                }
                stdout_line(&format!("selected references: {}", c.selected.len()))?;
                for id in &c.selected {
                    if let Some(a) = lib.store.asset(id)? {
                        stdout_line(&format!(
                            "  {}  {}",
                            a.external_id.as_deref().unwrap_or(&a.file),
                            a.description.description
                        ))?;
                    }
                }
                if let Some(p) = prompts.last() {
                    stdout_line(&format!(
                        "prompt (version {} of {}, {:?}, {}): {}",
                        p.id,
                        prompts.len(),
                        p.source,
                        p.model,
                        p.prompt
                    ))?;
                    stdout_line(&format!("negative: {}", p.negative_prompt))?;
                }
                stdout_line(&format!("generated images: {}", images.len()))?;
                for im in &images {
                    let flag = match &im.novelty {
                        Some(n) if n.too_close => " (too close to an existing asset)",
                        _ => "",
                    };
                    stdout_line(&format!(
                        "  {}  seed {}  {}  kpi {}{flag}",
                        &im.id[..12],
                        im.seed,
                        im.model,
                        im.kpi.map(|k| k.to_string()).unwrap_or_else(|| "-".into())
                    ))?;
                }
                if !cost.lines.is_empty() {
                    stdout_line(&format!(
                        "cost: ${:.4} ({} input and {} output tokens, {} image(s){}){}",
                        cost.usd,
                        cost.input_tokens,
                        cost.output_tokens,
                        cost.images,
                        if cost.withheld > 0 {
                            format!(", {} withheld by the content filter", cost.withheld)
                        } else {
                            String::new()
                        },
                        if cost.unpriced.is_empty() {
                            String::new()
                        } else {
                            format!("; no price for {}", cost.unpriced.join(", "))
                        }
                    ))?;
                    for l in &cost.lines {
                        stdout_line(&format!(
                            "  {:<24} {:<34} {:>6} in {:>6} out {:>2} img  {}",
                            l.what,
                            l.model,
                            l.input_tokens,
                            l.output_tokens,
                            l.images,
                            l.usd
                                .map(|u| format!("${u:.4}"))
                                .unwrap_or_else(|| "unpriced".into())
                        ))?;
                    }
                }
            }
        }
        CampaignCmd::Rename { id, name, json } => {
            let c = lib.store.resolve_campaign(&id)?;
            if name.trim().is_empty() {
                bail!("the new name is empty");
            }
            lib.store.rename_campaign(&c.id, name.trim())?;
            let c = lib.store.resolve_campaign(&c.id)?;
            if json {
                stdout_line(&serde_json::to_string(&c)?)?;
            } else {
                stdout_line(&format!("renamed {} to {}", c.id, c.name))?;
            }
        }
        CampaignCmd::Delete { id, json } => {
            let c = lib.store.resolve_campaign(&id)?;
            let files = lib.store.delete_campaign(&c.id)?;
            for f in &files {
                let _ = std::fs::remove_file(f);
            }
            if json {
                stdout_line(&serde_json::to_string(
                    &json!({"deleted": c.id, "files_removed": files.len()}),
                )?)?;
            } else {
                stdout_line(&format!("deleted campaign {} ({})", c.id, c.name))?;
            }
        }
        CampaignCmd::Recommend {
            id,
            k,
            query,
            kpi_weight,
            allow_partial_index,
            widen,
            json,
        } => {
            lib.config.search.allow_partial_index |= allow_partial_index;
            let c = lib.store.resolve_campaign(&id)?;
            let kpi_weight = kpi_weight.unwrap_or(ctx.config.search.kpi_weight);
            if !(0.0..=1.0).contains(&kpi_weight) {
                bail!("--kpi-weight {kpi_weight}: must be between 0 and 1");
            }
            let embedder = lib.text_embedder()?;
            let index = lib.search_index(embedder.id())?;
            crate::cli::warn_partial_index(lib, embedder.id())?;
            let run = campaign::recommend(
                lib,
                &c,
                index.as_ref(),
                embedder.as_ref(),
                &RecommendOptions {
                    k: k.unwrap_or(ctx.config.search.k),
                    query,
                    kpi_weight,
                    rerank_factor: ctx.config.search.rerank_factor,
                    widen,
                },
            )?;
            let offer = campaign::widen_offer_of(lib, &c, &run);
            if widen && !run.hits.iter().any(|h| h.outside_filter) {
                eprintln!(
                    "nothing to widen: a strong match and k references within the campaign's objective and audience, or nothing outside them"
                );
            }
            if json {
                let widened = run.hits.iter().any(|h| h.outside_filter);
                let mut out = json!({
                    "run": run.id, "query": run.query, "hits": run.hits,
                    "widen_offer": offer, "widened": widened,
                });
                if let Some(read_as) = &run.searched_as {
                    if let Some(l) = read_as.language_offset() {
                        out["language_offset"] = json!(l);
                    }
                    if let Some(t) = read_as.translation() {
                        out["translation"] = json!(t);
                    }
                }
                stdout_line(&serde_json::to_string(&out)?)?;
            } else {
                print_hits_of(
                    &run.query,
                    Some(&c.objective),
                    Some(&c.node),
                    run.kpi_weight,
                    &run.hits,
                )?;
                if let Some(offer) = offer {
                    stdout_line(&format!("  {offer}: add --widen"))?;
                }
                if let Some(read_as) = &run.searched_as {
                    print_searched_as(read_as)?;
                }
                eprintln!(
                    "choose references with: campaign-studio campaign select {} ID...",
                    c.id
                );
            }
        }
        CampaignCmd::Select {
            id,
            assets,
            clear,
            json,
        } => {
            let c = lib.store.resolve_campaign(&id)?;
            let keys = if clear { Vec::new() } else { assets };
            let ids = campaign::select(lib, &c, &keys)?;
            if json {
                stdout_line(&serde_json::to_string(
                    &json!({"campaign": c.id, "selected": ids}),
                )?)?;
            } else {
                stdout_line(&format!("{} reference(s) selected", ids.len()))?;
            }
        }
        CampaignCmd::Prompt {
            id,
            instruction,
            rephrase,
            stream_json,
            json,
        } => {
            let c = lib.store.resolve_campaign(&id)?;
            let base = writer(lib)?;
            let lm = if rephrase {
                Some(lib.small_lm()?)
            } else {
                None
            };
            let rephrased = lm.as_deref().map(|lm| Rephrased::new(base.as_ref(), lm));
            let w: &dyn PromptWriter = match &rephrased {
                Some(r) => r,
                None => base.as_ref(),
            };
            let mut err = std::io::stderr().lock();
            let mut out = std::io::stdout().lock();
            let v = prompt::write_prompt(
                lib,
                &c,
                w,
                instruction,
                ctx.config.prompt.max_chars,
                &mut |e| {
                    if stream_json {
                        let (kind, delta) = match &e {
                            PromptEvent::Reasoning(t) => ("reasoning", t),
                            PromptEvent::Answer(t) => ("answer", t),
                        };
                        let _ = writeln!(out, "{}", json!({"type": kind, "delta": delta}));
                        let _ = out.flush();
                    } else {
                        // The scratchpad streams to stderr; so does a rephrase, token by token.
                        match &e {
                            PromptEvent::Reasoning(t) => {
                                let _ = write!(err, "{t}");
                            }
                            PromptEvent::Answer(t) if rephrase => {
                                let _ = write!(err, "{t}");
                            }
                            PromptEvent::Answer(_) => {}
                        }
                        let _ = err.flush();
                    }
                },
            )?;
            drop(out);
            drop(err);
            let result = json!({
                "version": v.id, "reasoning": v.reasoning, "prompt": v.prompt,
                "negative_prompt": v.negative_prompt, "model": v.model, "flags": v.flags,
                "references": v.references, "instruction": v.instruction,
            });
            if stream_json {
                let mut r = result;
                r["type"] = json!("result");
                stdout_line(&r.to_string())?;
            } else if json {
                stdout_line(&result.to_string())?;
            } else {
                stdout_line(&format!("prompt:   {}", v.prompt))?;
                stdout_line(&format!("negative: {}", v.negative_prompt))?;
                stdout_line(&format!("written by {}", v.model))?;
                for f in &v.flags {
                    stdout_line(&format!("note: {f}"))?;
                }
            }
        }
        CampaignCmd::PromptEdit {
            id,
            text,
            negative,
            json,
        } => {
            let c = lib.store.resolve_campaign(&id)?;
            let v = prompt::edit(lib, &c, &text, negative.as_deref())?;
            if json {
                stdout_line(&serde_json::to_string(&v)?)?;
            } else {
                stdout_line(&format!("stored your prompt as version {}", v.id))?;
            }
        }
        CampaignCmd::ShowImage { key, width } => {
            let (path, caption) = match lib.store.resolve_generated_image(&key) {
                Ok(g) => (
                    g.path.clone(),
                    format!(
                        "generated image {} · seed {} · {}",
                        &g.id[..12],
                        g.seed,
                        g.model
                    ),
                ),
                Err(_) => {
                    let a = lib.store.resolve(&key).with_context(|| {
                        format!("'{key}' is neither a generated image nor a library asset")
                    })?;
                    (
                        a.stored_path.clone(),
                        format!(
                            "library asset {}",
                            a.external_id.clone().unwrap_or(a.file.clone())
                        ),
                    )
                }
            };
            // Ingest's limits: a `reference`-mode original can have changed since.
            let img = campaign_studio::services::local::imaging::open_limited(
                std::path::Path::new(&path),
                campaign_studio::services::local::imaging::ImageLimits::of(&lib.config.library),
            )?;
            let cols = crossterm::terminal::size()
                .map(|(w, _)| w as u32)
                .unwrap_or(80);
            let conf = viuer::Config {
                width: Some(width.unwrap_or(cols.min(100))),
                absolute_offset: false,
                ..Default::default()
            };
            viuer::print(&img, &conf).with_context(|| format!("printing {path}"))?;
            stdout_line(&caption)?;
        }
        CampaignCmd::PromptRestore { id, json } => {
            let c = lib.store.resolve_campaign(&id)?;
            let v = prompt::restore(lib, &c)?;
            if json {
                stdout_line(&serde_json::to_string(&v)?)?;
            } else {
                stdout_line(&format!(
                    "restored the AI prompt as version {}: {}",
                    v.id, v.prompt
                ))?;
            }
        }
        CampaignCmd::Generate(a) => {
            let c = lib.store.resolve_campaign(&a.id)?;
            // Parsed first, so mistakes are reported whatever the backend.
            let opts = generate_options(&a)?;
            if let Some(generator) = lib.image_generator()? {
                let (images, notes) =
                    generate::generate_with_notes(lib, &c, generator.as_ref(), &opts)?;
                for n in &notes {
                    eprintln!("note: {n}");
                }
                if a.json {
                    stdout_line(&serde_json::to_string(&images)?)?;
                } else {
                    for g in &images {
                        let flag = match &g.novelty {
                            Some(n) if n.too_close => format!(
                                "  TOO CLOSE to a library image (similarity {:.2})",
                                n.similarity
                            ),
                            _ => String::new(),
                        };
                        stdout_line(&format!(
                            "{}  seed {}  {}{flag}",
                            &g.id[..12],
                            g.seed,
                            g.path
                        ))?;
                    }
                }
                return Ok(0);
            }
            tracing::info!(campaign = %c.id, ?opts, "generate asked with no generator configured");
            let msg = generate::no_generator_message(&c.id);
            if a.json {
                stdout_line(&json!({"error": "no_generator", "message": msg, "moodboard": format!("campaign-studio campaign moodboard {}", c.id)}).to_string())?;
            }
            eprintln!("error: {msg}");
            return Ok(3);
        }
        CampaignCmd::Moodboard { id, out, json } => {
            let c = lib.store.resolve_campaign(&id)?;
            let out = out.unwrap_or_else(|| default_moodboard(ctx, &c.id));
            let n = moodboard::render(lib, &c, &out)?;
            if json {
                stdout_line(&json!({"moodboard": out, "references": n}).to_string())?;
            } else {
                stdout_line(&format!(
                    "mood board written to {} ({n} reference(s)); it is not a generated image",
                    out.display()
                ))?;
            }
        }
        CampaignCmd::Export { id, out, json } => {
            let c = lib.store.resolve_campaign(&id)?;
            let mb = default_moodboard(ctx, &c.id);
            let r = export::export(lib, &c, &out, Some(&mb))?;
            if json {
                stdout_line(&serde_json::to_string(&r)?)?;
            } else {
                stdout_line(&format!(
                    "exported to {}: {} image(s), {} reference(s), {} prompt version(s); open {}/index.html",
                    r.dir, r.images, r.references, r.prompt_versions, r.dir
                ))?;
            }
        }
        CampaignCmd::Results {
            id,
            image,
            kpi,
            json,
        } => {
            let c = lib.store.resolve_campaign(&id)?;
            let im = campaign::record_results(lib, &c, &image, kpi)?;
            if json {
                stdout_line(&serde_json::to_string(&im)?)?;
            } else {
                stdout_line(&format!("recorded KPI {kpi} for image {}", &im.id[..12]))?;
            }
        }
    }
    Ok(0)
}

fn generate_options(a: &GenerateArgs) -> Result<generate::GenerateOptions> {
    use campaign_studio::domain::{Quality, TaskType};
    let task = TaskType::parse(&a.task).with_context(|| format!("--task {}", a.task))?;
    Ok(generate::GenerateOptions {
        count: a.count,
        size: a.width.zip(a.height),
        aspect: a.aspect.clone(),
        seed: a.seed,
        cfg_scale: a.cfg,
        quality: if a.quality == "premium" {
            Quality::Premium
        } else {
            Quality::Standard
        },
        negative: a.negative.clone(),
        task,
        similarity_strength: a.similarity,
    })
}

fn default_moodboard(ctx: &Ctx, campaign_id: &str) -> PathBuf {
    ctx.paths
        .data_dir
        .join("moodboards")
        .join(format!("{campaign_id}.png"))
}
