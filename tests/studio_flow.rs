//! Scripted key flows through the whole studio loop minus the terminal: keys go through the
//! keymap into `update`, effects run on the real `Runner` (store, search, prompt writer,
//! generation, ingest, persistence) with deterministic fake embedder, analyser and generator,
//! and results come back into `update`. No clock, no sleeps: each effect runs to completion.
mod common;

use common::studio::Studio;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use campaign_studio::app::keymap::default_keymap;
use campaign_studio::app::state::{ImageKey, ImageSlot};
use campaign_studio::app::{Action, Effect, Pane, update};
use campaign_studio::config::Config;
use campaign_studio::domain::{PromptSource, TaskType};
use campaign_studio::engine::Library;
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::FakeGenerator;
use campaign_studio::tui::Runner;
use campaign_studio::tui::images;
use campaign_studio::ui::Ui;
use crossterm::event::{KeyCode, KeyModifiers};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

fn png(i: u32, w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([(i * 20) as u8, (x * 3) as u8, (y * 5 + i) as u8])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .unwrap();
    bytes
}

fn library(dir: &Path) -> Library {
    let root = dir.join("lib");
    std::fs::create_dir_all(&root).unwrap();
    let themes = [
        "dog running on a beach",
        "family dinner",
        "red car on a road",
    ];
    let mut rows = Vec::new();
    for i in 0..12u32 {
        std::fs::write(root.join(format!("{i}.png")), png(i, 64, 48)).unwrap();
        rows.push(
            json!({"id": format!("a{i:02}"), "file": format!("{i}.png"),
            "caption": format!("{} {i}", themes[i as usize % 3]), "objective": "likes",
            "node": "followers", "results": i as f64 / 100.0})
            .to_string(),
        );
    }
    std::fs::write(root.join("manifest.jsonl"), rows.join("\n")).unwrap();
    let paths = Paths::for_dirs(&dir.join("config"), &dir.join("data"), &dir.join("cache"));
    let brands = dir.join("config/brands");
    std::fs::create_dir_all(&brands).unwrap();
    std::fs::write(
        brands.join("acme.toml"),
        "name = \"Acme\"\npalette = [\"#ff6600\"]\ntone = [\"warm\"]\n",
    )
    .unwrap();
    let mut lib = common::fake_library(paths);
    assert_eq!(common::ingest_folder(&mut lib, &root).ingested, 12);
    lib
}

