//! Generation: build the request from the current prompt version and the selected references,
//! let the generator validate it (before any call), store every image with full provenance,
//! and check each one for novelty against the library.
use sha2::{Digest, Sha256};

use crate::domain::{
    Campaign, CampaignStep, GeneratedImage, GenerationParams, GenerationRequest, Novelty, Quality,
    SearchFilter, TaskType,
};
use crate::engine::{Library, prompt};
use crate::paths::Paths;
use crate::services::local::imaging;
use crate::services::{ImageGenerator, VectorIndex};
use crate::store::now;
use crate::{Error, Result};

/// What the user asks for; unset fields take the generator's or the config's defaults.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub count: u32,
    pub size: Option<(u32, u32)>,
    pub aspect: Option<String>,
    pub seed: Option<u32>,
    pub cfg_scale: f32,
    pub quality: Quality,
    pub negative: Option<String>,
    pub task: TaskType,
    pub similarity_strength: Option<f32>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            count: 1,
            size: None,
            aspect: None,
            seed: None,
            cfg_scale: 6.5,
            quality: Quality::Standard,
            negative: None,
            task: TaskType::Text,
            similarity_strength: None,
        }
    }
}

/// A seed for a call that did not give one: from the clock and a counter, bounded by the
/// model's maximum. It is recorded, so the image can be made again.
fn draw_seed(max: u32) -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = Sha256::digest(format!("{nanos}:{}", std::process::id()).as_bytes());
    u32::from_le_bytes([h[0], h[1], h[2], h[3]]) % max.max(1)
}

/// Hex colours for colour-guided generation: the brand kit's first, then the references'.
pub fn guide_colours(lib: &Library, campaign: &Campaign, max: usize) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |hex: &str| {
        let h = format!("#{}", hex.trim_start_matches('#').to_lowercase());
        if !out.contains(&h) && out.len() < max {
            out.push(h);
        }
    };
    if let Some(b) = &campaign.brand {
        b.palette.iter().for_each(|c| push(c));
    }
    for id in &campaign.selected {
        if let Some(a) = lib.store.asset(id)? {
            a.description
                .palette
                .iter()
                .take(3)
                .for_each(|c| push(&c.hex));
        }
    }
    Ok(out)
}

pub fn build_request(
    lib: &Library,
    campaign: &Campaign,
    generator: &dyn ImageGenerator,
    opts: &GenerateOptions,
) -> Result<(GenerationRequest, i64)> {
    let current = prompt::current(lib, campaign)?.ok_or_else(|| {
        Error::Invalid(format!(
            "campaign '{}' has no prompt yet: run `campaign prompt {}` first",
            campaign.name, campaign.id
        ))
    })?;
    let caps = generator.caps();
    let (width, height) = match (&opts.size, &opts.aspect) {
        (Some(s), _) => *s,
        (None, Some(a)) => caps.size_for_aspect(a)?,
        (None, None) => (1024, 1024),
    };
    let (seed, seed_was_random) = match opts.seed {
        Some(s) => (s, false),
        None => (draw_seed(caps.seed_max), true),
    };
    let reference_images = if opts.task == TaskType::Variation {
        campaign
            .selected
            .iter()
            .filter_map(|id| lib.store.asset(id).ok().flatten())
            .map(|a| a.stored_path)
            .collect()
    } else {
        Vec::new()
    };
    let colours = if opts.task == TaskType::ColorGuided {
        guide_colours(lib, campaign, caps.max_colours)?
    } else {
        Vec::new()
    };
    let request = GenerationRequest {
        prompt: current.prompt.clone(),
        negative_prompt: opts
            .negative
            .clone()
            .unwrap_or_else(|| current.negative_prompt.clone()),
        params: GenerationParams {
            count: opts.count,
            width,
            height,
            seed,
            seed_was_random,
            cfg_scale: opts.cfg_scale,
            quality: opts.quality,
            task: opts.task,
            similarity_strength: opts.similarity_strength,
        },
        reference_images,
        colours,
    };
    generator.validate(&request)?;
    Ok((request, current.id))
}

