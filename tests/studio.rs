//! The studio's state machine (update) and its screens (insta snapshots on TestBackend).
use campaign_studio::app::action::OpenedCampaign;
use campaign_studio::app::keymap::default_keymap;
use campaign_studio::app::{Action, Effect, Pane, State, update};
use campaign_studio::domain::{
    Campaign, CampaignStep, GeneratedImage, GenerationParams, GenerationRequest, MatchStrength,
    Novelty, PromptSource, PromptVersion, Quality, ReferenceHit, StrengthLevel, TaskType,
};
use campaign_studio::engine::search::SearchedAs;
use campaign_studio::services::PromptEvent;
use campaign_studio::services::translate::Translation;
use campaign_studio::ui::Ui;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn state() -> State {
    State::new(
        vec![
            "clicks".into(),
            "awareness".into(),
            "likes".into(),
            "conversions".into(),
        ],
        vec![
            "followers".into(),
            "customers".into(),
            "new_customers".into(),
        ],
        8,
    )
}

fn campaign(id: &str, name: &str) -> Campaign {
    Campaign {
        id: id.into(),
        name: name.into(),
        brief: "Two friends surfing big waves at sunset".into(),
        objective: "likes".into(),
        node: "followers".into(),
        brand: None,
        selected: Vec::new(),
        step: CampaignStep::References,
        created_at: "2026-11-28T00:00:00Z".into(),
        updated_at: "2026-11-28T00:00:00Z".into(),
    }
}

fn hit(i: usize) -> ReferenceHit {
    ReferenceHit {
        asset_id: format!("{i:064}"),
        external_id: Some(format!("coco-{i:04}")),
        file: format!("images/{i}.jpg"),
        stored_path: String::new(),
        thumbnail_path: String::new(),
        similarity: 0.5 - i as f32 / 100.0,
        kpi: Some(0.01 * i as f64),
        kpi_percentile: 0.1 * i as f32,
        score: 0.4,
        objective: "likes".into(),
        node: "followers".into(),
        description: format!("A surfer riding wave number {i}. Landscape, bright."),
        elements: vec!["person".into(), "surfboard".into()],
        strength: None,
        outside_filter: false,
        inferred: None,
    }
}

/// Effects other than the autosave of the session view (tested on their own).
fn fx(effects: Vec<Effect>) -> Vec<Effect> {
    effects
        .into_iter()
        .filter(|e| !matches!(e, Effect::SaveView { .. }))
        .collect()
}

