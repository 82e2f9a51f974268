//! Match strength and the offer to widen, with the real embedded default (multilingual-e5 over
//! EfficientNet's descriptions) on the 150 photos of tests/fixtures/retrieval/library, indexed
//! with their COCO labels. The campaign facts are rewritten for these tests:
//!
//! - likes / customers holds only four photos of vehicles, a clock and toilets: nothing a picnic
//!   brief asks for (`UNRELATED`);
//! - awareness / new_customers holds three photos, one of them (`PLANTED`, a table of cake,
//!   donuts and sandwiches) captioned as exactly the picnic the brief describes;
//! - every other photo is clicks / followers.
//!
//! The issue's own example is the brief: "Families enjoying a picnic in a sunny park with food
//! on a blanket".
mod common;

use std::sync::OnceLock;

use campaign_studio::domain::{SearchFilter, StrengthLevel};
use campaign_studio::engine::Library;
use campaign_studio::engine::search::{SearchRequest, SearchResult, search, widen};

const BRIEF: &str = "Families enjoying a picnic in a sunny park with food on a blanket";
const UNRELATED: [&str; 4] = [
    "coco-000000000071", // car, truck, train
    "coco-000000000073", // motorcycle
    "coco-000000000626", // clock
    "coco-000000000636", // toilet
];
const PLANTED: &str = "coco-000000114174"; // cake, donut, cup, dining table, sandwich
const PLANTED_GROUP: [&str; 3] = [PLANTED, "coco-000000000540", "coco-000000006818"];
const PLANTED_CAPTION: &str =
    "A family picnic on a blanket in a sunny park, with sandwiches, cake and drinks";

/// The library described at the top, ingested once for this file's tests
/// (`common::shared_run_dir`). Each test opens its own `Library` on it.
fn library() -> Library {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = common::shared_run_dir("match-strength");
        let rows: Vec<serde_json::Value> =
            common::jsonl(&common::retrieval_fixture().join("manifest.jsonl"));
        let lines: Vec<String> = rows
            .into_iter()
            .map(|mut r| {
                let id = r["id"].as_str().unwrap().to_string();
                let (objective, node) = if UNRELATED.contains(&id.as_str()) {
                    ("likes", "customers")
                } else if PLANTED_GROUP.contains(&id.as_str()) {
                    ("awareness", "new_customers")
                } else {
                    ("clicks", "followers")
                };
                r["objective"] = objective.into();
                r["node"] = node.into();
                if id == PLANTED {
                    r["caption"] = PLANTED_CAPTION.into();
                }
                r.to_string()
            })
            .collect();
        common::ingest_fixture_rows(dir.path(), &lines);
        dir
    });
    common::real_library(dir.path())
}

fn request(objective: &str, node: &str, k: usize) -> SearchRequest {
    SearchRequest {
        query: BRIEF.into(),
        filter: SearchFilter {
            objective: Some(objective.into()),
            node: Some(node.into()),
        },
        k,
        kpi_weight: 0.25,
        rerank_pool: 3 * k,
    }
}

fn run(lib: &Library, req: &SearchRequest) -> SearchResult {
    let e = lib.text_embedder().unwrap();
    let index = lib.search_index(e.id()).unwrap();
    search(&lib.store, index.as_ref(), e.as_ref(), req).unwrap()
}

fn widened(lib: &Library, req: &SearchRequest) -> SearchResult {
    let e = lib.text_embedder().unwrap();
    let index = lib.search_index(e.id()).unwrap();
    let mut r = search(&lib.store, index.as_ref(), e.as_ref(), req).unwrap();
    widen(&lib.store, index.as_ref(), e.as_ref(), req, &mut r).unwrap();
    r
}

fn level(h: &campaign_studio::domain::ReferenceHit) -> Option<StrengthLevel> {
    h.strength.and_then(|s| s.level)
}

#[test]
fn a_filter_holding_only_unrelated_assets_gets_weak_matches_everywhere() {
    let r = run(&library(), &request("likes", "customers", 4));
    assert_eq!(r.hits.len(), 4);
    for h in &r.hits {
        assert_eq!(
            level(h),
            Some(StrengthLevel::Weak),
            "{:?}: {:?}",
            h.external_id,
            h.strength
        );
    }
}

#[test]
fn a_filter_holding_only_unrelated_assets_offers_to_widen() {
    let r = run(&library(), &request("likes", "customers", 4));
    let offer = r.widen_offer.expect("an offer to widen");
    assert!(offer.contains("no strong match"), "{offer}");
    assert!(
        offer.contains("objective likes, audience customers"),
        "{offer}"
    );
}

