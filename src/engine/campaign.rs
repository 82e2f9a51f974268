//! Campaign use cases: create, recommend references, record the user's selection.
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::domain::{
    BrandKit, Campaign, CampaignStep, EmbedderId, RecommendationRun, SearchFilter,
};
use crate::engine::Library;
use crate::engine::search::{self, SearchRequest};
use crate::services::{Embedder, VectorIndex};
use crate::store::now;
use crate::{Error, Result};

/// A short id, unique per process and time: 12 hex chars of a hash of the clock, the pid and
/// a counter (no randomness crate needed for ids that are only unique, not secret).
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{nanos}:{}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..6])
}

#[derive(Debug, Clone, Default)]
pub struct NewCampaign {
    pub name: String,
    pub brief: String,
    pub objective: String,
    pub node: String,
    pub brand: Option<BrandKit>,
}

fn is_hex_colour(s: &str) -> bool {
    let h = s.strip_prefix('#').unwrap_or(s);
    h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit())
}

/// Reads and checks a brand kit TOML file.
pub fn load_brand_kit(path: &Path) -> Result<BrandKit> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let kit: BrandKit = toml::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: {}", path.display(), e.message())))?;
    if kit.name.trim().is_empty() {
        return Err(Error::Invalid(format!(
            "{}: key 'name' is empty",
            path.display()
        )));
    }
    if let Some(bad) = kit.palette.iter().find(|c| !is_hex_colour(c)) {
        return Err(Error::Invalid(format!(
            "{}: key 'palette': '{bad}' is not a hex colour like #0a7cff",
            path.display()
        )));
    }
    Ok(kit)
}

pub fn create(lib: &Library, new: NewCampaign) -> Result<Campaign> {
    let name = new.name.trim().to_string();
    if name.is_empty() {
        return Err(Error::Invalid("a campaign needs a name".into()));
    }
    let brief = new.brief.trim().to_string();
    if brief.is_empty() {
        return Err(Error::Invalid("the brief is empty".into()));
    }
    let ts = now();
    let c = Campaign {
        id: new_id(),
        name,
        brief,
        objective: lib.config.check_objective(&new.objective)?,
        node: lib.config.check_node(&new.node)?,
        brand: new.brand,
        selected: Vec::new(),
        step: CampaignStep::Brief,
        created_at: ts.clone(),
        updated_at: ts,
    };
    lib.store.insert_campaign(&c)?;
    Ok(c)
}

pub struct RecommendOptions {
    pub k: usize,
    /// Defaults to the brief.
    pub query: Option<String>,
    pub kpi_weight: f32,
    pub rerank_factor: usize,
    /// When the filter leaves no strong match or fewer than k, add hits from other objectives
    /// and audiences, marked (`search::widen`). Text searches only.
    pub widen: bool,
}

/// Filtered k-NN with the campaign's objective and node; the run is stored with its hits and
/// how its query was searched (`RecommendationRun::searched_as`: said beside the hits, since a
/// translation or an offset changes their order and strength).
pub fn recommend(
    lib: &Library,
    campaign: &Campaign,
    index: &dyn VectorIndex,
    embedder: &dyn Embedder,
    opts: &RecommendOptions,
) -> Result<RecommendationRun> {
    let mut query = opts
        .query
        .clone()
        .filter(|q| !q.trim().is_empty())
        .unwrap_or_else(|| campaign.brief.clone());
    // An English-only text side (Titan): a non-English query is searched as the describer
    // model's short English visual description of it (kept as the run's query, so the user
    // sees it).
    if embedder.english_only_text() && !crate::services::language::is_english(&query) {
        let b = lib.bedrock()?;
        let route = b.route("describer", &lib.config.bedrock.models.describer)?;
        let english =
            crate::services::bedrock::describe::english_visual_query(b.as_ref(), &route, &query);
        lib.store_model_calls(Some(&campaign.id), "search")?;
        let english = english?;
        tracing::info!(original = %query, english = %english, "searching with an English description");
        query = english;
    }
    let req = SearchRequest {
        query: query.clone(),
        filter: SearchFilter {
            objective: Some(campaign.objective.clone()),
            node: Some(campaign.node.clone()),
        },
        k: opts.k,
        kpi_weight: opts.kpi_weight,
        rerank_pool: opts.rerank_factor.max(1).saturating_mul(opts.k),
    };
    let result = search::search(&lib.store, index, embedder, &req);
    // The query's embedding is paid for whether or not the search then succeeds.
    lib.store_model_calls(Some(&campaign.id), "search")?;
    let mut result = result?;
    if opts.widen && result.widen_offer.is_some() {
        let widened = search::widen(&lib.store, index, embedder, &req, &mut result);
        lib.store_model_calls(Some(&campaign.id), "search")?;
        widened?;
    }
    store_run(lib, campaign, opts, result)
}