fn type_text(s: &mut State, text: &str) {
    for c in text.chars() {
        update(
            s,
            Action::EditorInput(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        );
    }
}

#[test]
fn brief_to_references_to_prompt_through_update() {
    let mut s = state();
    assert!(update(&mut s, Action::NewCampaign).is_empty());
    assert_eq!(s.pane, Pane::Brief);
    // An empty brief is refused with a message, no effect.
    assert!(update(&mut s, Action::Submit).is_empty());
    assert!(s.toast.as_ref().unwrap().text.contains("brief"));
    type_text(&mut s, "Surfers at sunset");
    update(&mut s, Action::CycleObjective);
    update(&mut s, Action::CycleNode);
    let fx = update(&mut s, Action::Submit);
    let Effect::Search {
        job,
        campaign_id: None,
        brief,
        objective,
        node,
        k,
        ..
    } = fx[0].clone()
    else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (brief.as_str(), objective.as_str(), node.as_str(), k),
        ("Surfers at sunset", "awareness", "customers", 8)
    );
    assert!(s.busy());

    // A stale result (older job) is dropped; the current one lands and opens References.
    let c = campaign("c1", "Surfers");
    assert!(
        update(
            &mut s,
            Action::SearchDone {
                job: job + 100,
                campaign: Box::new(c.clone()),
                hits: vec![hit(1)],
                query: String::new(),
                widen_offer: None,
                read_as: None,
            }
        )
        .is_empty()
    );
    assert!(s.hits.is_empty());
    let fx = update(
        &mut s,
        Action::SearchDone {
            job,
            campaign: Box::new(c),
            hits: (1..=4).map(hit).collect(),
            query: "Dos amigos".into(),
            widen_offer: None,
            read_as: None,
        },
    );
    let saved: Vec<&Effect> = fx
        .iter()
        .filter(|e| matches!(e, Effect::SaveView { .. }))
        .collect();
    assert_eq!(
        saved.len(),
        1,
        "a campaign's view is saved as soon as it exists"
    );
    assert_eq!(self::fx(fx.clone()), vec![Effect::LoadCampaigns]);
    assert_eq!(
        (s.pane, s.hits.len(), s.busy()),
        (Pane::References, 4, false)
    );
    assert_eq!(
        s.search_query, "Dos amigos",
        "the searched text is kept to show"
    );
    assert!(draw(&mut s, 80, 24).contains("searched as: Dos amigos"));

    update(&mut s, Action::Right);
    let fx = self::fx(update(&mut s, Action::Toggle));
    assert_eq!(
        fx,
        vec![Effect::SaveSelection {
            campaign_id: "c1".into(),
            selected: vec![hit(2).asset_id]
        }]
    );
    update(&mut s, Action::Toggle);
    assert!(s.selected.is_empty());
    update(&mut s, Action::Toggle);

    update(&mut s, Action::NextPane);
    assert_eq!(s.pane, Pane::Prompt);
    let fx = update(&mut s, Action::Submit);
    let Effect::WritePrompt { job, .. } = fx[0].clone() else {
        panic!("{fx:?}")
    };
    update(
        &mut s,
        Action::PromptStream {
            job,
            event: PromptEvent::Reasoning("Subject: surfers.\n".into()),
        },
    );
    update(
        &mut s,
        Action::PromptStream {
            job: job + 1,
            event: PromptEvent::Reasoning("stale\n".into()),
        },
    );
    update(
        &mut s,
        Action::PromptStream {
            job,
            event: PromptEvent::Answer("surfers at ".into()),
        },
    );
    update(
        &mut s,
        Action::PromptStream {
            job,
            event: PromptEvent::Answer("sunset".into()),
        },
    );
    assert_eq!(
        (s.reasoning.as_str(), s.answer.as_str()),
        ("Subject: surfers.\n", "surfers at sunset")
    );
    let v = PromptVersion {
        id: 1,
        campaign_id: "c1".into(),
        source: PromptSource::Ai,
        model: "local/composer-v1".into(),
        reasoning: "Subject: surfers.".into(),
        prompt: "surfers at sunset, golden light".into(),
        negative_prompt: "blurry".into(),
        instruction: None,
        references: s.selected.clone(),
        flags: vec![],
        created_at: String::new(),
        usage: None,
    };
    update(
        &mut s,
        Action::PromptDone {
            job,
            version: Box::new(v),
        },
    );
    assert_eq!(s.answer, "surfers at sunset, golden light");
    assert!(!s.busy());
}

#[test]
fn cancel_errors_help_delete_and_generate() {
    let mut s = state();
    update(&mut s, Action::NewCampaign);
    type_text(&mut s, "x");
    let Effect::Search { job, .. } = update(&mut s, Action::Submit)[0].clone() else {
        panic!()
    };
    assert_eq!(
        fx(update(&mut s, Action::Cancel)),
        vec![Effect::CancelJob(job)]
    );
    assert!(!s.busy());
    // A failure of a job no longer current is ignored; of the current job, shown.
    assert!(
        update(
            &mut s,
            Action::JobFailed {
                job,
                error: "late".into()
            }
        )
        .is_empty()
    );
    assert!(s.toast.as_ref().unwrap().text.contains("Cancelled"));
    let Effect::Search { job, .. } = update(&mut s, Action::Submit)[0].clone() else {
        panic!()
    };
    update(
        &mut s,
        Action::JobFailed {
            job,
            error: "model 'minilm' is not installed; run `campaign-studio models fetch`".into(),
        },
    );
    assert!(s.toast.as_ref().unwrap().text.contains("models fetch"));

    update(&mut s, Action::ToggleHelp);
    assert!(s.show_help);
    update(&mut s, Action::Cancel);
    assert!(!s.show_help);

    update(&mut s, Action::Generate);
    assert!(s.toast.as_ref().unwrap().text.contains("mood board"));

    s.pane = Pane::Sessions;
    update(
        &mut s,
        Action::CampaignsLoaded(vec![campaign("a", "A"), campaign("b", "B")]),
    );
    update(&mut s, Action::Down);
    update(&mut s, Action::DeleteCampaign);
    assert_eq!(
        fx(update(&mut s, Action::Confirm)),
        vec![Effect::DeleteCampaign("b".into()), Effect::LoadCampaigns]
    );
    assert!(fx(update(&mut s, Action::Confirm)).is_empty());
    assert_eq!(
        fx(update(&mut s, Action::Open)),
        vec![Effect::OpenCampaign("b".into())]
    );
}