#[test]
fn a_filter_with_fewer_assets_than_asked_offers_to_widen() {
    let r = run(&library(), &request("likes", "customers", 6));
    let offer = r.widen_offer.expect("an offer to widen");
    assert!(offer.contains("only 4 of the 6"), "{offer}");
}

#[test]
fn a_planted_close_match_is_strong_and_first() {
    let r = run(&library(), &request("awareness", "new_customers", 3));
    let top = &r.hits[0];
    assert_eq!(top.external_id.as_deref(), Some(PLANTED));
    assert_eq!(
        level(top),
        Some(StrengthLevel::Strong),
        "{:?}",
        top.strength
    );
}

#[test]
fn a_filter_holding_a_strong_match_and_k_assets_offers_nothing() {
    let r = run(&library(), &request("awareness", "new_customers", 3));
    assert_eq!(r.widen_offer, None);
}

#[test]
fn strength_says_z_and_the_share_of_the_library_below() {
    let r = run(&library(), &request("awareness", "new_customers", 3));
    let s = r.hits[0].strength.unwrap();
    assert!(s.z > 0.0 && s.percentile > 0.9, "{s:?}");
    // The raw similarity stays beside it.
    assert!(r.hits[0].similarity > 0.0);
}

#[test]
fn widening_adds_hits_from_outside_the_filter_marked_as_such() {
    let lib = library();
    let r = widened(&lib, &request("likes", "customers", 4));
    assert!(r.widened);
    assert_eq!(r.widen_offer, None);
    let outside: Vec<_> = r.hits.iter().filter(|h| h.outside_filter).collect();
    assert_eq!(outside.len(), 4);
    for h in &outside {
        assert!(
            !(h.objective == "likes" && h.node == "customers"),
            "{:?} is inside the filter",
            h.external_id
        );
    }
    // The planted picnic is the best of them, and strong.
    assert_eq!(outside[0].external_id.as_deref(), Some(PLANTED));
    assert_eq!(level(outside[0]), Some(StrengthLevel::Strong));
}

#[test]
fn widening_keeps_the_filtered_hits_first_and_unchanged() {
    let lib = library();
    let before = run(&lib, &request("likes", "customers", 4));
    let after = widened(&lib, &request("likes", "customers", 4));
    assert_eq!(&after.hits[..4], &before.hits[..]);
    assert!(after.hits[4..].iter().all(|h| h.outside_filter));
}

#[test]
fn a_widened_hit_takes_its_kpi_percentile_within_its_own_objective_and_audience() {
    let lib = library();
    let r = widened(&lib, &request("likes", "customers", 4));
    let planted = r
        .hits
        .iter()
        .find(|h| h.external_id.as_deref() == Some(PLANTED))
        .unwrap();
    // Its own group is awareness / new_customers: three assets.
    let e = lib.text_embedder().unwrap();
    let index = lib.search_index(e.id()).unwrap();
    let own = index
        .kpi_percentiles(
            &SearchFilter {
                objective: Some("awareness".into()),
                node: Some("new_customers".into()),
            },
            &[planted.kpi],
        )
        .unwrap()[0];
    assert_eq!(planted.kpi_percentile, own);
    let whole = index
        .kpi_percentiles(&SearchFilter::default(), &[planted.kpi])
        .unwrap()[0];
    assert_ne!(
        own, whole,
        "the test needs a KPI whose percentile differs between its group and the library"
    );
}

/// The binary on this file's library (its config and data dirs, the shared model cache), with
/// translation off (`services::translate`): the Spanish tests below are of the offset.
fn cli(args: &[&str]) -> std::process::Output {
    cli_with(args, "off")
}

/// `cli` with `apertium` as the translator (`CAMPAIGN_STUDIO_APERTIUM`).
fn cli_with(args: &[&str], apertium: impl AsRef<std::ffi::OsStr>) -> std::process::Output {
    let lib = library();
    let data = lib.paths.data_dir.clone();
    let config = data.parent().unwrap().join("config");
    drop(lib);
    assert_cmd::Command::cargo_bin("campaign-studio")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data.parent().unwrap())
        .env("CAMPAIGN_STUDIO_CONFIG_DIR", config)
        .env("CAMPAIGN_STUDIO_DATA_DIR", &data)
        .env("CAMPAIGN_STUDIO_CACHE_DIR", common::models_cache())
        .env("CAMPAIGN_STUDIO_APERTIUM", apertium)
        .args(args)
        .output()
        .unwrap()
}