#[test]
fn brief_references_prompt_generate_then_reopen_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let mut st = Studio::new(Runner::new(lib, Some(Box::new(FakeGenerator::default()))));
    assert_eq!(st.state.brands.len(), 1);

    // Brief: new campaign, text, objective "likes" (third), brand kit, search.
    st.press('n');
    assert_eq!(st.state.pane, Pane::Brief);
    st.type_text("A happy dog running on a sunny beach");
    st.ctrl('o');
    st.ctrl('o');
    st.ctrl('b');
    assert_eq!(st.state.brand_kit().unwrap().name, "Acme");
    st.ctrl('s');
    assert_eq!(st.state.pane, Pane::References, "{}", st.toast());
    assert_eq!(st.state.hits.len(), 8);
    assert!(st.toast().contains("8 reference(s)"));
    let c = st.state.campaign.clone().unwrap();
    assert_eq!(
        (
            c.objective.as_str(),
            c.brand.as_ref().unwrap().name.as_str()
        ),
        ("likes", "Acme")
    );

    // Select two references (space, right, space); the store has them.
    st.press(' ');
    st.key(KeyCode::Right, KeyModifiers::NONE);
    st.press(' ');
    let chosen = vec![
        st.state.hits[0].asset_id.clone(),
        st.state.hits[1].asset_id.clone(),
    ];
    assert_eq!(st.state.selected, chosen);
    let stored = st.runner.lib.store.campaign(&c.id).unwrap().unwrap();
    assert_eq!(stored.selected, chosen);
    // The KPI weight control re-runs the search with the new weight.
    st.press(']');
    assert!(st.log.iter().any(
        |e| matches!(e, Effect::Search { kpi_weight, .. } if (*kpi_weight - 0.30).abs() < 1e-6)
    ));
    assert_eq!(st.state.selected, chosen, "a re-run keeps the selection");

    // Prompt: the AI writes (streamed), the user edits and saves, then a re-run with an
    // instruction.
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(st.state.pane, Pane::Prompt);
    st.ctrl('s');
    let streamed = st
        .log
        .iter()
        .filter(|e| matches!(e, Effect::WritePrompt { .. }))
        .count();
    assert_eq!(streamed, 1);
    assert!(!st.state.reasoning.is_empty());
    let v1 = st.state.prompt.clone().unwrap();
    assert_eq!(v1.source, PromptSource::Ai);
    assert_eq!(v1.references, chosen);
    st.key(KeyCode::End, KeyModifiers::NONE);
    st.type_text(", watercolour");
    st.ctrl('e');
    let v2 = st.state.prompt.clone().unwrap();
    assert_eq!(v2.source, PromptSource::User);
    assert!(v2.prompt.ends_with(", watercolour"), "{}", v2.prompt);
    st.ctrl('f');
    st.ctrl('f');
    st.type_text("make it more playful");
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    let v3 = st.state.prompt.clone().unwrap();
    assert_eq!(v3.instruction.as_deref(), Some("make it more playful"));
    assert_eq!(st.state.versions.len(), 3);
    // Version list: show v1 again.
    st.ctrl('f');
    st.key(KeyCode::Up, KeyModifiers::NONE);
    st.key(KeyCode::Up, KeyModifiers::NONE);
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(st.state.prompt.as_ref().unwrap().id, v1.id);
    st.key(KeyCode::Down, KeyModifiers::NONE);
    st.key(KeyCode::Down, KeyModifiers::NONE);
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(st.state.prompt.as_ref().unwrap().id, v3.id);

    // Generate: count 2, aspect 16:9, seed 42, then g.
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(st.state.pane, Pane::Generate);
    st.key(KeyCode::Right, KeyModifiers::NONE);
    st.key(KeyCode::Down, KeyModifiers::NONE);
    st.key(KeyCode::Right, KeyModifiers::NONE);
    st.key(KeyCode::Down, KeyModifiers::NONE);
    st.type_text("42");
    st.press('g');
    assert_eq!(st.state.gallery.len(), 2, "{}", st.toast());
    let seeds: Vec<u32> = st.state.gallery.iter().map(|g| g.seed).collect();
    assert_eq!(seeds, vec![42, 43]);
    let params = &st.state.gallery[0].request.params;
    assert_eq!(
        (params.count, params.task, params.width > params.height),
        (2, TaskType::Text, true)
    );
    for g in &st.state.gallery {
        assert!(Path::new(&g.path).is_file());
        assert_eq!(g.references, chosen);
        assert!(g.novelty.is_some());
    }
    assert!(st.toast().contains("2 image(s) generated"));
    st.press(']');
    assert_eq!(st.state.gallery_cursor, 1);
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(
        st.state.preview.as_ref().unwrap().path,
        st.state.gallery[1].path
    );
    st.key(KeyCode::Esc, KeyModifiers::NONE);
    assert!(st.state.preview.is_none());
    // Half-typed edits are part of the session too.
    st.state.pane = Pane::Prompt;
    st.state.prompt_field = campaign_studio::app::state::PromptField::Instruction;
    st.type_text("warmer light");
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    let before = st.state.view();

    // Reopen in a fresh studio over the same store: every pane comes back as it was.
    let runner = st.runner;
    let mut again = Studio::new(runner);
    assert_eq!(again.state.pane, Pane::Sessions);
    assert_eq!(again.state.campaigns.len(), 1);
    again.key(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(again.state.view(), before);
    assert_eq!(again.state.pane, Pane::Generate);
    assert_eq!(again.state.selected, chosen);
    assert_eq!(again.state.versions.len(), 3);
    assert_eq!(again.state.prompt.as_ref().unwrap().id, v3.id);
    assert_eq!(again.state.gallery.len(), 2);
    assert_eq!(again.state.gen_form.seed, Some(42));
    assert_eq!(again.state.brand_kit().unwrap().name, "Acme");
    assert_eq!(again.state.hits.len(), 8);
    assert_eq!(again.state.instruction.lines().join(""), "warmer light");
}

