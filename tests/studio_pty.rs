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

/// The studio binary with this test's config, data and cache dirs, as a shell command.
fn studio_command(env: &Env) -> String {
    format!(
        "CAMPAIGN_STUDIO_CONFIG_DIR='{}' CAMPAIGN_STUDIO_DATA_DIR='{}' CAMPAIGN_STUDIO_CACHE_DIR='{}' '{}'",
        env.dir.path().join("config").display(),
        env.data().display(),
        env.cache.display(),
        assert_cmd::cargo::cargo_bin("campaign-studio").display(),
    )
}

/// Starts a detached 120x32 session `session` running `argv`, on the tmux server `tmux_args`
/// name (empty: the default one).
fn new_session(tmux_args: &[&str], session: &str, argv: &[&str]) {
    let status = Command::new("tmux")
        .args(tmux_args)
        .args(["new-session", "-d", "-s", session, "-x", "120", "-y", "32"])
        .args(argv)
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_for(session: &str, what: &str) -> String {
    wait_until(|| tmux(&["capture-pane", "-p", "-t", session]), what)
}

/// Polls `capture` (a screen) until it shows `what`, for at most 60 s.
fn wait_until(capture: impl Fn() -> String, what: &str) -> String {
    let start = Instant::now();
    loop {
        let screen = capture();
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
    let stty = env.dir.path().join("stty.txt");
    let script = format!(
        "{}; stty -a > '{}'; echo STUDIO-EXITED; sleep 30",
        studio_command(&env),
        stty.display()
    );
    tmux(&["kill-session", "-t", &session]);
    new_session(&[], &session, &["sh", "-c", &script]);
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
    tmux(&["kill-session", "-t", &session]);
    new_session(&[], &session, &["bash", "--norc", "--noprofile", "-i"]);
    let run = studio_command(&env);
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

/// The studio killed with SIGKILL at 10 seeded moments while keys arrive (its session writer
/// saving views as they change): each time the database passes `PRAGMA integrity_check`,
/// every saved view is whole JSON, and the studio opens again on that library.
#[test]
fn studio_killed_while_keys_arrive_leaves_whole_views_and_reopens() {
    let env = Env::new();
    let lib = demo_library();
    env.ingest(&lib, &lib.join("manifest.jsonl"));
    let start = |session: &str| {
        let script = format!("exec env {}", studio_command(&env));
        tmux(&["kill-session", "-t", session]);
        new_session(&[], session, &["sh", "-c", &script]);
        wait_for(session, "Sessions");
    };
    // Each step: keys, then what the screen shows once they are taken.
    let steps: [(&[&str], &str); 6] = [
        (&["n"], "Name: (new campaign"),
        (&["-l", "Dogs running on a beach"], "Dogs running"),
        (&["C-s"], "reference(s) found"),
        (&[" "], "[x]"),
        (&["Right", " "], "[x]"),
        (&["Tab"], "Prompt"),
    ];
    let mut seed = 0x50A_u64;
    for kill in 0..10 {
        let session = format!("cs-soak-{}-{kill}", std::process::id());
        start(&session);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let upto = (seed % (steps.len() as u64 + 1)) as usize;
        for (i, (keys, shows)) in steps.iter().enumerate() {
            let mut args = vec!["send-keys", "-t", session.as_str()];
            args.extend_from_slice(keys);
            tmux(&args);
            if i + 1 == upto {
                break; // killed right after these keys, before they are drawn
            }
            wait_for(&session, shows);
        }
        let pid = tmux(&["display", "-p", "-t", &session, "#{pane_pid}"]);
        let pid = pid.trim();
        let killed = Command::new("kill").args(["-9", pid]).status().unwrap();
        assert!(killed.success(), "kill -9 {pid}");
        tmux(&["kill-session", "-t", &session]);

        let c = rusqlite::Connection::open(env.data().join("library.sqlite3")).unwrap();
        let integrity: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "kill {kill}");
        let mut stmt = c
            .prepare("SELECT view FROM campaigns WHERE view IS NOT NULL")
            .unwrap();
        for v in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            let v = v.unwrap();
            assert!(
                serde_json::from_str::<serde_json::Value>(&v).is_ok(),
                "kill {kill}: a torn view: {v}"
            );
        }
        drop(stmt);
        drop(c);
        // It opens again, campaigns listed.
        start(&session);
        tmux(&["send-keys", "-t", &session, "C-c"]);
        tmux(&["kill-session", "-t", &session]);
    }
}

/// Ctrl-Y through a real terminal multiplexer: tmux, told to take clipboard sequences from
/// programs (`set-clipboard on`), receives the brief with OSC 52 and keeps it as its paste
/// buffer. Runs on its own tmux server (a socket of this test), stopped at the end.
#[test]
fn ctrl_y_puts_the_focused_text_on_the_clipboard_through_tmux() {
    let env = Env::new();
    let socket = format!("cs-clip-{}", std::process::id());
    let tm = |args: &[&str]| {
        let mut all = vec!["-L", socket.as_str()];
        all.extend_from_slice(args);
        tmux(&all)
    };
    let script = format!("{}; echo STUDIO-EXITED; sleep 30", studio_command(&env));
    new_session(
        &["-L", &socket, "-f", "/dev/null"],
        "clip",
        &["sh", "-c", &script],
    );
    tm(&["set-option", "-s", "set-clipboard", "on"]);
    let wait = |what: &str| wait_until(|| tm(&["capture-pane", "-p", "-t", "clip"]), what);
    wait("Sessions");
    tm(&["send-keys", "-t", "clip", "n"]);
    wait("Name: (new campaign");
    let brief = "Friends sharing a picnic in a sunny park";
    tm(&["send-keys", "-t", "clip", "-l", brief]);
    wait("sharing a picnic");
    tm(&["send-keys", "-t", "clip", "C-y"]);
    let screen = wait("Copied the brief");
    assert!(screen.contains("through tmux"), "{screen}");
    let start = Instant::now();
    let mut buffer = tm(&["show-buffer"]);
    while buffer.trim() != brief && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        buffer = tm(&["show-buffer"]);
    }
    tm(&["send-keys", "-t", "clip", "C-c"]);
    tm(&["kill-server"]);
    assert_eq!(buffer.trim(), brief);
}
