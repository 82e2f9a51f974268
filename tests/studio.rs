//! The studio's state machine (update) and its screens (insta snapshots on TestBackend).
use campaign_studio::app::keymap::default_keymap;
use campaign_studio::app::{Action, Effect, Pane, State, update};
use campaign_studio::domain::{Campaign, CampaignStep, PromptSource, PromptVersion, ReferenceHit};
use campaign_studio::services::PromptEvent;
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
    }
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
                hits: vec![hit(1)]
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
        },
    );
    assert_eq!(fx, vec![Effect::LoadCampaigns]);
    assert_eq!(
        (s.pane, s.hits.len(), s.busy()),
        (Pane::References, 4, false)
    );

    update(&mut s, Action::Down);
    let fx = update(&mut s, Action::Toggle);
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
    assert_eq!(update(&mut s, Action::Cancel), vec![Effect::CancelJob(job)]);
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
        update(&mut s, Action::Confirm),
        vec![Effect::DeleteCampaign("b".into()), Effect::LoadCampaigns]
    );
    assert!(update(&mut s, Action::Confirm).is_empty());
    assert_eq!(
        update(&mut s, Action::Open),
        vec![Effect::OpenCampaign("b".into())]
    );
}

fn draw(s: &State, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let km = default_keymap();
    t.draw(|f| campaign_studio::ui::render(f, s, &km)).unwrap();
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
    let mut prompt = refs.clone_for_test();
    prompt.pane = Pane::Prompt;
    prompt.reasoning =
        "Subject, from the brief: \"surfers\".\nElement \"surfboard\": in 2 of 2 references.\n"
            .into();
    prompt.answer = "two friends surfing big waves at sunset, with surfboard, golden light".into();
    let mut generate = refs.clone_for_test();
    generate.pane = Pane::Generate;
    let mut help = refs.clone_for_test();
    help.show_help = true;
    vec![
        ("sessions", sessions),
        ("brief", brief),
        ("references", refs),
        ("prompt", prompt),
        ("generate", generate),
        ("help", help),
    ]
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
    for (name, s) in screens() {
        for (w, h) in [(20, 5), (80, 24), (200, 60)] {
            insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(&s, w, h));
        }
    }
}