fn cli_json(args: &[&str]) -> serde_json::Value {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const FILTERED: [&str; 6] = ["--objective", "likes", "--node", "customers", "-k", "4"];

#[test]
fn search_json_gives_each_hit_its_strength_beside_the_raw_similarity() {
    let mut args = vec!["search", BRIEF, "--json"];
    args.extend(FILTERED);
    let r = cli_json(&args);
    for h in r["hits"].as_array().unwrap() {
        assert_eq!(h["strength"]["level"], "weak", "{h}");
        assert!(h["strength"]["z"].is_number() && h["strength"]["percentile"].is_number());
        assert!(h["similarity"].is_number());
    }
}

#[test]
fn search_json_carries_the_offer_to_widen() {
    let mut args = vec!["search", BRIEF, "--json"];
    args.extend(FILTERED);
    let r = cli_json(&args);
    assert!(
        r["widen_offer"]
            .as_str()
            .unwrap()
            .contains("no strong match"),
        "{r}"
    );
}

#[test]
fn search_prints_strength_and_how_to_widen() {
    let mut args = vec!["search", BRIEF];
    args.extend(FILTERED);
    let out = cli(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains(" weak "), "{text}");
    assert!(text.contains("add --widen"), "{text}");
}

#[test]
fn search_widen_marks_the_hits_outside_the_filter() {
    let mut args = vec!["search", BRIEF, "--json", "--widen"];
    args.extend(FILTERED);
    let r = cli_json(&args);
    assert_eq!(r["widened"], true);
    let hits = r["hits"].as_array().unwrap();
    let outside: Vec<_> = hits
        .iter()
        .filter(|h| h["outside_filter"] == true)
        .collect();
    assert_eq!((hits.len(), outside.len()), (8, 4));
    assert_eq!(outside[0]["external_id"], PLANTED);
    assert_eq!(outside[0]["strength"]["level"], "strong");
}

#[test]
fn search_widen_prints_the_outside_hits_under_their_own_heading() {
    let mut args = vec!["search", BRIEF, "--widen"];
    args.extend(FILTERED);
    let out = cli(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    let heading = text.find("outside the filter").expect("a heading");
    let planted = text.find(PLANTED).expect("the planted picnic");
    assert!(heading < planted, "{text}");
}

/// A new campaign with the picnic brief in likes / customers; its id.
fn picnic_campaign() -> String {
    campaign_of(BRIEF)
}

/// A campaign of `brief` for likes / customers; its id.
fn campaign_of(brief: &str) -> String {
    let c = cli_json(&[
        "campaign",
        "new",
        "--name",
        "Picnic",
        "--brief",
        brief,
        "--objective",
        "likes",
        "--node",
        "customers",
        "--json",
    ]);
    c["id"].as_str().unwrap().to_string()
}

#[test]
fn campaign_recommend_json_carries_the_offer_to_widen() {
    let id = picnic_campaign();
    let plain = cli_json(&["campaign", "recommend", &id, "-k", "4", "--json"]);
    assert!(plain["widen_offer"].is_string(), "{plain}");
}

#[test]
fn campaign_recommend_widen_answers_widened_without_a_further_offer() {
    let id = picnic_campaign();
    let widened = cli_json(&["campaign", "recommend", &id, "-k", "4", "--widen", "--json"]);
    assert_eq!(widened["widened"], true);
    assert!(widened["widen_offer"].is_null());
}

#[test]
fn campaign_recommend_widen_stores_the_outside_hits_with_the_run() {
    let id = picnic_campaign();
    cli_json(&["campaign", "recommend", &id, "-k", "4", "--widen", "--json"]);
    let shown = cli_json(&["campaign", "show", &id, "--json"]);
    let text = shown.to_string();
    assert!(text.contains("\"outside_filter\":true"), "{text}");
}

/// The brief in Spanish (`services::language_offset`).
const BRIEF_ES: &str =
    "Familias disfrutando de un pícnic en un parque soleado con comida sobre una manta";

#[test]
fn search_json_says_a_spanish_brief_was_moved_by_the_spanish_offset() {
    let r = cli_json(&["search", BRIEF_ES, "--json", "-k", "3"]);
    assert_eq!(r["language_offset"], "Spanish", "{r}");
}

#[test]
fn search_json_of_an_english_brief_carries_no_language_offset() {
    let r = cli_json(&["search", BRIEF, "--json", "-k", "3"]);
    assert!(r.get("language_offset").is_none(), "{r}");
}

#[test]
fn search_prints_that_a_spanish_brief_was_read_as_spanish() {
    let out = cli(&["search", BRIEF_ES, "-k", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("read as Spanish"), "{text}");
}

#[test]
fn campaign_recommend_json_says_a_spanish_brief_was_moved_by_the_spanish_offset() {
    let id = campaign_of(BRIEF_ES);
    let r = cli_json(&["campaign", "recommend", &id, "-k", "3", "--json"]);
    assert_eq!(r["language_offset"], "Spanish", "{r}");
}

#[test]
fn campaign_recommend_json_of_an_english_brief_has_no_language_offset() {
    let id = picnic_campaign();
    let r = cli_json(&["campaign", "recommend", &id, "-k", "3", "--json"]);
    assert!(r["language_offset"].is_null(), "{r}");
}

/// What the stand-in translator answers for `BRIEF_ES`.
const TRANSLATED: &str = "Families enjoying a picnic in a sunny park with food on a blanket";

/// `cli_with` a stand-in Apertium answering `answer` (`common::fake_apertium`).
#[cfg(unix)]
fn cli_translated(args: &[&str], answer: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    cli_with(args, common::fake_apertium(dir.path(), answer))
}

#[cfg(unix)]
fn json_of(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[cfg(unix)]
#[test]
fn search_json_of_a_spanish_brief_carries_the_translation_it_was_searched_as() {
    let r = json_of(cli_translated(
        &["search", BRIEF_ES, "--json", "-k", "3"],
        Some(TRANSLATED),
    ));
    assert_eq!(r["translation"]["text"], TRANSLATED, "{r}");
    assert_eq!(r["translation"]["from"], "Spanish", "{r}");
    assert_eq!(r["translation"]["by"], "Apertium spa-eng", "{r}");
}

#[cfg(unix)]
#[test]
fn a_translated_spanish_brief_is_not_also_moved_by_the_offset() {
    let r = json_of(cli_translated(
        &["search", BRIEF_ES, "--json", "-k", "3"],
        Some(TRANSLATED),
    ));
    assert!(r.get("language_offset").is_none(), "{r}");
}

#[cfg(unix)]
#[test]
fn a_translated_spanish_brief_finds_what_its_english_finds() {
    let es = json_of(cli_translated(
        &["search", BRIEF_ES, "--json", "-k", "3"],
        Some(TRANSLATED),
    ));
    let en = cli_json(&["search", BRIEF, "--json", "-k", "3"]);
    let ids = |r: &serde_json::Value| -> Vec<String> {
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["asset_id"].to_string())
            .collect()
    };
    assert_eq!(ids(&es), ids(&en));
}

#[cfg(unix)]
#[test]
fn an_english_brief_is_not_translated() {
    let r = json_of(cli_translated(
        &["search", BRIEF, "--json", "-k", "3"],
        Some("something else"),
    ));
    assert!(r.get("translation").is_none(), "{r}");
}

#[cfg(unix)]
#[test]
fn search_prints_the_translation_a_spanish_brief_was_searched_as() {
    let out = cli_translated(&["search", BRIEF_ES, "-k", "3"], Some(TRANSLATED));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("read as Spanish: searched as its English translation by Apertium spa-eng")
            && text.contains(TRANSLATED),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn a_translator_that_fails_leaves_the_spanish_brief_to_the_offset() {
    let r = json_of(cli_translated(
        &["search", BRIEF_ES, "--json", "-k", "3"],
        None,
    ));
    assert_eq!(r["language_offset"], "Spanish", "{r}");
    assert!(r.get("translation").is_none(), "{r}");
}

#[cfg(unix)]
#[test]
fn campaign_recommend_json_carries_the_translation_of_a_spanish_brief() {
    let id = campaign_of(BRIEF_ES);
    let r = json_of(cli_translated(
        &["campaign", "recommend", &id, "-k", "3", "--json"],
        Some(TRANSLATED),
    ));
    assert_eq!(r["translation"]["text"], TRANSLATED, "{r}");
}

#[cfg(unix)]
#[test]
fn campaign_recommend_with_a_failing_translator_says_the_offset_moved_it() {
    let id = campaign_of(BRIEF_ES);
    let r = json_of(cli_translated(
        &["campaign", "recommend", &id, "-k", "3", "--json"],
        None,
    ));
    assert_eq!(r["language_offset"], "Spanish", "{r}");
    assert!(r.get("translation").is_none(), "{r}");
}

#[cfg(unix)]
#[test]
fn campaign_prompt_of_a_spanish_brief_is_composed_from_its_translation() {
    let id = campaign_of(BRIEF_ES);
    let p = json_of(cli_translated(
        &["campaign", "prompt", &id, "--json"],
        Some(TRANSLATED),
    ));
    let prompt = p["prompt"].as_str().unwrap();
    assert!(prompt.contains("picnic in a sunny park"), "{prompt}");
    assert!(!prompt.contains("soleado"), "{prompt}");
}

#[cfg(unix)]
#[test]
fn campaign_prompt_of_a_translated_brief_says_so_in_its_flags() {
    let id = campaign_of(BRIEF_ES);
    let p = json_of(cli_translated(
        &["campaign", "prompt", &id, "--json"],
        Some(TRANSLATED),
    ));
    let flags = p["flags"].to_string();
    assert!(
        flags.contains("translated from Spanish by Apertium spa-eng"),
        "{flags}"
    );
}

#[test]
fn campaign_prompt_without_a_translator_flags_the_spanish_brief() {
    let id = campaign_of(BRIEF_ES);
    let p = cli_json(&["campaign", "prompt", &id, "--json"]);
    let flags = p["flags"].to_string();
    assert!(flags.contains("not in English"), "{flags}");
}

#[cfg(unix)]
#[test]
fn campaign_prompt_with_a_failing_translator_flags_the_spanish_brief() {
    let id = campaign_of(BRIEF_ES);
    let p = json_of(cli_translated(&["campaign", "prompt", &id, "--json"], None));
    let flags = p["flags"].to_string();
    assert!(
        flags.contains("not in English (it reads as Spanish) and was not translated (Apertium's translation failed"),
        "{flags}"
    );
}

/// The cycling brief in Spanish, with the real Apertium (`common::apertium_installed`).
#[test]
fn campaign_prompt_of_the_spanish_cycling_brief_leads_with_the_translated_picture() {
    if !common::apertium_installed() {
        return;
    }
    let id = campaign_of(
        "Campaña de ciclismo de verano: jóvenes montando en bicicleta por la ciudad en un día soleado",
    );
    let out = cli_with(&["campaign", "prompt", &id, "--json"], "apertium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prompt = p["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("bicycle") && !prompt.starts_with("Campaign"),
        "{prompt}"
    );
}

#[cfg(unix)]
#[test]
fn campaign_show_json_keeps_the_translation_a_run_was_searched_as() {
    let id = campaign_of(BRIEF_ES);
    json_of(cli_translated(
        &["campaign", "recommend", &id, "-k", "3", "--json"],
        Some(TRANSLATED),
    ));
    let shown = cli_json(&["campaign", "show", &id, "--json"]);
    let run = shown["runs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        run["searched_as"]["translated"]["text"], TRANSLATED,
        "{run}"
    );
}

#[cfg(unix)]
#[test]
fn campaign_show_says_how_the_latest_run_was_searched() {
    let id = campaign_of(BRIEF_ES);
    json_of(cli_translated(
        &["campaign", "recommend", &id, "-k", "3", "--json"],
        Some(TRANSLATED),
    ));
    let out = cli(&["campaign", "show", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("latest run: read as Spanish: searched as its English translation")
            && text.contains(TRANSLATED),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn a_run_moved_after_a_failed_translation_keeps_why_it_was_not_translated() {
    let id = campaign_of(BRIEF_ES);
    json_of(cli_translated(
        &["campaign", "recommend", &id, "-k", "3", "--json"],
        None,
    ));
    let shown = cli_json(&["campaign", "show", &id, "--json"]);
    let run = shown["runs"].as_array().unwrap().last().unwrap().clone();
    let moved = &run["searched_as"]["moved"];
    assert_eq!(moved["language"], "Spanish", "{run}");
    assert!(
        moved["not_translated"]
            .as_str()
            .is_some_and(|why| why.contains("translation failed")),
        "{run}"
    );
}

#[test]
fn a_run_of_an_english_brief_is_kept_as_searched_as_written() {
    let id = picnic_campaign();
    cli_json(&["campaign", "recommend", &id, "-k", "3", "--json"]);
    let shown = cli_json(&["campaign", "show", &id, "--json"]);
    let run = shown["runs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(run["searched_as"], "written", "{run}");
}

#[cfg(unix)]
#[test]
fn an_export_keeps_the_translation_a_run_was_searched_as() {
    let id = campaign_of(BRIEF_ES);
    json_of(cli_translated(
        &["campaign", "recommend", &id, "-k", "3", "--json"],
        Some(TRANSLATED),
    ));
    let out = tempfile::tempdir().unwrap();
    cli_json(&[
        "campaign",
        "export",
        &id,
        "--out",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("campaign.json")).unwrap()).unwrap();
    let run = doc["recommendation_runs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        run["searched_as"]["translated"]["text"], TRANSLATED,
        "{run}"
    );
}
