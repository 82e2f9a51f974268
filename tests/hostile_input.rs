//! Hostile input at every entry point, one scenario per test: each fails with a clear error
//! naming the item and what to do, the rest of a batch goes on, nothing panics (stderr never
//! holds "panicked at"; the process exits with a code, never a signal).
mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::Env;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};

fn jpeg(seed: u8) -> Vec<u8> {
    let img = RgbImage::from_fn(48, 32, |x, y| {
        Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_add(seed),
            seed,
        ])
    });
    let mut v = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut v), ImageFormat::Jpeg)
        .unwrap();
    v
}

/// A library root with `good.jpg` (and `good2.jpg`).
fn root(env: &Env) -> PathBuf {
    let root = env.dir.path().join("lib");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("good.jpg"), jpeg(3)).unwrap();
    std::fs::write(root.join("good2.jpg"), jpeg(9)).unwrap();
    root
}

fn row(id: &str, file: &str) -> Value {
    json!({"id": id, "file": file, "objective": "likes", "node": "followers", "results": 0.01})
}

fn mkfifo(p: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", p.display());
}

/// Runs `args`, asserting the process ended by itself (an exit code, no signal) and did not
/// panic.
fn run(env: &Env, args: &[&str]) -> Output {
    let out = env.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "ended by a signal: {stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    out
}