/// Nearest library asset by image features and by perceptual hash.
pub fn novelty(
    lib: &Library,
    features_index: &dyn VectorIndex,
    library_hashes: &[(String, String)],
    image: &image::DynamicImage,
) -> Result<Novelty> {
    let analysis = lib.analyser()?.analyse(image)?;
    let nearest = features_index
        .search(&analysis.features, &SearchFilter::default(), 1)?
        .into_iter()
        .next();
    let hash = imaging::phash(image);
    let mut best: Option<(u32, String)> = None;
    for (id, h) in library_hashes {
        if let Some(d) = imaging::phash_distance(&hash, h)
            && best.as_ref().is_none_or(|(bd, _)| d < *bd)
        {
            best = Some((d, id.clone()));
        }
    }
    let g = &lib.config.generator;
    let similarity = nearest.as_ref().map(|n| n.similarity).unwrap_or(0.0);
    Ok(Novelty {
        too_close: similarity >= g.novelty_max_similarity
            || best
                .as_ref()
                .is_some_and(|(d, _)| *d <= g.novelty_max_phash_distance),
        nearest_asset: nearest.map(|n| n.id),
        similarity,
        phash_distance: best.as_ref().map(|b| b.0),
        phash_nearest: best.map(|b| b.1),
    })
}

/// Validates, calls the generator, stores the images and their provenance, checks novelty.
pub fn generate(
    lib: &mut Library,
    campaign: &Campaign,
    generator: &dyn ImageGenerator,
    opts: &GenerateOptions,
) -> Result<Vec<GeneratedImage>> {
    Ok(generate_with_notes(lib, campaign, generator, opts)?.0)
}

/// As `generate`, with a note for every image the model withheld (never saved).
pub fn generate_with_notes(
    lib: &mut Library,
    campaign: &Campaign,
    generator: &dyn ImageGenerator,
    opts: &GenerateOptions,
) -> Result<(Vec<GeneratedImage>, Vec<String>)> {
    let (request, prompt_version_id) = build_request(lib, campaign, generator, opts)?;
    let generated = generator.generate_reporting(&request);
    // What the model made is paid for whatever happens next.
    let cancelled = crate::services::cancel::is_cancelled();
    let label = if cancelled {
        "generation (cancelled)"
    } else {
        "generation (not saved)"
    };
    let calls = lib.store_model_calls(Some(&campaign.id), label)?;
    let (pngs, mut notes) = generated?;
    // Cancelled after the model made images: they were paid for, so they are kept, and said so.
    if cancelled
        && !notes
            .iter()
            .any(|n| n.starts_with(crate::services::CANCELLED_NOTE))
    {
        notes.push(format!(
            "{}: the {} image(s) made before the cancel were paid for and are kept",
            crate::services::CANCELLED_NOTE,
            pngs.len()
        ));
    }
    let features_index = lib.load_index(&lib.image_features_id())?;
    let hashes = lib.store.phashes()?;
    let dir = lib.paths.data_dir.join("generated").join(&campaign.id);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut images = Vec::new();
    for g in pngs {
        let img = imaging::decode_limited(&g.png, imaging::ImageLimits::of(&lib.config.library))
            .map_err(|e| {
                Error::Inference(format!(
                    "{}: returned an unreadable image: {e}",
                    generator.caps().model
                ))
            })?;
        let id = hex::encode(Sha256::digest(&g.png));
        let path = Paths::content_path(&dir, &id, "png");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let tmp = path.with_extension("png.tmp");
        std::fs::write(&tmp, &g.png).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        let nov = if features_index.is_empty() {
            None
        } else {
            Some(novelty(lib, &features_index, &hashes, &img)?)
        };
        images.push(GeneratedImage {
            id,
            generation_id: 0,
            campaign_id: campaign.id.clone(),
            path: path.to_string_lossy().into_owned(),
            seed: g.seed,
            model: generator.caps().model.clone(),
            prompt_version_id,
            request: request.clone(),
            references: campaign.selected.clone(),
            novelty: nov,
            kpi: None,
            created_at: now(),
        });
    }
    let gid = lib.store.insert_generation(
        &campaign.id,
        prompt_version_id,
        &generator.caps().model,
        &request,
        &mut images,
    )?;
    lib.store
        .label_model_calls(&calls, &format!("generation {gid}"))?;
    lib.store
        .advance_step(&campaign.id, CampaignStep::Generated)?;
    Ok((images, notes))
}

/// The message for a machine with no image generator.
pub fn no_generator_message(campaign_id: &str) -> String {
    format!(
        "no image generator is configured. The embedded default has no text-to-image model (no registry \
         package carries one), so nothing was generated. Configure a cloud generator (generator.backend, \
         with the Bedrock backend), or make a mood board of the chosen references, their colours and the \
         prompt: campaign-studio campaign moodboard {campaign_id}"
    )
}
