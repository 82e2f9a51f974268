//! Every kind of bad input fails its own item with a reason; the batch goes on.
mod common;

use std::io::Cursor;
use std::path::Path;

use common::Env;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};

fn encoded(seed: u8, w: u32, h: u32, f: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_add(seed),
            seed,
        ])
    });
    let mut v = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut v), f)
        .unwrap();
    v
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn bad_items_fail_with_reasons_and_good_ones_are_ingested() {
    let env = Env::new();
    let root = env.dir.path().join("lib");
    let good = encoded(3, 64, 48, ImageFormat::Jpeg);
    write(&root.join("good.jpg"), &good);
    write(
        &root.join("good2.png"),
        &encoded(7, 40, 40, ImageFormat::Png),
    );
    let mut corrupt = vec![0xFF, 0xD8, 0xFF, 0xE0];
    corrupt.extend((0..2000u32).map(|i| (i * 7919 % 251) as u8));
    write(&root.join("corrupt.jpg"), &corrupt);
    let trunc = encoded(5, 96, 96, ImageFormat::Jpeg); // under the 10 000 px limit below
    write(&root.join("truncated.jpg"), &trunc[..trunc.len() * 4 / 5]);
    write(&root.join("empty.jpg"), b"");
    write(
        &root.join("text.jpg"),
        b"this is a text file, not a photo\n",
    );
    write(
        &root.join("big.png"),
        &encoded(9, 200, 200, ImageFormat::Png),
    );
    write(&root.join("photo.heic"), b"\x00\x00\x00\x18ftypheic");
    write(&root.join("sub/dup.jpg"), &good);
    write(
        &env.dir.path().join("outside.jpg"),
        &encoded(11, 20, 20, ImageFormat::Jpeg),
    );
    std::os::unix::fs::symlink(
        env.dir.path().join("outside.jpg"),
        root.join("link_out.jpg"),
    )
    .unwrap();

    let row = |id: &str, file: &str| json!({"id": id, "file": file, "objective": "clicks", "node": "followers", "results": 0.01});
    let mut rows = vec![
        row("good", "good.jpg"),
        row("good2", "good2.png"),
        row("corrupt", "corrupt.jpg"),
        row("truncated", "truncated.jpg"),
        row("empty", "empty.jpg"),
        row("text", "text.jpg"),
        row("big", "big.png"),
        row("heic", "photo.heic"),
        row("missing", "nope.jpg"),
        row("good", "good2.png"),
        row("dotdot", "../outside.jpg"),
        row("abs", "/etc/hostname"),
        row("symlink", "link_out.jpg"),
        row("samecontent", "sub/dup.jpg"),
    ];
    let mut bad = row("badobj", "good.jpg");
    bad["objective"] = json!("sales");
    rows.push(bad);
    let mut bad = row("badnode", "good.jpg");
    bad["node"] = json!("fans");
    rows.push(bad);
    let mut bad = row("negkpi", "good.jpg");
    bad["results"] = json!(-0.5);
    rows.push(bad);
    let mut bad = row("nankpi", "good.jpg");
    bad["results"] = json!("lots");
    rows.push(bad);
    let mut text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    text.push("{not json".into());
    let manifest = env.dir.path().join("manifest.jsonl");
    std::fs::write(&manifest, text.join("\n")).unwrap();

    let out = env
        .cmd()
        .env("CAMPAIGN_STUDIO_LIBRARY__MAX_PIXELS", "10000")
        .args([
            "library",
            "ingest",
            root.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ingested"], 2, "{r}");
    let failed: Vec<(String, String)> = r["failed"]
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
    let reason = |item: &str| -> String {
        failed
            .iter()
            .find(|(i, _)| i == item)
            .map(|(_, r)| r.to_lowercase())
            .unwrap_or_else(|| panic!("no failure for {item}: {failed:?}"))
    };
    assert!(reason("corrupt").contains("corrupt") || reason("corrupt").contains("truncated"));
    assert!(reason("truncated").contains("truncated"));
    assert!(reason("empty").contains("empty file"));
    assert!(reason("text").contains("not an image") && reason("text").contains(".jpg"));
    assert!(reason("big").contains("max_pixels"));
    assert!(reason("heic").contains("unsupported format"));
    assert!(reason("missing").contains("not found"));
    assert!(reason("good").contains("duplicate id"));
    assert!(reason("dotdot").contains("escapes"));
    assert!(reason("abs").contains("absolute"));
    assert!(reason("symlink").contains("outside the library root"));
    assert!(reason("samecontent").contains("same image content"));
    assert!(reason("badobj").contains("sales") && reason("badobj").contains("awareness"));
    assert!(reason("badnode").contains("fans") && reason("badnode").contains("new_customers"));
    assert!(reason("negkpi").contains("negative"));
    assert!(reason("nankpi").contains("not a number"));
    assert!(reason("line 19").contains("invalid json"));
    assert_eq!(failed.len(), 17, "{failed:?}");

    // Nothing ingestable at all: non-zero exit, still one JSON object.
    let only_bad = env.dir.path().join("bad.jsonl");
    std::fs::write(&only_bad, row("x", "empty.jpg").to_string()).unwrap();
    let out = env.run(&[
        "library",
        "ingest",
        root.to_str().unwrap(),
        "--manifest",
        only_bad.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["failed"][0]["item"], "x");

    // An unreadable manifest is an error for the whole run.
    let out = env.run(&[
        "library",
        "ingest",
        root.to_str().unwrap(),
        "--manifest",
        "/nonexistent.jsonl",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonexistent.jsonl"));
}

#[test]
fn folder_without_manifest_uses_flags_and_csv_manifests_work() {
    let env = Env::new();
    let root = env.dir.path().join("photos");
    write(&root.join("a.jpg"), &encoded(21, 50, 30, ImageFormat::Jpeg));
    write(
        &root.join("nested/b.png"),
        &encoded(22, 30, 50, ImageFormat::Png),
    );
    write(&root.join("notes.txt"), b"not an image and not picked up");
    let r = env.json(&[
        "library",
        "ingest",
        root.to_str().unwrap(),
        "--objective",
        "awareness",
        "--node",
        "customers",
        "--kpi",
        "0.02",
        "--json",
    ]);
    assert_eq!(r["ingested"], 2, "{r}");
    let list = env.json(&["library", "list", "--json"]);
    let files: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["a.jpg", "nested/b.png"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|a| a["objective"] == "awareness" && a["kpi"] == 0.02)
    );

    // Without flags or manifest, nothing can be ingested: exit 1 with reasons.
    let out = env.run(&["library", "ingest", root.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));

    // CSV: same bytes as before, new metadata -> updated in place, not duplicated.
    let csv = env.dir.path().join("m.csv");
    std::fs::write(&csv, "file,objective,node,results,caption,campaign\na.jpg,likes,followers,0.07,A red and green pattern,Winter sale\n").unwrap();
    let r = env.ingest(&root, &csv);
    assert_eq!(r["updated"], 1, "{r}");
    let a = env.json(&["library", "show", "a.jpg", "--json"]);
    assert_eq!(a["caption"], "A red and green pattern");
    let list = env.json(&["library", "list", "--objective", "likes", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["metadata"]["campaign"], "Winter sale");
    assert_eq!(env.json(&["library", "stats", "--json"])["assets"], 2);
}