/// What widening `run` would offer (`search::widen_offer`), for a run of `campaign`'s filter
/// not widened yet; `None` once widened, for a "more like this" run (widening is for text
/// searches) or when the filter holds a strong match and k assets.
pub fn widen_offer_of(
    lib: &Library,
    campaign: &Campaign,
    run: &RecommendationRun,
) -> Option<String> {
    if run.embedder == lib.image_features_id().as_str() {
        return None;
    }
    let filter = SearchFilter {
        objective: Some(campaign.objective.clone()),
        node: Some(campaign.node.clone()),
    };
    // A catalog that cannot be read offers nothing rather than failing the run it describes.
    search::offer_for(
        &lib.store,
        &EmbedderId::new(run.embedder.clone()),
        &filter,
        run.k,
        &run.hits,
    )
    .ok()
    .flatten()
}

/// Stores a search of `campaign` as its latest run and moves it to the References step.
fn store_run(
    lib: &Library,
    campaign: &Campaign,
    opts: &RecommendOptions,
    result: search::SearchResult,
) -> Result<RecommendationRun> {
    let mut run = RecommendationRun {
        id: 0,
        campaign_id: campaign.id.clone(),
        query: result.query,
        k: opts.k,
        kpi_weight: opts.kpi_weight,
        embedder: result.embedder,
        hits: result.hits,
        created_at: now(),
        searched_as: Some(result.searched_as),
    };
    run.id = lib.store.insert_run(&run)?;
    lib.store
        .advance_step(&campaign.id, CampaignStep::References)?;
    Ok(run)
}

/// "More like this" for a campaign: the assets whose images look most like the asset
/// `asset_key` (an asset id, manifest id, file name or hash prefix), by the image embedder's
/// features, within the campaign's objective and node; stored as a run like a text search,
/// whose query says which image it started from.
pub fn recommend_like(
    lib: &Library,
    campaign: &Campaign,
    asset_key: &str,
    opts: &RecommendOptions,
) -> Result<RecommendationRun> {
    let result = like_asset(
        lib,
        asset_key,
        SearchFilter {
            objective: Some(campaign.objective.clone()),
            node: Some(campaign.node.clone()),
        },
        opts,
    )?;
    store_run(lib, campaign, opts, result)
}

/// "More like this" over the library: the asset `asset_key` names (asset id, manifest id, file
/// name or hash prefix) against the embedded index of the image embedder's features, with
/// `filter`; the result's query reads "images like LABEL". The CLI's `search --like` and the
/// studio's `m` both come here.
pub fn like_asset(
    lib: &Library,
    asset_key: &str,
    filter: SearchFilter,
    opts: &RecommendOptions,
) -> Result<search::SearchResult> {
    let asset = match lib.store.asset(asset_key)? {
        Some(a) => a,
        None => lib.store.resolve(asset_key)?,
    };
    let features = lib.image_features_id();
    let index = lib.embedded_index(&features)?;
    search::similar_to(
        &lib.store,
        &index,
        &features,
        &asset,
        &SearchRequest {
            query: format!("images like {}", search::label_of(&asset)),
            filter,
            k: opts.k,
            kpi_weight: opts.kpi_weight,
            rerank_pool: opts.rerank_factor.max(1).saturating_mul(opts.k),
        },
    )
}

