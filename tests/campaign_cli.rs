//! The headless campaign flow on the demo library with the real models and the offline composer.
mod common;

use common::{Env, demo_library};
use serde_json::Value;

fn ingest_demo(env: &Env) {
    let lib = demo_library();
    let m = lib.join("manifest.jsonl");
    let r = env.ingest(&lib, &m);
    assert!(r["failed"].as_array().unwrap().is_empty());
}

#[test]
fn brief_to_prompt_with_every_step_saved() {
    let env = Env::new();
    ingest_demo(&env);
    let brand = env.dir.path().join("brand.toml");
    std::fs::write(
        &brand,
        "name = \"Acme Sports\"\npalette = [\"#ff6600\"]\ntone = [\"energetic\"]\nmust_avoid = [\"injuries\"]\nnegative_terms = [\"clutter\"]\n",
    )
    .unwrap();
    let c = env.json(&[
        "campaign", "new", "--name", "Summer tennis", "--brief",
        "Launch our new tennis racket for weekend players. People playing tennis outdoors on a sunny court.",
        "--objective", "awareness", "--node", "followers", "--brand", brand.to_str().unwrap(), "--json",
    ]);
    let id = c["id"].as_str().unwrap().to_string();
    assert_eq!(c["step"], "brief");
    assert_eq!(c["brand"]["name"], "Acme Sports");

    // Unknown objective: a message listing the allowed values.
    let out = env.run(&[
        "campaign",
        "new",
        "--name",
        "x",
        "--brief",
        "y",
        "--objective",
        "sales",
        "--node",
        "followers",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sales") && err.contains("clicks, awareness, likes, conversions"),
        "{err}"
    );

    let r = env.json(&["campaign", "recommend", &id, "-k", "4", "--json"]);
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 4, "{r}");
    assert!(
        hits.iter()
            .all(|h| h["objective"] == "awareness" && h["node"] == "followers")
    );
    for f in [
        "asset_id",
        "external_id",
        "file",
        "similarity",
        "kpi",
        "score",
        "description",
        "elements",
    ] {
        assert!(hits[0].get(f).is_some(), "{f}");
    }
    let picks: Vec<String> = hits[..2]
        .iter()
        .map(|h| h["external_id"].as_str().unwrap().to_string())
        .collect();
    let s = env.json(&["campaign", "select", &id, &picks[0], &picks[1], "--json"]);
    assert_eq!(s["selected"].as_array().unwrap().len(), 2);
    let out = env.run(&["campaign", "select", &id, "no-such-asset"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-asset"));

    // The prompt: reasoning streams to stderr, the result is one JSON object on stdout.
    let out = env.run(&["campaign", "prompt", &id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Subject, from the brief"), "{stderr}");
    assert!(p["prompt"].as_str().unwrap().chars().count() <= 512);
    assert!(
        p["prompt"]
            .as_str()
            .unwrap()
            .starts_with("tennis racket for weekend players"),
        "{p}"
    );
    assert!(p["negative_prompt"].as_str().unwrap().contains("injuries"));
    assert!(
        p["model"]
            .as_str()
            .unwrap()
            .contains("not a language model")
    );
    assert_eq!(p["references"].as_array().unwrap().len(), 2);
    for r in p["references"].as_array().unwrap() {
        assert!(p["reasoning"].as_str().unwrap().len() > 50);
        assert_eq!(r.as_str().unwrap().len(), 64);
    }

    // --stream-json: reasoning and answer deltas in order, then the result.
    let out = env.run(&[
        "campaign",
        "prompt",
        &id,
        "--instruction",
        "shot at golden hour",
        "--stream-json",
    ]);
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let first_answer = kinds.iter().position(|k| *k == "answer").unwrap();
    assert!(kinds[..first_answer].iter().all(|k| *k == "reasoning"));
    assert_eq!(kinds.last(), Some(&"result"));
    let answer: String = events
        .iter()
        .filter(|e| e["type"] == "answer")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let result = events.last().unwrap();
    assert_eq!(answer, result["prompt"].as_str().unwrap());
    assert!(answer.contains("shot at golden hour"));
    assert_eq!(result["instruction"], "shot at golden hour");

    // The optional rephrase by the small local model: streamed, labelled, and either used or
    // declined with a reason (a 135M model often drops details).
    let out = env.run(&["campaign", "prompt", &id, "--rephrase", "--stream-json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let said: String = ev
        .iter()
        .filter(|e| e["type"] == "answer")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert!(
        said.starts_with("A photograph of") && said.len() > 20,
        "{said}"
    );
    let res = ev.last().unwrap();
    assert!(res["model"].as_str().unwrap().contains("small local model"));
    let declined = res["flags"].as_array().unwrap().iter().any(|f| {
        f.as_str()
            .unwrap()
            .starts_with("kept the composer's prompt")
    });
    assert_eq!(declined, res["prompt"] != said.trim(), "{res}");
    // Back to the plain composer version for the steps below.
    env.json(&[
        "campaign",
        "prompt",
        &id,
        "--instruction",
        "shot at golden hour",
        "--json",
    ]);

    let e = env.json(&[
        "campaign",
        "prompt-edit",
        &id,
        "--text",
        "A tennis player mid-serve, orange court, wide shot",
        "--json",
    ]);
    assert_eq!(e["source"], "user");
    let r = env.json(&["campaign", "prompt-restore", &id, "--json"]);
    assert_eq!(r["source"], "ai");
    assert_eq!(r["prompt"], result["prompt"]);

    let show = env.json(&["campaign", "show", &id, "--json"]);
    assert_eq!(show["campaign"]["step"], "prompt");
    assert_eq!(show["runs"].as_array().unwrap().len(), 1);
    let versions: Vec<&str> = show["prompt_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["source"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["ai", "ai", "ai", "ai", "user", "ai"]);

    // Offline there is no image generator: non-zero exit, says so, offers the mood board.
    let out = env.run(&[
        "campaign", "generate", &id, "--count", "2", "--aspect", "16:9",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no image generator") && err.contains(&format!("campaign moodboard {id}")),
        "{err}"
    );
    let out = env.run(&["campaign", "generate", &id, "--count", "6"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("6"));

    let mb = env.dir.path().join("board.png");
    let r = env.json(&[
        "campaign",
        "moodboard",
        &id,
        "--out",
        mb.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(r["references"], 2);
    let img = image::open(&mb).unwrap();
    assert_eq!(img.width(), 1600);
    // The default location is used by export.
    env.json(&["campaign", "moodboard", &id, "--json"]);
    let out_dir = env.dir.path().join("export");
    let r = env.json(&[
        "campaign",
        "export",
        &id,
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (r["images"].as_u64(), r["references"].as_u64()),
        (Some(0), Some(2))
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(doc["moodboard"], "moodboard.png");
    assert!(out_dir.join("moodboard.png").is_file());
    assert_eq!(doc["prompt_versions"].as_array().unwrap().len(), 6);
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(html.contains("No images were generated") && html.contains("Mood board"));

    let renamed = env.json(&["campaign", "rename", &id, "Summer tennis 2027", "--json"]);
    assert_eq!(renamed["name"], "Summer tennis 2027");
    let list = env.json(&["campaign", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    env.json(&["campaign", "delete", "Summer tennis 2027", "--json"]);
    assert!(
        env.json(&["campaign", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// The case, end to end through `campaign prompt` and the library's own text embedder:
/// a cycling brief with a skier and a bear chosen as references gets their light and colours
/// but none of their objects, and the scratchpad says which it left out.
#[test]
fn a_cycling_prompt_leaves_out_the_objects_of_a_skier_and_a_bear() {
    let env = Env::new();
    ingest_demo(&env);
    let c = env.json(&[
        "campaign",
        "new",
        "--name",
        "Summer cycling",
        "--brief",
        "Summer cycling campaign: young people riding bikes in the city on a sunny day",
        "--objective",
        "likes",
        "--node",
        "followers",
        "--json",
    ]);
    let id = c["id"].as_str().unwrap().to_string();
    env.json(&[
        "campaign",
        "select",
        &id,
        "coco-000000000785",
        "coco-000000000285",
        "--json",
    ]);
    let out = env.run(&["campaign", "prompt", &id, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let prompt = p["prompt"].as_str().unwrap();
    for object in ["ski", "bear"] {
        assert!(!prompt.contains(object), "{object} in: {prompt}");
    }
    let reasoning = p["reasoning"].as_str().unwrap();
    assert!(
        reasoning.contains("Left out reference elements the brief does not call for")
            && reasoning.contains("\"skis\" (coco-000000000785")
            && reasoning.contains("\"brown bear\" (coco-000000000285"),
        "{reasoning}"
    );
}

/// An English-only text embedder (MiniLM) cannot judge a Spanish brief it is given untranslated:
/// the composer keeps the references' elements and says it could not check them, rather than
/// leaving out objects the brief asks for.
#[test]
fn an_english_only_embedder_does_not_judge_a_spanish_brief() {
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join("config")).unwrap();
    std::fs::write(
        env.dir.path().join("config/config.toml"),
        "[models]\ntext_embedder = \"local/minilm-l6-v2/desc-v1\"\n",
    )
    .unwrap();
    ingest_demo(&env);
    let c = env.json(&[
        "campaign",
        "new",
        "--name",
        "Esquí",
        "--brief",
        "Vacaciones de esquí en invierno: esquiadores en una pista soleada de los Alpes",
        "--objective",
        "likes",
        "--node",
        "followers",
        "--json",
    ]);
    let id = c["id"].as_str().unwrap().to_string();
    env.json(&["campaign", "select", &id, "coco-000000000785", "--json"]);
    // With no translator (where Apertium is installed the composer gets the brief's English
    // translation, which MiniLM can judge).
    let out = env
        .cmd()
        .env("CAMPAIGN_STUDIO_APERTIUM", "off")
        .args(["campaign", "prompt", &id, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasoning = p["reasoning"].as_str().unwrap();
    assert!(
        reasoning.contains("I could not check the references' elements against the brief")
            && !reasoning.contains("Left out reference elements"),
        "{reasoning}"
    );
    assert!(p["prompt"].as_str().unwrap().contains("skis"), "{p}");
}