#[test]
fn sessions_rename_export_and_library_ingest_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let mut st = Studio::new(Runner::new(lib, None));
    st.press('n');
    st.type_text("Red cars on a mountain road");
    st.ctrl('s');
    assert!(st.state.campaign.is_some());
    // Without a generator, g says so and offers the mood board; m makes one.
    st.state.pane = Pane::Generate;
    st.press('g');
    assert!(st.toast().contains("No image generator"), "{}", st.toast());
    st.press('m');
    assert!(st.toast().contains("Mood board written"), "{}", st.toast());

    // Sessions: rename (End, type, Enter), export.
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(st.state.pane, Pane::Library);
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(st.state.pane, Pane::Sessions);
    st.press('r');
    assert!(st.state.text_input());
    st.key(KeyCode::End, KeyModifiers::NONE);
    st.type_text(" (final)");
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    let id = st.state.campaign.as_ref().unwrap().id.clone();
    let stored = st.runner.lib.store.campaign(&id).unwrap().unwrap();
    assert_eq!(stored.name, "Red cars on a mountain road (final)");
    assert_eq!(st.state.campaigns[0].name, stored.name);
    st.press('e');
    assert!(st.toast().starts_with("Exported"), "{}", st.toast());
    let out = st.state.last_export.clone().unwrap();
    assert!(st.toast().contains(&out), "{}", st.toast());
    assert!(Path::new(&out).join("campaign.json").is_file());
    assert!(Path::new(&out).join("index.html").is_file());

    // Library: ingest a folder with two new images and one that is not an image.
    let more = dir.path().join("more");
    std::fs::create_dir_all(&more).unwrap();
    std::fs::write(more.join("x.png"), png(40, 50, 50)).unwrap();
    std::fs::write(more.join("y.png"), png(41, 60, 40)).unwrap();
    std::fs::write(more.join("z.png"), b"not a png").unwrap();
    st.key(KeyCode::BackTab, KeyModifiers::SHIFT);
    assert_eq!(st.state.pane, Pane::Library);
    assert_eq!(st.state.stats.as_ref().unwrap().assets, 12);
    st.press('i');
    assert!(st.state.text_input());
    st.type_text(&more.display().to_string());
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    let p = st.state.ingest.clone().unwrap();
    assert_eq!(
        (p.total, p.done, p.ingested, p.failed),
        (3, 3, 2, 1),
        "{p:?}"
    );
    assert!(p.last_error.unwrap().contains("z.png"));
    assert!(st.toast().contains("2 new"), "{}", st.toast());
    assert_eq!(st.state.stats.as_ref().unwrap().assets, 14);
    assert_eq!(st.state.assets.len(), 14);
    // Again: nothing is ingested twice.
    st.press('i');
    st.type_text(&more.display().to_string());
    st.key(KeyCode::Enter, KeyModifiers::NONE);
    assert!(st.toast().contains("0 new"), "{}", st.toast());
    assert_eq!(st.state.stats.as_ref().unwrap().assets, 14);

    // Delete with confirmation.
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    st.press('d');
    st.press('y');
    assert!(st.state.campaigns.is_empty());
    assert!(st.state.campaign.is_none());
}

#[test]
fn a_cancelled_job_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let mut st = Studio::new(Runner::new(lib, None));
    st.press('n');
    st.type_text("dogs");
    // Submit, but cancel before the effect runs: the runner skips it, and the state is idle.
    let fx = update(&mut st.state, Action::Submit);
    let fx2 = update(&mut st.state, Action::Cancel);
    st.run(fx2);
    st.run(fx);
    assert!(st.state.hits.is_empty());
    assert!(!st.state.busy());
    assert_eq!(st.state.pane, Pane::Brief);
}

#[test]
fn images_are_encoded_off_the_ui_and_drawn_in_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let mut st = Studio::new(Runner::new(lib, None));
    st.press('n');
    st.type_text("dog on a beach");
    st.ctrl('o');
    st.ctrl('o');
    st.ctrl('s');
    st.state.images_enabled = true;
    let ui = Ui::new(default_keymap());
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut missing = Vec::new();
    term.draw(|f| missing = campaign_studio::ui::render(f, &st.state, &ui))
        .unwrap();
    // Every visible tile asks for its thumbnail once, at its size in cells.
    assert_eq!(missing.len(), 8, "{missing:?}");
    assert!(missing.iter().all(|k| k.cols == 24 && k.rows == 5));
    // The encoder thread answers each; a broken file is a per-image message, not a failure.
    let (req_tx, req_rx) = std::sync::mpsc::channel();
    let (res_tx, res_rx) = std::sync::mpsc::channel();
    let setup = images::setup("halfblocks", false);
    assert_eq!(setup.label, "halfblocks (forced)");
    let picker = setup.picker.unwrap();
    let t = std::thread::spawn(move || images::encoder(picker, Default::default(), req_rx, res_tx));
    let mut batch = missing.clone();
    let bad = ImageKey {
        path: dir.path().join("nope.png").display().to_string(),
        cols: 10,
        rows: 4,
    };
    batch.push(bad.clone());
    req_tx.send(batch).unwrap();
    drop(req_tx);
    t.join().unwrap();
    for a in res_rx {
        if let Action::ImageReady { key, slot } = &a
            && *key == bad
        {
            assert!(matches!(slot, ImageSlot::Failed(_)), "{slot:?}");
        }
        update(&mut st.state, a);
    }
    term.draw(|f| missing = campaign_studio::ui::render(f, &st.state, &ui))
        .unwrap();
    assert!(missing.is_empty());
    let screen = format!("{}", term.backend());
    assert!(
        screen.contains('▀') || screen.contains('▄'),
        "half blocks drawn:\n{screen}"
    );
    assert_eq!(images::setup("none", false).label, "off");
    assert!(images::setup("none", false).picker.is_none());
}

