//! What users of well-kept terminal tools expect: shell completions and man pages generated
//! from the command definitions, the effective configuration with where each value came from,
//! and a version that says which commit and backends a binary has.
mod common;

use std::collections::BTreeSet;

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every command path (["models", "fetch"], ...), read from the help's "Commands:" lists.
fn command_paths(env: &common::Env) -> Vec<Vec<String>> {
    fn walk(env: &common::Env, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = stdout(&env.run(&args));
        let subs: Vec<String> = help
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            // A command's line is indented by two; wrapped descriptions by more.
            .filter(|l| !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|c| c != "help")
            .collect();
        for sub in subs {
            let mut p = path.clone();
            p.push(sub);
            out.push(p.clone());
            walk(env, p, out);
        }
    }
    let mut out = Vec::new();
    walk(env, Vec::new(), &mut out);
    out
}

#[test]
fn completions_are_generated_for_every_shell_and_name_every_subcommand() {
    let env = common::Env::without_models();
    let commands = command_paths(&env);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let text = stdout(&env.run(&["completions", shell]));
        assert!(text.len() > 1000, "{shell}: {} bytes", text.len());
        for path in &commands {
            let name = path.last().unwrap();
            assert!(
                text.contains(name.as_str()),
                "{shell} completions lack {path:?}"
            );
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_there_are() {
    let env = common::Env::without_models();
    let out = env.run(&["completions", "tcsh"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bash") && err.contains("zsh"), "{err}");
}

#[test]
fn man_writes_a_non_empty_page_for_every_command() {
    let env = common::Env::without_models();
    let dir = env.dir.path().join("man");
    let out = env.run(&["man", "--out", dir.to_str().unwrap()]);
    stdout(&out);
    let written: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut expected = vec!["campaign-studio.1".to_string()];
    for path in command_paths(&env) {
        expected.push(format!("campaign-studio-{}.1", path.join("-")));
    }
    assert!(expected.len() > 30, "{expected:?}");
    for page in &expected {
        assert!(
            written.contains(page),
            "no man page {page}; have {written:?}"
        );
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH") && text.contains(".SH NAME"), "{page}");
    }
    assert_eq!(written.len(), expected.len(), "{written:?}");
}

#[test]
fn man_without_out_prints_the_main_page() {
    let env = common::Env::without_models();
    let text = stdout(&env.run(&["man"]));
    assert!(
        text.contains(".TH campaign-studio"),
        "{}",
        &text[..200.min(text.len())]
    );
    assert!(text.contains("models"));
}

#[test]
fn version_names_the_commit_and_the_backends() {
    let env = common::Env::without_models();
    let text = stdout(&env.run(&["--version"]));
    assert!(text.contains("commit "), "{text}");
    for backend in ["embedded", "opensearch", "bedrock"] {
        assert!(text.contains(backend), "{text}");
    }
}

#[test]
fn doctor_names_the_commit_and_the_compiled_backends() {
    let env = common::Env::without_models();
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&env.run(&["doctor", "--json"]))).unwrap();
    assert_eq!(v["commit"], campaign_studio::COMMIT);
    assert_eq!(v["compiled_backends"].as_array().unwrap().len(), 3);
}

fn settings(out: &std::process::Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    v["settings"].clone()
}

fn source_of(settings: &serde_json::Value, key: &str) -> String {
    settings
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key}"))["source"]
        .as_str()
        .unwrap()
        .to_string()
}

fn value_of(settings: &serde_json::Value, key: &str) -> serde_json::Value {
    settings
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()["value"]
        .clone()
}

#[test]
fn config_show_names_the_layer_each_value_came_from() {
    let env = common::Env::without_models();
    let dir = env.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "[search]\nk = 5\n").unwrap();
    let out = env
        .cmd()
        .env("CAMPAIGN_STUDIO_SEARCH__KPI_WEIGHT", "0.5")
        .args(["--image-protocol", "none", "config", "show", "--json"])
        .output()
        .unwrap();
    let s = settings(&out);
    assert_eq!(source_of(&s, "search.rerank_factor"), "default");
    assert_eq!(
        source_of(&s, "search.k"),
        format!("file {}", dir.join("config.toml").display())
    );
    assert_eq!(value_of(&s, "search.k"), 5);
    assert_eq!(
        source_of(&s, "search.kpi_weight"),
        "env CAMPAIGN_STUDIO_SEARCH__KPI_WEIGHT"
    );
    assert_eq!(value_of(&s, "search.kpi_weight"), 0.5);
    assert_eq!(
        source_of(&s, "studio.image_protocol"),
        "flag --image-protocol"
    );
    assert_eq!(value_of(&s, "studio.image_protocol"), "none");
}

#[test]
fn config_show_lists_every_default_key() {
    let env = common::Env::without_models();
    let s = settings(&env.run(&["config", "show", "--json"]));
    let keys: Vec<&str> = s
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"].as_str().unwrap())
        .collect();
    for key in [
        "models.text_embedder",
        "models.index_url",
        "index.opensearch.url",
        "studio.clipboard",
        "bedrock.models.writer.id",
    ] {
        assert!(keys.contains(&key), "{key} missing");
    }
}

#[test]
fn config_show_never_prints_secrets_from_the_environment() {
    let env = common::Env::without_models();
    let out = env
        .cmd()
        .env("OPENSEARCH_PASSWORD", "hunter2-secret")
        .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret")
        .env("AWS_SESSION_TOKEN", "token-secret")
        .args(["config", "show"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    for secret in ["hunter2", "wJalrXUtnFEMI", "token-secret"] {
        assert!(!text.contains(secret), "{secret} printed");
    }
}

#[test]
fn config_show_with_a_bad_file_names_the_file_and_key() {
    let env = common::Env::without_models();
    let dir = env.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "[search]\nk = \"many\"\n").unwrap();
    let out = env.run(&["config", "show"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("search.k"),
        "{err}"
    );
}

#[test]
fn config_default_prints_the_commented_defaults() {
    let env = common::Env::without_models();
    let text = stdout(&env.run(&["config", "default"]));
    assert_eq!(text, campaign_studio::config::DEFAULT_TOML);
    // What it prints is a valid config file.
    campaign_studio::config::Config::from_toml_str(&text, "config default").unwrap();
}

#[test]
fn config_path_prints_where_the_file_is_read_from() {
    let env = common::Env::without_models();
    let text = stdout(&env.run(&["config", "path"]));
    assert_eq!(
        text.trim(),
        env.dir
            .path()
            .join("config")
            .join("config.toml")
            .display()
            .to_string()
    );
}
