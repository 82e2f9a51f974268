//! The data dir on a file system that fills up, or that turns read-only: a clear error naming
//! what failed, no panic, the database intact, every asset whole or absent, and the next run
//! (with room again) completes. The file systems are small tmpfs mounts made by the test (the
//! project's machines run tests as root; without the right to mount the test fails, saying so).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Env;

/// A tmpfs of `size` mounted on a fresh folder; unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(under: &Path, size: &str) -> Tmpfs {
        let path = under.join("fs");
        std::fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (these tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { path }
    }

    fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// The demo library's ingest with the data dir at `data`.
fn ingest(env: &Env, data: &Path) -> std::process::Output {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    env.cmd()
        .env("CAMPAIGN_STUDIO_DATA_DIR", data)
        .args([
            "library",
            "ingest",
            demo.to_str().unwrap(),
            "--manifest",
            demo.join("manifest.jsonl").to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap()
}

fn demo_len() -> i64 {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/manifest.jsonl");
    std::fs::read_to_string(demo).unwrap().lines().count() as i64
}

/// Integrity ok and every asset whole (both vectors, its files); the number of assets.
fn whole_or_absent(data: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(
        data.join("library.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let broken: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM assets a WHERE (SELECT COUNT(*) FROM embeddings e WHERE e.asset_id = a.id) != 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(broken, 0, "an asset without its vectors");
    let mut stmt = c
        .prepare("SELECT stored_path, thumbnail_path FROM assets")
        .unwrap();
    let rows: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (o, t) in &rows {
        assert!(
            Path::new(o).is_file() && Path::new(t).is_file(),
            "{o} or {t} missing"
        );
    }
    rows.len() as i64
}

#[test]
fn a_full_disk_during_ingest_fails_clearly_and_the_next_run_completes() {
    let env = Env::new();
    let fs = Tmpfs::mount(env.dir.path(), "1m");
    let data = fs.path.join("data");
    let out = ingest(&env, &data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "ended by a signal: {stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert!(!out.status.success(), "1 MB cannot hold the demo library");
    // Whichever write meets the full disk first (a file: the OS's words; the database:
    // SQLite's), the advice is the same.
    assert!(
        stderr.contains("the disk holding the data dir is full"),
        "{stderr}"
    );
    let partial = whole_or_absent(&data);
    assert!(partial < demo_len());

    fs.remount("size=64m");
    let out = ingest(&env, &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(whole_or_absent(&data), demo_len());
}

#[test]
fn a_read_only_data_dir_fails_clearly_and_leaves_the_library_as_it_was() {
    let env = Env::new();
    let fs = Tmpfs::mount(env.dir.path(), "64m");
    let data = fs.path.join("data");
    let first = ingest(&env, &data);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let db = std::fs::read(data.join("library.sqlite3")).unwrap();
    fs.remount("ro");
    let out = ingest(&env, &data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some(), "ended by a signal: {stderr}");
    assert!(!stderr.contains("panicked at"), "{stderr}");
    assert!(!out.status.success());
    assert!(stderr.to_lowercase().contains("read-only"), "{stderr}");
    assert_eq!(std::fs::read(data.join("library.sqlite3")).unwrap(), db);
}