#[test]
fn the_runner_counts_changes_a_server_index_has_not_received() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    assert_eq!(
        campaign_studio::tui::runner::index_status(&lib),
        "index: embedded"
    );
    lib.use_vector_backend(Arc::new(campaign_studio::services::fake::FakeServer::new(
        "flow",
    )))
    .unwrap();
    // Twelve assets ingested before the server was configured: none of them pushed yet.
    assert_eq!(
        campaign_studio::tui::runner::index_status(&lib),
        "index: fake · 12 unsynced"
    );
}

/// A prompt writer the user cancels while it writes (Esc reaches its job's token mid-stream);
/// it still returns a finished answer, as a writer that ignores the token would.
struct CancelledWhileWriting;

impl campaign_studio::services::PromptWriter for CancelledWhileWriting {
    fn model(&self) -> &str {
        "cancelled-while-writing"
    }
    fn write(
        &self,
        _input: &campaign_studio::services::PromptInput,
        on_event: &mut dyn FnMut(campaign_studio::services::PromptEvent),
    ) -> campaign_studio::Result<campaign_studio::services::PromptResult> {
        on_event(campaign_studio::services::PromptEvent::Reasoning(
            "thinking".into(),
        ));
        campaign_studio::services::cancel::current()
            .expect("a studio job runs with a token")
            .cancel();
        Ok(campaign_studio::services::PromptResult {
            prompt: "a prompt nobody wants any more".into(),
            model: "cancelled-while-writing".into(),
            ..Default::default()
        })
    }
}

#[test]
fn a_prompt_cancelled_while_it_is_written_saves_no_version() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let mut runner = Runner::new(lib, None);
    runner.writer = Ok(Box::new(CancelledWhileWriting));
    let mut st = Studio::new(runner);
    st.press('n');
    st.type_text("A happy dog running on a sunny beach");
    st.ctrl('s');
    let c = st.state.campaign.clone().unwrap();
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    assert_eq!(st.state.pane, Pane::Prompt);
    st.ctrl('s');
    assert!(
        st.log
            .iter()
            .any(|e| matches!(e, Effect::WritePrompt { .. }))
    );
    assert!(
        st.runner
            .lib
            .store
            .prompt_versions(&c.id)
            .unwrap()
            .is_empty()
    );
    assert!(st.state.prompt.is_none());
}

/// The fake generator, with the user pressing Esc while the model makes the images.
struct CancelledWhileGenerating(FakeGenerator);

impl campaign_studio::services::ImageGenerator for CancelledWhileGenerating {
    fn caps(&self) -> &campaign_studio::services::GeneratorCaps {
        self.0.caps()
    }
    fn generate(
        &self,
        request: &campaign_studio::domain::GenerationRequest,
    ) -> campaign_studio::Result<Vec<campaign_studio::services::GeneratedPng>> {
        let made = self.0.generate(request)?;
        campaign_studio::services::cancel::current()
            .expect("a studio job runs with a token")
            .cancel();
        Ok(made)
    }
}

#[test]
fn images_made_before_a_cancel_are_kept_and_said_to_be_kept() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let generator = CancelledWhileGenerating(FakeGenerator::default());
    let mut st = Studio::new(Runner::new(lib, Some(Box::new(generator))));
    st.press('n');
    st.type_text("A happy dog running on a sunny beach");
    st.ctrl('s');
    let c = st.state.campaign.clone().unwrap();
    st.key(KeyCode::Tab, KeyModifiers::NONE);
    st.ctrl('s');
    assert!(st.state.prompt.is_some());
    st.state.pane = Pane::Generate;
    st.press('g');
    let kept = st.runner.lib.store.generated_images(&c.id).unwrap();
    assert!(!kept.is_empty(), "paid images are kept");
    assert_eq!(st.state.gallery.len(), kept.len());
    assert!(
        st.toast().contains("Cancelled") && st.toast().contains("kept"),
        "{}",
        st.toast()
    );
}

#[test]
fn searches_run_on_the_quick_worker_and_generation_on_the_long_one() {
    let search = Effect::Search {
        job: 1,
        campaign_id: None,
        name: "n".into(),
        brief: "b".into(),
        objective: "likes".into(),
        node: "followers".into(),
        brand: None,
        query: None,
        like: None,
        k: 8,
        kpi_weight: 0.25,
        widen: false,
    };
    assert!(!Runner::is_long(&search));
    assert!(Runner::is_long(&Effect::MoodBoard {
        campaign_id: "c".into()
    }));
}