/// Records the chosen references (manifest ids, files or hashes); `[]` clears them.
pub fn select(lib: &Library, campaign: &Campaign, keys: &[String]) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for k in keys {
        let a = lib
            .store
            .resolve(k)
            .map_err(|e| Error::Invalid(format!("reference '{k}': {e}")))?;
        if !ids.contains(&a.id) {
            ids.push(a.id);
        }
    }
    lib.store.set_selection(&campaign.id, &ids)?;
    if !ids.is_empty() {
        lib.store
            .advance_step(&campaign.id, CampaignStep::References)?;
    }
    Ok(ids)
}

/// Records the real result of a generated image of this campaign.
pub fn record_results(
    lib: &Library,
    campaign: &Campaign,
    image_key: &str,
    kpi: f64,
) -> Result<crate::domain::GeneratedImage> {
    if !kpi.is_finite() || kpi < 0.0 {
        return Err(Error::Invalid(format!(
            "KPI {kpi} must be a non-negative number"
        )));
    }
    let im = lib.store.resolve_generated_image(image_key)?;
    if im.campaign_id != campaign.id {
        return Err(Error::Invalid(format!(
            "image {} belongs to another campaign ({})",
            &im.id[..12],
            im.campaign_id
        )));
    }
    lib.store.set_image_kpi(&im.id, kpi)?;
    lib.store.touch_campaign(&campaign.id)?;
    lib.store.resolve_generated_image(&im.id)
}

/// Adds a generated image with recorded results to the library, with its campaign's objective,
/// node and the image's KPI, so winners feed later recommendations.
pub fn promote(lib: &mut Library, image_key: &str) -> Result<crate::engine::ingest::IngestReport> {
    let im = lib.store.resolve_generated_image(image_key)?;
    let kpi = im.kpi.ok_or_else(|| {
        Error::Invalid(format!(
            "image {} has no results yet: record them with `campaign results {} --image {} --kpi X`",
            &im.id[..12],
            im.campaign_id,
            &im.id[..12]
        ))
    })?;
    let c = lib
        .store
        .campaign(&im.campaign_id)?
        .ok_or_else(|| Error::NotFound(format!("campaign {}", im.campaign_id)))?;
    let path = std::path::PathBuf::from(&im.path);
    let (root, file) = match (path.parent(), path.file_name()) {
        (Some(r), Some(f)) => (r.to_path_buf(), f.to_string_lossy().into_owned()),
        _ => return Err(Error::Invalid(format!("{}: not a file path", im.path))),
    };
    let row = serde_json::json!({
        "id": format!("generated-{}", &im.id[..12]),
        "file": file,
        "objective": c.objective,
        "node": c.node,
        "results": kpi,
        "description": format!("Generated for the campaign {} by {} from the prompt: {}", c.name, im.model, im.request.prompt),
        "campaign": c.name,
        "generated_by": im.model,
        "seed": im.seed,
    });
    let tmp = lib.paths.data_dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let manifest = tmp.join(format!("promote-{}.jsonl", &im.id[..12]));
    std::fs::write(&manifest, row.to_string()).map_err(|e| Error::io(&manifest, e))?;
    let opts = crate::engine::ingest::IngestOptions {
        root,
        manifest: Some(manifest.clone()),
        jobs: 1,
        ..Default::default()
    };
    let report = crate::engine::ingest::ingest(lib, &opts, &mut |_| {});
    let _ = std::fs::remove_file(&manifest);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
    }

    #[test]
    fn brand_kits_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kit.toml");
        std::fs::write(&p, "name = \"Acme\"\npalette = [\"#0a7cff\", \"ffcc00\"]\ntone = [\"playful\"]\nnegative_terms = [\"clutter\"]\n").unwrap();
        let k = load_brand_kit(&p).unwrap();
        assert_eq!(k.palette.len(), 2);
        std::fs::write(&p, "name = \"Acme\"\npalette = [\"blue\"]\n").unwrap();
        assert!(
            load_brand_kit(&p)
                .unwrap_err()
                .to_string()
                .contains("'blue' is not a hex colour")
        );
        std::fs::write(&p, "name = \"Acme\"\ncolours = [\"#000000\"]\n").unwrap();
        assert!(
            load_brand_kit(&p)
                .unwrap_err()
                .to_string()
                .contains("colours")
        );
    }
}
