//! Crash soak: `library ingest` killed with SIGKILL at 50 seeded moments (`--jobs` 1 and 2
//! alternately), each in a fresh library. After every kill the database passes
//! `PRAGMA integrity_check` and every asset is whole (its original, thumbnail and both vectors)
//! or absent; the next run completes the library with every asset exactly once and leaves no
//! file in the originals or thumbnails folders that no asset holds.
//!
//! The moment: after the k-th "ingested" progress line (k from 0 to 5, 0 = as soon as the
//! process says anything), then a seeded number of scheduler yields (0 to 20 000), so kills
//! land in model loading, mid-item, between the write of a file and its commit, and in a
//! commit. Bounded: a 6-image library, 50 kills, about two minutes. `SOAK_KILLS` changes the
//! count.
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::Env;

const IMAGES: usize = 6;

/// The first IMAGES rows of the demo library, as their own manifest.
fn small_library(env: &Env) -> (PathBuf, PathBuf) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let rows: Vec<String> = std::fs::read_to_string(demo.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .take(IMAGES)
        .map(str::to_string)
        .collect();
    let manifest = env.dir.path().join("six.jsonl");
    std::fs::write(&manifest, rows.join("\n")).unwrap();
    (demo, manifest)
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn db(env: &Env) -> Option<rusqlite::Connection> {
    let p = env.data().join("library.sqlite3");
    p.is_file().then(|| rusqlite::Connection::open(p).unwrap())
}

fn count(c: &rusqlite::Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Files under `dir/<shard>/` that no asset holds.
fn orphans(env: &Env, c: &rusqlite::Connection) -> Vec<PathBuf> {
    let mut held = std::collections::HashSet::new();
    let mut stmt = c
        .prepare("SELECT stored_path FROM assets UNION SELECT thumbnail_path FROM assets")
        .unwrap();
    for p in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        held.insert(PathBuf::from(p.unwrap()));
    }
    let mut out = Vec::new();
    for dir in ["originals", "thumbnails"] {
        let Ok(shards) = std::fs::read_dir(env.data().join(dir)) else {
            continue;
        };
        for shard in shards.flatten() {
            for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
                if !held.contains(&f.path()) {
                    out.push(f.path());
                }
            }
        }
    }
    out
}

fn check_whole_or_absent(env: &Env, kill: usize) {
    let Some(c) = db(env) else {
        return; // killed before the library existed
    };
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "kill {kill}");
    let assets = count(&c, "SELECT COUNT(*) FROM assets");
    assert!(assets <= IMAGES as i64, "kill {kill}: {assets} assets");
    assert_eq!(
        count(&c, "SELECT COUNT(DISTINCT external_id) FROM assets"),
        assets,
        "kill {kill}: an asset twice"
    );
    assert_eq!(
        count(
            &c,
            "SELECT COUNT(*) FROM assets a WHERE (SELECT COUNT(*) FROM embeddings e WHERE e.asset_id = a.id) != 2"
        ),
        0,
        "kill {kill}: an asset without its vectors"
    );
    let mut stmt = c
        .prepare("SELECT stored_path, thumbnail_path FROM assets")
        .unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (original, thumb) = row.unwrap();
        assert!(
            Path::new(&original).is_file(),
            "kill {kill}: {original} missing"
        );
        assert!(Path::new(&thumb).is_file(), "kill {kill}: {thumb} missing");
    }
}

#[test]
fn ingest_killed_at_50_seeded_moments_leaves_assets_whole_or_absent_and_reruns_complete() {
    let kills: usize = std::env::var("SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut seed = 0x00C0_FFEE_u64;
    for kill in 0..kills {
        let env = Env::new();
        let (root, manifest) = small_library(&env);
        let jobs = if kill % 2 == 0 { "1" } else { "2" };
        let after_lines = (xorshift(&mut seed) % 6) as usize;
        let yields = xorshift(&mut seed) % 20_000;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("campaign-studio"))
            .env("CAMPAIGN_STUDIO_CONFIG_DIR", env.dir.path().join("config"))
            .env("CAMPAIGN_STUDIO_DATA_DIR", env.data())
            .env("CAMPAIGN_STUDIO_CACHE_DIR", &env.cache)
            .args([
                "library",
                "ingest",
                root.to_str().unwrap(),
                "--manifest",
                manifest.to_str().unwrap(),
                "--jobs",
                jobs,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = 0;
        for line in stderr.lines() {
            let Ok(line) = line else { break };
            if after_lines == 0 || line.starts_with("ingested ") {
                seen += 1;
            }
            if seen >= after_lines.max(1) {
                break;
            }
        }
        for _ in 0..yields {
            std::thread::yield_now();
        }
        let _ = child.kill(); // SIGKILL; it may have finished already
        child.wait().unwrap();
        check_whole_or_absent(&env, kill);

        // The next run completes it: every asset once, no file nobody holds.
        let r = env.ingest(&root, &manifest);
        assert!(
            r["failed"].as_array().unwrap().is_empty(),
            "kill {kill}: {r}"
        );
        let c = db(&env).unwrap();
        assert_eq!(
            count(&c, "SELECT COUNT(*) FROM assets"),
            IMAGES as i64,
            "kill {kill}"
        );
        check_whole_or_absent(&env, kill);
        let left = orphans(&env, &c);
        assert!(
            left.is_empty(),
            "kill {kill}: files no asset holds: {left:?}"
        );
    }
}