#[test]
fn a_cli_ingest_made_while_the_studio_runs_shows_in_its_next_search_without_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let lib = library(dir.path());
    let embedder = lib.text_embedder_id();
    let paths = lib.paths.clone();
    // An earlier command left the index's snapshot (it waits for the writer as it ends).
    Library::open(paths.clone(), Config::defaults())
        .unwrap()
        .embedded_index(&embedder)
        .unwrap();
    let mut st = Studio::new(Runner::new(lib, None));
    let brief = "A happy dog running on a sunny beach";
    st.press('n');
    st.type_text(brief);
    st.ctrl('o');
    st.ctrl('o');
    st.ctrl('s');
    assert_eq!(st.state.pane, Pane::References, "{}", st.toast());
    assert_eq!(st.runner.lib.index_opens(), 1);

    // Another process (the CLI) ingests a photo described by the brief itself.
    let root = dir.path().join("more");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("new.png"), png(99, 64, 48)).unwrap();
    std::fs::write(
        root.join("manifest.jsonl"),
        json!({"id": "fresh", "file": "new.png", "caption": brief, "objective": "likes",
               "node": "followers", "results": 0.99})
        .to_string(),
    )
    .unwrap();
    let mut cli = common::fake_library(paths);
    assert_eq!(common::ingest_folder(&mut cli, &root).ingested, 1);
    let (fresh, _) = cli.store.by_external_id("fresh").unwrap().unwrap();
    drop(cli);

    // The KPI weight control re-runs the search: the new photo comes first.
    st.press(']');
    assert_eq!(st.state.hits[0].asset_id, fresh, "{}", st.toast());
    assert_eq!(st.runner.lib.index_opens(), 1, "caught up, not reopened");
    let live = st.runner.lib.embedded_index(&embedder).unwrap();
    let live = live.read().unwrap();
    assert!(live.base().is_mapped());
    assert_eq!(live.tail(), 1);
}

/// A campaign searched by text, its References pane focused on the second hit.
fn searched_studio(dir: &Path) -> Studio {
    let mut st = Studio::new(Runner::new(library(dir), None));
    st.press('n');
    st.type_text("A happy dog running on a sunny beach");
    st.ctrl('o');
    st.ctrl('o');
    st.ctrl('s');
    assert_eq!(st.state.pane, Pane::References, "{}", st.toast());
    st.key(KeyCode::Right, KeyModifiers::NONE);
    st
}

#[test]
fn more_like_this_leaves_the_focused_reference_out_and_says_what_it_searched() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = searched_studio(dir.path());
    let focused = st.state.hits[st.state.refs_cursor].clone();
    st.press('m');
    assert_eq!(
        st.state.search_query,
        format!("images like {}", focused.external_id.clone().unwrap()),
        "{}",
        st.toast()
    );
    assert!(!st.state.hits.is_empty());
    assert!(
        st.state.hits.iter().all(|h| h.asset_id != focused.asset_id),
        "the image searched from came back as its own reference"
    );
}

#[test]
fn more_like_this_ranks_by_image_features_not_by_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = searched_studio(dir.path());
    let focused = st.state.hits[st.state.refs_cursor].clone();
    st.press('m');
    let lib = &st.runner.lib;
    let features = lib.image_features_id();
    let q = lib
        .store
        .vector_of(&focused.asset_id, &features)
        .unwrap()
        .unwrap();
    for h in &st.state.hits {
        let v = lib
            .store
            .vector_of(&h.asset_id, &features)
            .unwrap()
            .unwrap();
        let dot: f32 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert!(
            (dot - h.similarity).abs() < 1e-4,
            "{}: similarity {} is not its image features' {dot}",
            h.asset_id,
            h.similarity
        );
    }
}

#[test]
fn more_like_this_is_stored_as_the_campaigns_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = searched_studio(dir.path());
    st.press('m');
    let c = st.state.campaign.clone().unwrap();
    let run = st.runner.lib.store.runs(&c.id).unwrap().pop().unwrap();
    assert!(run.query.starts_with("images like "), "{}", run.query);
    assert_eq!(run.embedder, st.runner.lib.image_features_id().to_string());
    let ids: Vec<&str> = run.hits.iter().map(|h| h.asset_id.as_str()).collect();
    let shown: Vec<&str> = st.state.hits.iter().map(|h| h.asset_id.as_str()).collect();
    assert_eq!(ids, shown);
}