fn draw(s: &mut State, w: u16, h: u16) -> String {
    update(s, Action::Resized(w, h));
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let ui = Ui::new(default_keymap());
    t.draw(|f| {
        campaign_studio::ui::render(f, s, &ui);
    })
    .unwrap();
    format!("{}", t.backend())
}

fn screens() -> Vec<(&'static str, State)> {
    let mut sessions = state();
    update(
        &mut sessions,
        Action::CampaignsLoaded(vec![
            campaign("a1", "Summer surf"),
            campaign("b2", "Winter coffee"),
        ]),
    );
    let mut brief = state();
    update(&mut brief, Action::NewCampaign);
    type_text(&mut brief, "Two friends surfing big waves at sunset");
    let mut refs = state();
    refs.pane = Pane::References;
    refs.campaign = Some(campaign("a1", "Summer surf"));
    refs.hits = (1..=5).map(hit).collect();
    refs.selected = vec![hit(2).asset_id];
    let mut preview = refs.clone_for_test();
    update(&mut preview, Action::Right);
    update(&mut preview, Action::Open);
    assert!(preview.preview.is_some());
    let mut prompt = refs.clone_for_test();
    prompt.pane = Pane::Prompt;
    update(&mut prompt, Action::PromptSaved(Box::new(version(1, None))));
    update(
        &mut prompt,
        Action::PromptSaved(Box::new(version(2, Some("more playful")))),
    );
    prompt.reasoning =
        "Subject, from the brief: \"surfers\".\nElement \"surfboard\": in 2 of 2 references.\n"
            .into();
    let mut streaming = refs.clone_for_test();
    streaming.pane = Pane::Prompt;
    streaming.prompt_job = Some(9);
    streaming.reasoning = "Subject, from the brief: \"surfers\".\n".into();
    streaming.answer = "two friends surfing big waves".into();
    let mut offline = refs.clone_for_test();
    offline.pane = Pane::Generate;
    let mut generate = refs.clone_for_test();
    generate.pane = Pane::Generate;
    generate.generator = Some(campaign_studio::services::fake::canvas_like_caps(
        "amazon.nova-canvas-v1:0",
    ));
    generate.gallery = vec![generated(42, 0.71, false), generated(43, 0.97, true)];
    update(&mut generate, Action::Down);
    update(&mut generate, Action::Right);
    let mut library = state();
    library.pane = Pane::Library;
    update(
        &mut library,
        Action::StatsLoaded(Box::new(campaign_studio::store::LibraryStats {
            assets: 328,
            by_objective: vec![("clicks".into(), 100), ("likes".into(), 228)],
            by_node: vec![("followers".into(), 328)],
            embeddings: vec![("local/minilm-l6-v2/desc-v1".into(), 328)],
            bytes: 41_000_000,
            with_caption: 328,
            borrowing: 0,
            last_ingest: Some("2026-11-28T00:00:00Z".into()),
        })),
    );
    library.ingest_job = Some(4);
    library.ingest = Some(campaign_studio::app::state::IngestProgress {
        total: 40,
        to_process: 40,
        done: 12,
        ingested: 10,
        updated: 1,
        unchanged: 0,
        failed: 1,
        last: "b.jpg".into(),
        last_error: Some("bad.jpg: not an image (unrecognised format)".into()),
    });
    let mut rename = sessions_with(&["Summer surf", "Winter coffee"]);
    update(&mut rename, Action::RenameCampaign);
    let mut help = refs.clone_for_test();
    help.show_help = true;
    vec![
        ("sessions", sessions),
        ("rename", rename),
        ("brief", brief),
        ("references", refs),
        ("preview", preview),
        ("prompt", prompt),
        ("prompt_streaming", streaming),
        ("generate_offline", offline),
        ("generate", generate),
        ("library", library),
        ("help", help),
    ]
}

fn sessions_with(names: &[&str]) -> State {
    let mut s = state();
    update(
        &mut s,
        Action::CampaignsLoaded(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| campaign(&format!("c{i}"), n))
                .collect(),
        ),
    );
    s
}

fn version(id: i64, instruction: Option<&str>) -> PromptVersion {
    PromptVersion {
        id,
        campaign_id: "a1".into(),
        source: PromptSource::Ai,
        model: "local/composer-v1".into(),
        reasoning: "Subject: surfers.".into(),
        prompt: "two friends surfing big waves at sunset, golden light".into(),
        negative_prompt: "blurry, text".into(),
        instruction: instruction.map(str::to_string),
        references: vec![],
        flags: vec![],
        created_at: String::new(),
        usage: None,
    }
}

