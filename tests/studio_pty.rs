//! PTY smoke test of the real binary in tmux: start the studio, write a brief, search, quit,
//! and check the terminal is back in cooked mode. Waits are bounded polls of the screen.
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Env, demo_library};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(session: &str, what: &str) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if screen.contains(what) {
            return screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what:?}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn studio_starts_searches_and_restores_the_terminal() {
    let env = Env::new();
    let lib = demo_library();
    env.ingest(&lib, &lib.join("manifest.jsonl"));
    let session = format!("cs-smoke-{}", std::process::id());
    let bin = assert_cmd::cargo::cargo_bin("campaign-studio");
    let stty = env.dir.path().join("stty.txt");
    let script = format!(
        "CAMPAIGN_STUDIO_CONFIG_DIR='{}' CAMPAIGN_STUDIO_DATA_DIR='{}' CAMPAIGN_STUDIO_CACHE_DIR='{}' '{}'; stty -a > '{}'; echo STUDIO-EXITED; sleep 30",
        env.dir.path().join("config").display(),
        env.data().display(),
        env.cache.display(),
        bin.display(),
        stty.display()
    );
    tmux(&["kill-session", "-t", &session]);
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "32",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(&session, "Sessions");
    tmux(&["send-keys", "-t", &session, "n"]);
    wait_for(&session, "Name: (new campaign");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "-l",
        "People playing tennis on a sunny court",
    ]);
    wait_for(&session, "People playing tennis");
    tmux(&["send-keys", "-t", &session, "C-s"]);
    let screen = wait_for(&session, "reference(s) found");
    assert!(
        screen.contains("sim ") && screen.contains("[ ]"),
        "{screen}"
    );
    tmux(&["send-keys", "-t", &session, "C-c"]);
    wait_for(&session, "STUDIO-EXITED");
    tmux(&["kill-session", "-t", &session]);
    let modes = std::fs::read_to_string(&stty).unwrap();
    assert!(
        modes.contains(" icanon") && modes.contains(" echo "),
        "terminal left in raw mode: {modes}"
    );
}

/// Ctrl-Z in an interactive shell: the shell gets a cooked terminal back, `fg` brings the
/// studio back fully drawn, and it still takes keys.
#[test]
fn ctrl_z_suspends_with_the_terminal_restored_and_fg_resumes() {
    let env = Env::new();
    let session = format!("cs-suspend-{}", std::process::id());
    let bin = assert_cmd::cargo::cargo_bin("campaign-studio");
    tmux(&["kill-session", "-t", &session]);
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "32",
            "bash",
            "--norc",
            "--noprofile",
            "-i",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let run = format!(
        "CAMPAIGN_STUDIO_CONFIG_DIR='{}' CAMPAIGN_STUDIO_DATA_DIR='{}' CAMPAIGN_STUDIO_CACHE_DIR='{}' '{}'",
        env.dir.path().join("config").display(),
        env.data().display(),
        env.cache.display(),
        bin.display(),
    );
    tmux(&["send-keys", "-t", &session, "-l", &run]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "No campaigns yet");
    tmux(&["send-keys", "-t", &session, "C-z"]);
    wait_for(&session, "Stopped");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "-l",
        "stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo | tr '\\n' + ; echo MODES",
    ]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "icanon+echo+MODES");
    tmux(&["send-keys", "-t", &session, "-l", "fg"]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "No campaigns yet");
    tmux(&["send-keys", "-t", &session, "n"]);
    wait_for(&session, "Name: (new campaign");
    tmux(&["send-keys", "-t", &session, "C-c"]);
    // Type only once the shell has the terminal again.
    let start = Instant::now();
    while tmux(&["display", "-p", "-t", &session, "#{pane_current_command}"]).trim() != "bash" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the studio did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux(&["send-keys", "-t", &session, "-l", "echo BACK-$?"]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    wait_for(&session, "BACK-0");
    tmux(&["kill-session", "-t", &session]);
}