/// `library ingest ROOT --manifest FILE --json`: (report, the failure reasons by item).
fn ingest(env: &Env, root: &Path, manifest_bytes: &[u8]) -> (Value, Vec<(String, String)>) {
    let manifest = env.dir.path().join("manifest.jsonl");
    std::fs::write(&manifest, manifest_bytes).unwrap();
    let out = run(
        env,
        &[
            "library",
            "ingest",
            root.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--json",
        ],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let failed = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["item"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (report, failed)
}

fn lines(rows: &[Vec<u8>]) -> Vec<u8> {
    rows.join(&b'\n')
}

fn good_rows() -> [Vec<u8>; 2] {
    [
        row("good", "good.jpg").to_string().into_bytes(),
        row("good2", "good2.jpg").to_string().into_bytes(),
    ]
}

#[test]
fn a_manifest_row_naming_a_fifo_fails_as_not_a_regular_file() {
    let env = Env::new();
    let root = root(&env);
    mkfifo(&root.join("stuck.jpg"));
    let [a, b] = good_rows();
    let bad = row("fifo", "stuck.jpg").to_string().into_bytes();
    let (r, failed) = ingest(&env, &root, &lines(&[a, bad, b]));
    assert_eq!(r["ingested"], 2, "{r}");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "fifo");
    assert!(failed[0].1.contains("not a regular file"), "{failed:?}");
}

#[test]
fn a_fifo_in_a_scanned_folder_is_left_out_without_waiting_on_it() {
    let env = Env::new();
    let root = root(&env);
    mkfifo(&root.join("stuck.jpg"));
    let out = run(
        &env,
        &[
            "library",
            "ingest",
            root.to_str().unwrap(),
            "--objective",
            "likes",
            "--node",
            "followers",
            "--json",
        ],
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ingested"], 2, "{r}");
}

#[test]
fn a_manifest_line_of_100_mb_fails_alone_naming_the_limit() {
    let env = Env::new();
    let root = root(&env);
    let [a, b] = good_rows();
    let mut huge = row("huge", "good.jpg");
    huge["caption"] = json!("x".repeat(100 * 1024 * 1024));
    let (r, failed) = ingest(&env, &root, &lines(&[a, huge.to_string().into_bytes(), b]));
    assert_eq!(r["ingested"], 2, "{r}");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, "line 2");
    assert!(
        failed[0].1.contains("byte limit of a manifest line"),
        "{failed:?}"
    );
}

#[test]
fn a_manifest_line_that_is_not_utf8_fails_alone() {
    let env = Env::new();
    let root = root(&env);
    let [a, b] = good_rows();
    let mut bad = row("latin1", "good.jpg").to_string().into_bytes();
    bad.extend_from_slice(b" \xE9t\xE9");
    let (r, failed) = ingest(&env, &root, &lines(&[a, bad, b]));
    assert_eq!(r["ingested"], 2, "{r}");
    assert_eq!(failed[0].0, "line 2");
    assert!(failed[0].1.contains("not UTF-8"), "{failed:?}");
}

#[test]
fn a_manifest_line_with_a_nul_byte_fails_alone() {
    let env = Env::new();
    let root = root(&env);
    let [a, b] = good_rows();
    let bad = b"{\"id\": \"nul\0\", \"file\": \"good.jpg\"}".to_vec();
    let (r, failed) = ingest(&env, &root, &lines(&[a, bad, b]));
    assert_eq!(r["ingested"], 2, "{r}");
    assert_eq!(failed[0].0, "line 2");
    assert!(failed[0].1.contains("invalid JSON"), "{failed:?}");
}

#[test]
fn deeply_nested_json_fails_its_line_without_overflowing_the_stack() {
    let env = Env::new();
    let root = root(&env);
    let [a, b] = good_rows();
    let mut deep = b"{\"id\": \"deep\", \"file\": \"good.jpg\", \"x\": ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 200_000));
    let (r, failed) = ingest(&env, &root, &lines(&[a, deep, b]));
    assert_eq!(r["ingested"], 2, "{r}");
    assert_eq!(failed[0].0, "line 2");
    assert!(failed[0].1.contains("invalid JSON"), "{failed:?}");
}

#[test]
fn an_id_with_a_right_to_left_override_is_refused_naming_the_character() {
    let env = Env::new();
    let root = root(&env);
    let [a, _] = good_rows();
    let spoof = row("invoice\u{202E}gpj.exe", "good2.jpg")
        .to_string()
        .into_bytes();
    let (r, failed) = ingest(&env, &root, &lines(&[a, spoof]));
    assert_eq!(r["ingested"], 1, "{r}");
    assert!(failed[0].1.contains("U+202E"), "{failed:?}");
}

#[test]
fn an_id_with_a_zero_width_space_is_refused() {
    let env = Env::new();
    let root = root(&env);
    let [a, _] = good_rows();
    let twin = row("go\u{200B}od", "good2.jpg").to_string().into_bytes();
    let (r, failed) = ingest(&env, &root, &lines(&[a, twin]));
    assert_eq!(r["ingested"], 1, "{r}");
    assert!(failed[0].1.contains("U+200B"), "{failed:?}");
}

/// One asset whose id is a spreadsheet formula and whose caption is a script, chosen as the
/// reference of a campaign that is then exported; returns the export folder.
fn exported_hostile_reference(env: &Env) -> PathBuf {
    let root = root(env);
    let mut r = row("=HYPERLINK(\"http://attacker.example\",\"x\")", "good.jpg");
    r["caption"] = json!("<script>alert(1)</script> a cat & a dog");
    let (report, failed) = ingest(env, &root, r.to_string().as_bytes());
    assert_eq!(report["ingested"], 1, "{failed:?}");
    let c = env.json(&[
        "campaign",
        "new",
        "--name",
        "Hostile",
        "--brief",
        "A cat and a dog",
        "--objective",
        "likes",
        "--node",
        "followers",
        "--json",
    ]);
    let id = c["id"].as_str().unwrap().to_string();
    let asset = env.json(&["library", "list", "--json"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.json(&["campaign", "select", &id, &asset, "--json"]);
    let out = env.dir.path().join("export");
    env.json(&[
        "campaign",
        "export",
        &id,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    out
}

#[test]
fn a_caption_with_a_script_tag_is_escaped_in_index_html() {
    let env = Env::new();
    let out = exported_hostile_reference(&env);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(!html.contains("<script"), "a script tag reached index.html");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

#[test]
fn a_formula_id_comes_out_inert_in_references_csv() {
    let env = Env::new();
    let out = exported_hostile_reference(&env);
    let mut rdr = csv::Reader::from_path(out.join("references.csv")).unwrap();
    let rec = rdr.records().next().unwrap().unwrap();
    assert!(rec[0].starts_with("'=HYPERLINK"), "{:?}", &rec[0]);
}

#[test]
fn a_truncated_library_database_is_refused_and_left_unchanged() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    let db = env.data().join("library.sqlite3");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..2000u32).map(|i| (i * 31 % 251) as u8));
    std::fs::write(&db, &bytes).unwrap();
    let out = run(&env, &["library", "stats", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("library.sqlite3"), "{stderr}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "the file was changed");
}

fn with_config(env: &Env, toml: &str) -> String {
    let dir = env.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), toml).unwrap();
    let out = run(env, &["library", "stats", "--json"]);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_config_value_of_the_wrong_type_names_the_file_and_the_key() {
    let env = Env::new();
    let e = with_config(&env, "[search]\nk = \"eight\"\n");
    assert!(e.contains("config.toml") && e.contains("search.k"), "{e}");
}

#[test]
fn an_unknown_config_key_is_named() {
    let env = Env::new();
    let e = with_config(&env, "[search]\nkk = 8\n");
    assert!(e.contains("config.toml") && e.contains("kk"), "{e}");
}

#[test]
fn an_out_of_range_config_number_names_the_allowed_range() {
    let env = Env::new();
    let e = with_config(&env, "[search]\nk = 5000\n");
    assert!(e.contains("search.k") && e.contains("1000"), "{e}");
}

#[test]
fn an_invalid_bedrock_region_is_named_with_an_example() {
    let env = Env::new();
    let e = with_config(&env, "[bedrock]\nregion = \"mars-north-1; rm -rf\"\n");
    assert!(
        e.contains("bedrock.region") && e.contains("us-east-1"),
        "{e}"
    );
}

#[test]
fn an_endpoint_that_is_not_a_url_is_named_with_an_example() {
    let env = Env::new();
    let e = with_config(&env, "[bedrock]\nendpoint_url = \"bedrock.local\"\n");
    assert!(
        e.contains("bedrock.endpoint_url") && e.contains("https://"),
        "{e}"
    );
}

#[test]
fn an_opensearch_url_with_credentials_in_it_is_refused() {
    let env = Env::new();
    let e = with_config(
        &env,
        "[index]\nbackend = \"opensearch\"\n[index.opensearch]\nurl = \"https://admin:secret@search.example.com\"\n",
    );
    assert!(
        e.contains("index.opensearch.url") && e.contains("credentials"),
        "{e}"
    );
    assert!(!e.contains("secret"), "the password was echoed: {e}");
}