fn generated(seed: u32, similarity: f32, too_close: bool) -> GeneratedImage {
    GeneratedImage {
        id: format!("{seed:064}"),
        generation_id: 1,
        campaign_id: "a1".into(),
        path: format!("/nonexistent/{seed}.png"),
        seed,
        model: "amazon.nova-canvas-v1:0".into(),
        prompt_version_id: 2,
        request: GenerationRequest {
            prompt: "two friends surfing".into(),
            negative_prompt: String::new(),
            params: GenerationParams {
                count: 2,
                width: 1024,
                height: 1024,
                seed,
                seed_was_random: false,
                cfg_scale: 6.5,
                quality: Quality::Standard,
                task: TaskType::Text,
                similarity_strength: None,
            },
            reference_images: vec![],
            colours: vec![],
        },
        references: vec![],
        novelty: Some(Novelty {
            nearest_asset: None,
            similarity,
            phash_distance: None,
            phash_nearest: None,
            too_close,
        }),
        kpi: None,
        created_at: String::new(),
    }
}

trait CloneForTest {
    fn clone_for_test(&self) -> State;
}
impl CloneForTest for State {
    fn clone_for_test(&self) -> State {
        let mut s = state();
        s.pane = self.pane;
        s.campaign = self.campaign.clone();
        s.hits = self.hits.clone();
        s.selected = self.selected.clone();
        s
    }
}

#[test]
fn every_screen_at_three_sizes() {
    for (name, mut s) in screens() {
        for (w, h) in [(20, 5), (80, 24), (200, 60)] {
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(&mut s, w, h));
        }
    }
}

/// The actions the flows above do not reach, one by one.
#[test]
fn remaining_actions_each_do_their_one_thing() {
    let mut s = state();
    assert_eq!(update(&mut s, Action::Suspend), vec![Effect::Suspend]);
    assert_eq!(
        update(&mut s, Action::PrevPane),
        vec![Effect::LoadStats, Effect::LoadAssets]
    );
    assert_eq!(s.pane, Pane::Library);
    assert_eq!(
        fx(update(&mut s, Action::NextPane)),
        vec![Effect::LoadCampaigns]
    );
    // Nothing open: k and KPI weight change without a search; brand needs kits.
    update(&mut s, Action::MoreResults);
    update(&mut s, Action::FewerResults);
    update(&mut s, Action::FewerResults);
    assert_eq!(s.k, 6);
    update(&mut s, Action::LessKpiWeight);
    assert!((s.kpi_weight - 0.20).abs() < 1e-6);
    for _ in 0..3 {
        update(&mut s, Action::CycleNode);
    }
    assert_eq!(s.node, 0, "cycles back to the first node");
    update(&mut s, Action::CycleBrand);
    assert!(s.brand.is_none() && s.toast.as_ref().unwrap().text.contains("brands/"));
    update(
        &mut s,
        Action::BrandsLoaded(vec![campaign_studio::domain::BrandKit {
            name: "Acme".into(),
            ..Default::default()
        }]),
    );
    update(&mut s, Action::CycleBrand);
    assert_eq!(s.brand, Some(0));
    update(&mut s, Action::CycleBrand);
    assert_eq!(s.brand, None);
    // Restore and mood board need an open campaign.
    assert!(update(&mut s, Action::RestorePrompt).is_empty());
    assert!(s.toast.as_ref().unwrap().text.contains("No campaign yet"));
    s.campaign = Some(campaign("c9", "Nine"));
    assert!(
        fx(update(&mut s, Action::RestorePrompt)).contains(&Effect::RestorePrompt {
            campaign_id: "c9".into()
        })
    );
    // With a campaign, k re-runs the search.
    s.brief = campaign_studio::app::state::text_editor("dogs");
    assert!(matches!(
        fx(update(&mut s, Action::MoreResults))[..],
        [Effect::Search { k: 8, .. }]
    ));
    // Fields cycle within a pane.
    s.pane = Pane::Brief;
    for _ in 0..3 {
        update(&mut s, Action::NextField);
    }
    assert_eq!(
        s.brief_field,
        campaign_studio::app::state::BriefField::Brief
    );
    s.pane = Pane::Prompt;
    update(&mut s, Action::NextField);
    assert_eq!(
        s.prompt_field,
        campaign_studio::app::state::PromptField::Negative
    );
    // Gallery and scroll.
    s.pane = Pane::Generate;
    s.gallery = vec![generated(1, 0.5, false), generated(2, 0.5, false)];
    update(&mut s, Action::GalleryNext);
    update(&mut s, Action::GalleryNext);
    assert_eq!(s.gallery_cursor, 1);
    update(&mut s, Action::GalleryPrev);
    assert_eq!(s.gallery_cursor, 0);
    update(&mut s, Action::Scroll(1));
    assert_eq!(s.gen_form.field, 1, "the wheel moves the focused list");
    // Late results of jobs that are not running are dropped.
    assert!(
        update(
            &mut s,
            Action::Generated {
                job: 77,
                images: vec![generated(3, 0.1, false)],
                withheld: vec![],
            }
        )
        .is_empty()
    );
    assert_eq!(s.gallery.len(), 2);
    update(
        &mut s,
        Action::IngestProgress {
            job: 78,
            event: campaign_studio::engine::ingest::IngestEvent::Planned {
                total: 1,
                to_process: 1,
            },
        },
    );
    assert!(s.ingest.is_none());
    // A saved prompt version becomes the one shown.
    update(&mut s, Action::PromptSaved(Box::new(version(5, None))));
    assert_eq!(s.prompt.as_ref().unwrap().id, 5);
    assert_eq!(s.versions.len(), 1);
    assert_eq!(
        s.prompt_editor.lines().join(""),
        "two friends surfing big waves at sunset, golden light"
    );
    // Generate with a generator but no prompt asks for one; with one, sends the form.
    s.generator = Some(campaign_studio::services::fake::canvas_like_caps("m"));
    s.gen_form.seed = Some(7);
    let e = fx(update(&mut s, Action::Generate));
    let [Effect::Generate { params, .. }] = &e[..] else {
        panic!("{e:?}")
    };
    assert_eq!((params.seed, params.aspect.as_str()), (Some(7), "1:1"));
    assert!(s.busy());
}

