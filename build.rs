//! Records the git commit the binary is built from, for `--version` and `doctor`. A build
//! outside a git checkout (a source tarball, `cargo install` from a registry) says "unknown".
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CAMPAIGN_STUDIO_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout); uncommitted edits are not tracked (that
    // would rebuild on every `git status`).
    // The reflog gains a line on every commit, checkout and reset, whether the branch's ref
    // is a loose file or packed (after `git gc`).
    for path in [".git/HEAD", ".git/logs/HEAD", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(head) = std::fs::read_to_string(".git/HEAD")
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        let r = format!(".git/{head}");
        if std::path::Path::new(&r).exists() {
            println!("cargo:rerun-if-changed={r}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
