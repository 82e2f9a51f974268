//! The reference library end to end with the real models and the real binary.
mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::{Env, demo_library, manifest_len};
use serde_json::Value;

fn sqlite_count(env: &Env, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(env.data().join("library.sqlite3")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn ingest_demo_library_then_rerun_changes_nothing_and_search_filters_while_searching() {
    let env = Env::new();
    let lib = demo_library();
    let n = manifest_len(&lib);
    let manifest = lib.join("manifest.jsonl");

    let r = env.ingest(&lib, &manifest);
    assert_eq!(r["ingested"], n as u64, "{r}");
    assert_eq!(r["failed"], Value::Array(vec![]));
    assert_eq!(sqlite_count(&env, "SELECT COUNT(*) FROM assets"), n as i64);
    assert_eq!(
        sqlite_count(&env, "SELECT COUNT(*) FROM embeddings"),
        2 * n as i64
    );

    let again = env.ingest(&lib, &manifest);
    assert_eq!(
        (
            again["ingested"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(n as u64))
    );

    // Filtered search: exactly k hits when at least k match, none outside the filter.
    let stats = env.json(&["library", "stats", "--json"]);
    let likes = stats["by_objective"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "likes")
        .map(|p| p[1].as_u64().unwrap())
        .unwrap();
    assert!(likes >= 5);
    let r = env.json(&[
        "search",
        "a dog playing with a ball",
        "--objective",
        "likes",
        "-k",
        "5",
        "--json",
    ]);
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{r}");
    for h in hits {
        assert_eq!(h["objective"], "likes");
        for f in [
            "asset_id",
            "external_id",
            "file",
            "similarity",
            "kpi",
            "score",
            "node",
            "description",
            "elements",
        ] {
            assert!(h.get(f).is_some(), "hit lacks {f}: {h}");
        }
    }
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // A query close to a caption finds that image first (text search over descriptions).
    let show = env.json(&["library", "list", "--limit", "400", "--json"]);
    let captioned = show
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["caption"]
                .as_str()
                .is_some_and(|c| c.split(' ').count() >= 6)
        })
        .unwrap()
        .clone();
    let r = env.json(&[
        "search",
        captioned["caption"].as_str().unwrap(),
        "-k",
        "3",
        "--kpi-weight",
        "0",
        "--json",
    ]);
    assert_eq!(r["hits"][0]["asset_id"], captioned["id"], "{r}");

    // Batch mode: one JSON object per query, in order.
    let qfile = env.dir.path().join("queries.txt");
    std::fs::write(
        &qfile,
        "a plate of food\n\ntwo people on a beach\na city street at night\n",
    )
    .unwrap();
    let out = env.run(&[
        "search",
        "--queries",
        qfile.to_str().unwrap(),
        "--node",
        "customers",
        "-k",
        "2",
    ]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let queries: Vec<&str> = lines.iter().map(|l| l["query"].as_str().unwrap()).collect();
    assert_eq!(
        queries,
        [
            "a plate of food",
            "two people on a beach",
            "a city street at night"
        ]
    );
    assert!(lines.iter().all(|l| {
        l["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["node"] == "customers")
    }));
}

/// Three photos of the bundled demo subset (demo/, always in the repository, so this checks
/// something on every clone): a bear, bananas and green apples, each an ImageNet class.
#[test]
fn efficientnet_labels_real_photos_sensibly() {
    let env = Env::new();
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let want: [(&str, &[&str]); 3] = [
        ("coco-000000000285", &["bear"]),
        ("coco-000000006012", &["banana"]),
        ("coco-000000002149", &["granny smith", "apple"]),
    ];
    let manifest = std::fs::read_to_string(lib.join("manifest.jsonl")).unwrap();
    let rows: Vec<&str> = manifest
        .lines()
        .filter(|l| want.iter().any(|(id, _)| l.contains(&format!("\"{id}\""))))
        .collect();
    assert_eq!(rows.len(), want.len(), "demo/manifest.jsonl lost a fixture");
    let mini = env.dir.path().join("mini.jsonl");
    std::fs::write(&mini, rows.join("\n")).unwrap();
    let r = env.ingest(&lib, &mini);
    assert_eq!(r["ingested"].as_u64(), Some(want.len() as u64));
    for (id, words) in want {
        let a = env.json(&["library", "show", id, "--json"]);
        let top = a["model_labels"][0]["name"]
            .as_str()
            .unwrap()
            .to_lowercase();
        assert!(
            words.iter().any(|w| top.contains(w)),
            "{id}: top label {top}"
        );
        assert!(a["model_labels"][0]["prob"].as_f64().unwrap() > 0.3, "{id}");
        let sum: f64 = a["description"]["palette"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["share"].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-3);
    }
}

#[test]
fn kill_during_ingest_then_rerun_leaves_every_asset_exactly_once() {
    let env = Env::new();
    let lib = demo_library();
    let n = manifest_len(&lib);
    let manifest = lib.join("manifest.jsonl");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("campaign-studio"))
        .args([
            "library",
            "ingest",
            lib.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--jobs",
            "1",
        ])
        .env("CAMPAIGN_STUDIO_CONFIG_DIR", env.dir.path().join("config"))
        .env("CAMPAIGN_STUDIO_DATA_DIR", env.data())
        .env("CAMPAIGN_STUDIO_CACHE_DIR", &env.cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress lines are plain text when stderr is not a terminal: kill after the 5th asset.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut done = 0;
    for line in stderr.lines() {
        if line.unwrap().starts_with("ingested ") {
            done += 1;
            if done == 5 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = sqlite_count(&env, "SELECT COUNT(*) FROM assets");
    assert!(partial >= 5 && (partial as usize) < n, "{partial}");

    let r = env.ingest(&lib, &manifest);
    assert_eq!(r["unchanged"].as_i64().unwrap(), partial, "{r}");
    assert_eq!(r["ingested"].as_i64().unwrap(), n as i64 - partial, "{r}");
    assert_eq!(sqlite_count(&env, "SELECT COUNT(*) FROM assets"), n as i64);
    assert_eq!(
        sqlite_count(&env, "SELECT COUNT(DISTINCT external_id) FROM assets"),
        n as i64
    );
    assert_eq!(
        sqlite_count(&env, "SELECT COUNT(*) FROM embeddings"),
        2 * n as i64
    );
    assert_eq!(
        sqlite_count(
            &env,
            "SELECT COUNT(*) FROM ingest_jobs WHERE status = 'interrupted'"
        ),
        1
    );
}

#[test]
fn changed_metadata_updates_in_place_and_remove_deletes() {
    let env = Env::new();
    let lib = demo_library();
    let manifest = std::fs::read_to_string(lib.join("manifest.jsonl")).unwrap();
    let rows: Vec<Value> = manifest
        .lines()
        .take(6)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let write = |rows: &[Value]| {
        let p = env.dir.path().join("m.jsonl");
        std::fs::write(
            &p,
            rows.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        p
    };
    let m = write(&rows);
    let root = lib.to_str().unwrap();
    let r = env.json(&[
        "library",
        "ingest",
        root,
        "--manifest",
        m.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r["ingested"], 6);

    let mut changed = rows.clone();
    changed[2]["results"] = Value::from(0.5);
    changed[2]["caption"] = Value::from("A brand new caption about red bicycles");
    let m = write(&changed);
    let r = env.json(&[
        "library",
        "ingest",
        root,
        "--manifest",
        m.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(1), Some(5)),
        "{r}"
    );
    let id = changed[2]["id"].as_str().unwrap();
    let a = env.json(&["library", "show", id, "--json"]);
    assert_eq!(a["kpi"], 0.5);
    assert!(
        a["description"]["description"]
            .as_str()
            .unwrap()
            .starts_with("A brand new caption")
    );
    let hit = env.json(&[
        "search",
        "red bicycles",
        "-k",
        "1",
        "--kpi-weight",
        "0",
        "--json",
    ]);
    assert_eq!(hit["hits"][0]["external_id"], id);

    let thumb = a["thumbnail_path"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&thumb).exists());
    let r = env.json(&["library", "remove", id, "--json"]);
    assert_eq!(r["removed"].as_array().unwrap().len(), 1);
    assert!(!std::path::Path::new(&thumb).exists());
    assert_eq!(sqlite_count(&env, "SELECT COUNT(*) FROM assets"), 5);
    assert_eq!(sqlite_count(&env, "SELECT COUNT(*) FROM embeddings"), 10);
    let out = env.run(&["library", "show", id]);
    assert!(!out.status.success());
}

#[test]
fn a_command_that_needs_a_missing_model_names_models_fetch() {
    let env = Env::without_models();
    let out = env.run(&["search", "anything"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("models fetch"), "{err}");
    let out = env.run(&["models", "status", "--json"]);
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st.as_array().unwrap().iter().all(|m| m["present"] == false));
}

#[test]
fn help_reads_well() {
    let env = Env::without_models();
    let out = env.cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for w in [
        "demo",
        "models",
        "library",
        "search",
        "CAMPAIGN_STUDIO_DATA_DIR",
    ] {
        assert!(help.contains(w), "{help}");
    }
}

#[test]
fn doctor_reports_paths_terminal_and_protocol_and_show_image_prints() {
    let env = Env::new();
    let v = env.json(&["doctor", "--json"]);
    assert_eq!(v["terminal"]["interactive"], false);
    assert_eq!(
        v["terminal"]["image_protocol"],
        "halfblocks (not asked: not a terminal)"
    );
    assert!(
        v["paths"]["database"]
            .as_str()
            .unwrap()
            .ends_with("library.sqlite3")
    );
    assert_eq!(v["backends"]["image_generator"], "none");
    let forced = env.json(&["doctor", "--json", "--image-protocol", "none"]);
    assert_eq!(forced["terminal"]["image_protocol"], "off");
    let text = env.run(&["doctor"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("image_protocol") && text.contains("models"),
        "{text}"
    );

    // show-image: a library asset printed in the terminal (half blocks when not a terminal).
    let lib = demo_library();
    let dir = env.dir.path().join("two");
    std::fs::create_dir_all(&dir).unwrap();
    let mut copied = 0;
    for e in std::fs::read_dir(lib.join("images")).unwrap().flatten() {
        if copied < 2 {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            copied += 1;
        }
    }
    let r = env.json(&[
        "library",
        "ingest",
        dir.to_str().unwrap(),
        "--objective",
        "likes",
        "--node",
        "followers",
        "--json",
    ]);
    assert_eq!(r["ingested"], 2, "{r}");
    let listed = env.json(&["library", "list", "--json"]);
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let out = env.run(&["campaign", "show-image", &id[..12], "--width", "20"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains('▀') || shown.contains('▄'), "{shown}");
    assert!(shown.contains("library asset"), "{shown}");
    let out = env.run(&["campaign", "show-image", "nothing-like-this"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing-like-this"));
}

/// A library asset kept by reference whose original was replaced after ingest by a picture
/// over the pixel limit: show-image refuses it with the limit's name, as ingest would.
#[test]
fn show_image_applies_the_ingest_pixel_limit_to_a_changed_original() {
    let env = Env::new();
    let dir = env.dir.path().join("ref");
    std::fs::create_dir_all(&dir).unwrap();
    let small = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]));
    small.save(dir.join("a.png")).unwrap();
    let ingest = env
        .cmd()
        .env("CAMPAIGN_STUDIO_LIBRARY__ORIGINALS", "reference")
        .args([
            "library",
            "ingest",
            dir.to_str().unwrap(),
            "--objective",
            "likes",
            "--node",
            "followers",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        ingest.status.success(),
        "{}",
        String::from_utf8_lossy(&ingest.stderr)
    );
    // 3000 x 2000 = 6 Mpx, over a 5 Mpx limit.
    image::GrayImage::new(3000, 2000)
        .save(dir.join("a.png"))
        .unwrap();
    let listed = env.json(&["library", "list", "--json"]);
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let out = env
        .cmd()
        .env("CAMPAIGN_STUDIO_LIBRARY__MAX_PIXELS", "5000000")
        .args(["campaign", "show-image", &id[..12], "--width", "20"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("a.png") && stderr.contains("library.max_pixels"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked at"), "{stderr}");
}

/// The help names the text embedder the default config really uses (it once said MiniLM after
/// the default had become multilingual-e5-small).
#[test]
fn help_names_the_default_text_embedder() {
    let env = Env::new();
    let out = env.cmd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let default = campaign_studio::config::Config::defaults()
        .models
        .text_embedder;
    let title = campaign_studio::models::embedder_title(&default);
    assert!(help.contains(&title), "{title} missing from:\n{help}");
    assert!(!help.contains("MiniLM"), "{help}");
}

/// The demo fixtures ingested, then the text embedder's vectors of two of them removed, as a
/// `library reindex` stopped before its end leaves them.
fn half_reindexed_env() -> Env {
    let env = Env::new();
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let r = env.ingest(&lib, &lib.join("manifest.jsonl"));
    assert!(r["ingested"].as_u64().unwrap() > 2);
    let db = rusqlite::Connection::open(env.data().join("library.sqlite3")).unwrap();
    let removed = db
        .execute(
            "DELETE FROM embeddings WHERE rowid IN (SELECT rowid FROM embeddings \
             WHERE embedder LIKE 'local/multilingual-e5%' ORDER BY asset_id LIMIT 2)",
            [],
        )
        .unwrap();
    assert_eq!(removed, 2);
    env
}

#[test]
fn search_on_a_half_reindexed_library_fails_naming_library_reindex() {
    let env = half_reindexed_env();
    let out = env.run(&["search", "a bear in the woods"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("library reindex --embedder"), "{stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn search_with_allow_partial_index_warns_and_answers() {
    let env = half_reindexed_env();
    let out = env.run(&[
        "search",
        "a bear in the woods",
        "--allow-partial-index",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARNING") && stderr.contains("library reindex"),
        "{stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["hits"].as_array().unwrap().is_empty());
}

#[test]
fn library_stats_show_the_index_snapshot_a_search_wrote() {
    let env = Env::new();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let n = manifest_len(&demo);
    env.ingest(&demo, &demo.join("manifest.jsonl"));
    let text_index = |stats: &Value| {
        stats["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["embedder"].as_str().unwrap().contains("e5"))
            .cloned()
            .unwrap_or_else(|| panic!("no snapshot entry for the text embedder: {stats}"))
    };
    let before = env.json(&["library", "stats", "--json"]);
    assert_eq!(text_index(&before)["state"], "missing", "{before}");
    env.json(&["search", "a dog on a beach", "--json"]);
    let after = env.json(&["library", "stats", "--json"]);
    let s = text_index(&after);
    assert_eq!(
        (s["state"].as_str(), s["vectors"].as_u64()),
        (Some("current"), Some(n as u64)),
        "{after}"
    );
    let out = env.run(&["library", "stats"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("snapshot") && l.contains("e5") && l.contains(": current (")),
        "{text}"
    );
}

/// The demo library, plus (when `copy_of` names one of its images) a half-size copy of that
/// image in a folder of its own, ingested with the original's objective and node.
fn demo_env_with_copy(copy_of: Option<(&str, &str, &str)>) -> (Env, tempfile::TempDir) {
    let env = Env::new();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let r = env.ingest(&demo, &demo.join("manifest.jsonl"));
    assert!(r["ingested"].as_u64().unwrap() > 10, "{r}");
    let extra = tempfile::tempdir().unwrap();
    if let Some((file, objective, node)) = copy_of {
        let img = image::open(demo.join(file)).unwrap();
        img.resize(
            img.width() / 2,
            img.height() / 2,
            image::imageops::FilterType::Triangle,
        )
        .save(extra.path().join("copy.png"))
        .unwrap();
        let out = env.run(&[
            "library",
            "ingest",
            extra.path().to_str().unwrap(),
            "--objective",
            objective,
            "--node",
            node,
            "--kpi",
            "0.01",
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (env, extra)
}

const BEAR: &str = "coco-000000000285";

#[test]
fn search_like_finds_a_resized_copy_of_the_image_first() {
    let (env, _extra) = demo_env_with_copy(Some((
        "images/coco-000000000285.jpg",
        "likes",
        "new_customers",
    )));
    let r = env.json(&["search", "--like", BEAR, "-k", "3", "--json"]);
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits[0]["file"], "copy.png", "{r}");
    assert!(hits[0]["similarity"].as_f64().unwrap() > 0.9, "{r}");
}

#[test]
fn search_like_leaves_the_asset_itself_out_and_says_what_it_searched() {
    let (env, _extra) = demo_env_with_copy(None);
    let r = env.json(&["search", "--like", BEAR, "-k", "5", "--json"]);
    assert_eq!(r["query"], format!("images like {BEAR}"));
    assert_eq!(r["embedder"], "local/efficientnet-lite0/pool-1280");
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5, "{r}");
    assert!(hits.iter().all(|h| h["external_id"] != BEAR), "{r}");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

#[test]
fn search_like_keeps_to_the_filter() {
    let (env, _extra) = demo_env_with_copy(None);
    let r = env.json(&[
        "search",
        "--like",
        BEAR,
        "--objective",
        "clicks",
        "-k",
        "4",
        "--json",
    ]);
    let hits = r["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{r}");
    assert!(hits.iter().all(|h| h["objective"] == "clicks"), "{r}");
}

#[test]
fn search_like_an_unknown_asset_names_it_and_fails() {
    let (env, _extra) = demo_env_with_copy(None);
    let out = env.run(&["search", "--like", "no-such-asset"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no-such-asset"), "{stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn search_like_refuses_text_beside_it() {
    let env = Env::new();
    let out = env.run(&["search", "a bear", "--like", BEAR]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `id`'s demo photo ingested raw (its manifest row without caption and labels, as a folder of
/// photos would be), and `library show ID` (text).
fn show_raw_demo_photo(id: &str) -> (Env, String) {
    let env = Env::new();
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let manifest = std::fs::read_to_string(lib.join("manifest.jsonl")).unwrap();
    let row: Value = manifest
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("demo/manifest.jsonl lost {id}"));
    let raw = common::raw_row(&row);
    let mini = env.dir.path().join("raw.jsonl");
    std::fs::write(&mini, raw.to_string()).unwrap();
    assert_eq!(env.ingest(&lib, &mini)["ingested"].as_u64(), Some(1));
    let out = env.run(&["library", "show", id]);
    assert!(out.status.success());
    (env, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The skier is one of the photos the people score was not fitted on
/// (scripts/fit-people-score.py's split).
#[test]
fn a_raw_photo_of_a_skier_is_described_as_likely_showing_people() {
    let (env, shown) = show_raw_demo_photo("coco-000000000785");
    assert!(shown.contains("Likely shows people (score 0."), "{shown}");
    assert!(shown.contains("the score says likely people"), "{shown}");
    let a = env.json(&["library", "show", "coco-000000000785", "--json"]);
    let p = a["description"]["people"].as_f64().unwrap();
    assert!(p >= campaign_studio::services::local::people::threshold() as f64);
    assert!(
        a["description"]["sources"]["people"]
            .as_str()
            .unwrap()
            .contains("held-out precision")
    );
}

/// The green apples are held out too, and show no one.
#[test]
fn a_raw_photo_of_apples_is_not_described_as_showing_people() {
    let (_env, shown) = show_raw_demo_photo("coco-000000002149");
    assert!(!shown.contains("Likely shows people"), "{shown}");
    assert!(shown.contains("the score does not say people"), "{shown}");
}