#[test]
fn the_library_pane_counts_borrowing_photos_and_keeps_its_ingest_hint() {
    let mut s = state();
    s.pane = Pane::Library;
    update(
        &mut s,
        Action::StatsLoaded(Box::new(campaign_studio::store::LibraryStats {
            assets: 328,
            by_objective: vec![("likes".into(), 328)],
            by_node: vec![("followers".into(), 328)],
            embeddings: vec![("local/minilm-l6-v2/desc-v1".into(), 328)],
            bytes: 41_000_000,
            with_caption: 170,
            borrowing: 158,
            last_ingest: Some("2026-11-28T00:00:00Z".into()),
        })),
    );
    let screen = draw(&mut s, 200, 60);
    assert!(
        screen.contains("158 borrowing words from similar photos"),
        "{screen}"
    );
    assert!(screen.contains("(i: ingest a folder)"), "{screen}");
}

#[test]
fn generate_pane_labels_nova_canvas_as_legacy() {
    let mut s = state();
    s.pane = Pane::Generate;
    s.generator = Some(campaign_studio::services::bedrock::canvas::caps(
        "amazon.nova-canvas-v1:0",
    ));
    let screen = draw(&mut s, 200, 60);
    // The notice wraps in the narrow form column.
    assert!(
        screen.contains("legacy: end-of-life on Bedrock") && screen.contains("2026-09-30"),
        "{screen}"
    );
}

#[test]
fn status_line_shows_the_index_and_its_unsynced_changes() {
    let mut s = state();
    update(
        &mut s,
        Action::IndexStatus("index: opensearch · 3 unsynced".into()),
    );
    let screen = draw(&mut s, 200, 60);
    assert!(
        screen.contains("index: opensearch · 3 unsynced"),
        "{screen}"
    );
}

fn ctrl_y() -> Action {
    Action::Copy
}

fn clipboard_on(s: &mut State) {
    s.clipboard = campaign_studio::app::state::ClipboardMode::On {
        via: "OSC 52".into(),
    };
}

#[test]
fn ctrl_y_is_bound_to_copy_in_every_pane_even_while_typing() {
    let keymap = default_keymap();
    let key = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::CONTROL);
    for pane in Pane::ALL {
        assert_eq!(
            campaign_studio::app::keymap::resolve(&keymap, pane, true, key),
            Some(Action::Copy),
            "{pane:?}"
        );
    }
}

#[test]
fn copy_in_the_prompt_pane_sends_the_prompt_text() {
    let mut s = state();
    clipboard_on(&mut s);
    s.pane = Pane::Prompt;
    s.prompt_editor = campaign_studio::app::state::text_editor("a surfer at golden hour");
    let effects = fx(update(&mut s, ctrl_y()));
    assert_eq!(
        effects,
        vec![Effect::Copy("a surfer at golden hour".into())]
    );
    let toast = s.toast.unwrap().text;
    assert!(
        toast.contains("the prompt") && toast.contains("23 characters"),
        "{toast}"
    );
}

#[test]
fn copy_on_the_negative_field_sends_the_negative_prompt() {
    let mut s = state();
    clipboard_on(&mut s);
    s.pane = Pane::Prompt;
    s.prompt_field = campaign_studio::app::state::PromptField::Negative;
    s.negative_editor = campaign_studio::app::state::text_editor("blurry, text");
    assert_eq!(
        fx(update(&mut s, ctrl_y())),
        vec![Effect::Copy("blurry, text".into())]
    );
}

#[test]
fn copy_in_references_sends_the_focused_asset_id() {
    let mut s = state();
    clipboard_on(&mut s);
    s.pane = Pane::References;
    s.hits = vec![hit(1), hit(2)];
    s.refs_cursor = 1;
    assert_eq!(
        fx(update(&mut s, ctrl_y())),
        vec![Effect::Copy("coco-0002".into())]
    );
}

#[test]
fn copy_in_sessions_after_an_export_sends_the_export_folder() {
    let mut s = state();
    clipboard_on(&mut s);
    s.campaigns = vec![campaign("c1", "Summer")];
    update(
        &mut s,
        Action::Exported {
            dir: "/data/exports/summer-c1".into(),
            summary: "Exported 2 image(s)".into(),
        },
    );
    s.pane = Pane::Sessions;
    assert_eq!(
        fx(update(&mut s, ctrl_y())),
        vec![Effect::Copy("/data/exports/summer-c1".into())]
    );
}

#[test]
fn copy_with_the_clipboard_off_says_so_and_sends_nothing() {
    let mut s = state();
    s.pane = Pane::Prompt;
    s.prompt_editor = campaign_studio::app::state::text_editor("x");
    assert!(fx(update(&mut s, ctrl_y())).is_empty());
    assert!(s.toast.unwrap().text.contains("studio.clipboard = false"));
}

#[test]
fn copy_on_a_terminal_without_osc_52_says_why_and_sends_nothing() {
    let mut s = state();
    s.clipboard = campaign_studio::app::state::ClipboardMode::Unsupported(
        "this terminal (TERM=linux) has no clipboard sequence".into(),
    );
    s.pane = Pane::Prompt;
    s.prompt_editor = campaign_studio::app::state::text_editor("x");
    assert!(fx(update(&mut s, ctrl_y())).is_empty());
    let toast = s.toast.unwrap();
    assert!(toast.text.contains("TERM=linux"), "{}", toast.text);
}

#[test]
fn copy_of_an_empty_field_says_there_is_nothing_to_copy() {
    let mut s = state();
    clipboard_on(&mut s);
    s.pane = Pane::Prompt;
    assert!(fx(update(&mut s, ctrl_y())).is_empty());
    assert!(s.toast.unwrap().text.contains("Nothing to copy"));
}

#[test]
fn more_like_this_asks_for_a_search_by_the_focused_references_image() {
    let mut s = state();
    update(&mut s, Action::NewCampaign);
    type_text(&mut s, "Surfers at sunset");
    s.pane = Pane::References;
    s.hits = vec![hit(1), hit(2)];
    s.refs_cursor = 1;
    let effects = fx(update(&mut s, Action::MoreLikeThis));
    let [Effect::Search { like, brief, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(like.as_deref(), Some(hit(2).asset_id.as_str()));
    assert_eq!(brief, "Surfers at sunset");
    assert!(
        s.toast
            .as_ref()
            .unwrap()
            .text
            .contains("images like coco-0002")
    );
}

/// The search effect of a new campaign's brief submitted with Ctrl-S.
fn text_search() -> Effect {
    let mut s = state();
    update(&mut s, Action::NewCampaign);
    type_text(&mut s, "Surfers at sunset");
    let effects = fx(update(&mut s, Action::Submit));
    let [e @ Effect::Search { .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    e.clone()
}

#[test]
fn a_text_search_carries_no_image_to_search_like() {
    let Effect::Search { like, .. } = text_search() else {
        unreachable!()
    };
    assert_eq!(like, None);
}

#[test]
fn more_like_this_without_references_says_to_search_first() {
    let mut s = state();
    s.pane = Pane::References;
    assert!(fx(update(&mut s, Action::MoreLikeThis)).is_empty());
    assert!(
        s.toast.as_ref().unwrap().text.contains("search first"),
        "{:?}",
        s.toast
    );
}

#[test]
fn m_on_references_is_more_like_this() {
    let km = campaign_studio::app::keymap::default_keymap();
    assert_eq!(
        campaign_studio::app::keymap::resolve(
            &km,
            Pane::References,
            false,
            KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE)
        ),
        Some(Action::MoreLikeThis)
    );
}

/// References after a search whose filter offered to widen: hits weak, the offer kept, the
/// campaign the one on screen.
fn offered(s: &mut State) {
    update(s, Action::NewCampaign);
    type_text(s, "Families enjoying a picnic in a sunny park");
    let mut c = campaign("c1", "Picnic");
    c.brief = s.brief_text();
    c.objective = s.objectives[s.objective].clone();
    c.node = s.nodes[s.node].clone();
    s.campaign = Some(c);
    s.pane = Pane::References;
    s.hits = (1..=3)
        .map(|i| {
            let mut h = hit(i);
            h.strength = Some(MatchStrength {
                level: Some(StrengthLevel::Weak),
                z: 1.2,
                percentile: 0.81,
            });
            h
        })
        .collect();
    s.widen_offer = Some(
        "no strong match in objective likes, audience followers: widen the search to other objectives and audiences".into(),
    );
}

#[test]
fn widen_with_an_offer_searches_again_widened() {
    let mut s = state();
    offered(&mut s);
    let effects = fx(update(&mut s, Action::Widen));
    let [Effect::Search { widen, like, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(*widen);
    assert_eq!(*like, None);
}

/// `w` on References holding one hit and no offer, after a search for `query`: asserts it
/// asks for nothing, and returns what it says.
fn widen_refused(query: &str) -> String {
    let mut s = state();
    update(&mut s, Action::NewCampaign);
    s.pane = Pane::References;
    s.hits = vec![hit(1)];
    s.search_query = query.into();
    assert!(fx(update(&mut s, Action::Widen)).is_empty());
    s.toast.unwrap().text
}

#[test]
fn widen_without_an_offer_says_why_and_searches_nothing() {
    let said = widen_refused("Surfers at sunset");
    assert!(said.contains("already hold a strong match"), "{said}");
}

#[test]
fn a_plain_search_is_not_widened() {
    let Effect::Search { widen, .. } = text_search() else {
        unreachable!()
    };
    assert!(!widen);
}

#[test]
fn the_references_pane_shows_the_offer_to_widen_and_its_key() {
    let mut s = state();
    offered(&mut s);
    let screen = draw(&mut s, 120, 40);
    assert!(
        screen.contains("no strong match in objective likes"),
        "{screen}"
    );
    assert!(screen.contains("[w] no strong match"), "{screen}");
}

#[test]
fn each_reference_tile_says_its_match_strength() {
    let mut s = state();
    offered(&mut s);
    let screen = draw(&mut s, 120, 40);
    assert!(screen.contains("weak · sim"), "{screen}");
}

#[test]
fn a_reference_from_outside_the_filter_is_marked_with_its_own_group() {
    let mut s = state();
    offered(&mut s);
    let mut h = hit(9);
    h.outside_filter = true;
    h.objective = "clicks".into();
    h.node = "customers".into();
    s.hits.push(h);
    s.widen_offer = None;
    let screen = draw(&mut s, 120, 40);
    assert!(screen.contains("↗ clicks/customers"), "{screen}");
    assert!(screen.contains("· 1 ↗ outside the filter"), "{screen}");
}

/// A search of `brief` from a new campaign, answered with one hit, `widen_offer` and `read_as`.
fn searched_with(s: &mut State, brief: &str, widen_offer: Option<&str>, read_as: Option<&str>) {
    update(s, Action::NewCampaign);
    type_text(s, brief);
    let effects = fx(update(s, Action::Submit));
    let [Effect::Search { job, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    update(
        s,
        Action::SearchDone {
            job: *job,
            campaign: Box::new(campaign("c1", "Picnic")),
            hits: vec![hit(1)],
            query: brief.into(),
            widen_offer: widen_offer.map(str::to_string),
            read_as: read_as.map(str::to_string),
        },
    );
}

#[test]
fn a_search_that_offers_to_widen_says_so_and_which_key() {
    let mut s = state();
    searched_with(
        &mut s,
        "Picnic",
        Some(
            "only 1 of the 8 references asked for are in objective likes, audience followers: widen the search to other objectives and audiences",
        ),
        None,
    );
    assert!(s.toast.as_ref().unwrap().text.contains("press w"));
    assert!(s.widen_offer.is_some());
}

#[test]
fn a_search_moved_by_the_spanish_offset_says_it_was_read_as_spanish() {
    let mut s = state();
    searched_with(
        &mut s,
        "Pícnic familiar en un parque soleado",
        None,
        SearchedAs::Moved {
            language: "Spanish".into(),
            not_translated: None,
        }
        .describe()
        .as_deref(),
    );
    let said = &s.toast.as_ref().unwrap().text;
    assert!(said.contains("Read as Spanish"), "{said}");
}

#[test]
fn a_search_of_a_translated_brief_shows_the_english_it_searched() {
    let mut s = state();
    searched_translated(&mut s);
    let said = &s.toast.as_ref().unwrap().text;
    assert!(
        said.contains("Read as Spanish: searched as its English translation by Apertium spa-eng")
            && said.contains("Family picnic in a sunny park"),
        "{said}"
    );
}

fn translated_picnic() -> SearchedAs {
    SearchedAs::Translated(Translation {
        from: "Spanish".into(),
        by: "Apertium spa-eng".into(),
        text: "Family picnic in a sunny park".into(),
    })
}

/// A search of the Spanish picnic brief, searched as its translation (`translated_picnic`).
fn searched_translated(s: &mut State) {
    searched_with(
        s,
        "Pícnic familiar en un parque soleado",
        None,
        translated_picnic().describe().as_deref(),
    );
}

#[test]
fn the_references_pane_keeps_saying_the_english_a_brief_was_searched_as() {
    let mut s = state();
    searched_translated(&mut s);
    s.toast = None;
    let screen = draw(&mut s, 160, 40);
    assert!(
        screen.contains("searched as its English translation by Apertium spa-eng"),
        "{screen}"
    );
}

#[test]
fn a_reopened_campaign_says_how_its_last_search_was_made() {
    let mut s = state();
    update(
        &mut s,
        Action::CampaignOpened(Box::new(OpenedCampaign {
            campaign: campaign("c1", "Picnic"),
            hits: vec![hit(1)],
            query: "Pícnic familiar en un parque soleado".into(),
            widen_offer: None,
            read_as: translated_picnic().describe(),
            versions: Vec::new(),
            gallery: Vec::new(),
            view: None,
        })),
    );
    s.pane = Pane::References;
    let screen = draw(&mut s, 160, 40);
    assert!(screen.contains("Family picnic in a sunny park"), "{screen}");
}

#[test]
fn a_new_campaign_forgets_how_the_last_one_was_searched() {
    let mut s = state();
    searched_translated(&mut s);
    update(&mut s, Action::NewCampaign);
    assert_eq!(s.read_as, None);
}

#[test]
fn widen_after_more_like_this_says_it_is_for_text_searches() {
    let said = widen_refused("images like coco-0001");
    assert!(said.contains("widening is for text searches"), "{said}");
}

#[test]
fn widen_after_the_brief_changed_asks_for_ctrl_s_first() {
    let mut s = state();
    offered(&mut s);
    s.pane = Pane::Brief;
    type_text(&mut s, " at noon");
    s.pane = Pane::References;
    assert!(fx(update(&mut s, Action::Widen)).is_empty());
    assert!(
        s.toast
            .unwrap()
            .text
            .contains("press Ctrl-S to search it first")
    );
}

#[test]
fn more_results_after_widening_search_widened_again() {
    let mut s = state();
    offered(&mut s);
    s.hits[2].outside_filter = true;
    let effects = fx(update(&mut s, Action::MoreResults));
    let [Effect::Search { widen, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(*widen);
}

#[test]
fn more_results_of_a_filtered_search_stay_filtered() {
    let mut s = state();
    offered(&mut s);
    let effects = fx(update(&mut s, Action::MoreResults));
    let [Effect::Search { widen, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert!(!*widen);
}
