//! Studio rendering: time to render the busiest screen (references with a full list and the
//! detail column; the prompt pane with a long streamed scratchpad) at 200x60, and the cost of
//! one key (update + render) while a stream is running. The references grid has every visible
//! thumbnail encoded (half blocks: the most cells to fill). `cargo bench --bench studio`
use std::hint::black_box;

use campaign_studio::app::keymap::default_keymap;
use campaign_studio::app::state::{Encoded, ImageSlot};
use campaign_studio::app::{Action, Pane, State, update};
use campaign_studio::domain::ReferenceHit;
use campaign_studio::services::PromptEvent;
use campaign_studio::tui::images;
use campaign_studio::ui::Ui;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn busy_state(pane: Pane) -> State {
    let mut s = State::new(
        vec!["clicks".into(), "likes".into()],
        vec!["followers".into()],
        40,
    );
    s.pane = pane;
    s.hits = (0..40)
        .map(|i| ReferenceHit {
            asset_id: format!("{i:064}"),
            external_id: Some(format!("coco-{i:012}")),
            file: format!("images/{i}.jpg"),
            stored_path: String::new(),
            thumbnail_path: String::new(),
            similarity: 0.5,
            kpi: Some(0.02),
            kpi_percentile: 0.5,
            score: 0.5,
            objective: "likes".into(),
            node: "followers".into(),
            description: "A group of friends on a beach at sunset with surfboards and a dog. Landscape, bright.".repeat(2),
            elements: vec!["person".into(), "surfboard".into(), "dog".into()],
            strength: None,
            outside_filter: false,
            inferred: None,
        })
        .collect();
    s.selected = s
        .hits
        .iter()
        .step_by(3)
        .map(|h| h.asset_id.clone())
        .collect();
    s.reasoning =
        "Element \"surfboard\": in 3 of 4 references (coco-1, coco-2, coco-3).\n".repeat(400);
    s.answer = "two friends surfing big waves at sunset, with surfboard, golden light, ".repeat(6);
    s
}

/// Encodes every thumbnail the screen asks for, as the encoder thread would.
fn with_thumbnails(mut s: State, t: &mut Terminal<TestBackend>, ui: &Ui, png: &str) -> State {
    for h in &mut s.hits {
        h.thumbnail_path = png.to_string();
    }
    s.images_enabled = true;
    update(&mut s, Action::Resized(200, 60));
    let mut missing = Vec::new();
    t.draw(|f| missing = campaign_studio::ui::render(f, &s, ui))
        .expect("draw");
    let picker = images::setup("halfblocks", false).picker.expect("picker");
    for key in missing {
        let p = images::encode(&picker, &key, Default::default()).expect("encode");
        update(
            &mut s,
            Action::ImageReady {
                key,
                slot: ImageSlot::Ready(Encoded(std::sync::Arc::new(p))),
            },
        );
    }
    s
}

fn render(c: &mut Criterion) {
    let ui = Ui::new(default_keymap());
    let km = &ui;
    let mut t = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("thumb.png");
    image::RgbImage::from_fn(320, 240, |x, y| {
        image::Rgb([x as u8, y as u8, (x ^ y) as u8])
    })
    .save(&png)
    .expect("png");
    for pane in [Pane::References, Pane::Prompt] {
        let s = with_thumbnails(busy_state(pane), &mut t, &ui, &png.to_string_lossy());
        c.bench_function(&format!("render {pane:?} 200x60"), |b| {
            b.iter(|| {
                t.draw(|f| {
                    campaign_studio::ui::render(f, black_box(&s), km);
                })
                .expect("draw");
            })
        });
    }
    // Key-to-frame while a prompt streams: a stream delta and a key, then one frame.
    let mut s = busy_state(Pane::Prompt);
    s.prompt_job = Some(1);
    c.bench_function("stream delta + key + frame 200x60", |b| {
        b.iter(|| {
            update(
                &mut s,
                Action::PromptStream {
                    job: 1,
                    event: PromptEvent::Reasoning("more thinking\n".into()),
                },
            );
            update(&mut s, Action::ToggleHelp);
            t.draw(|f| {
                campaign_studio::ui::render(f, &s, km);
            })
            .expect("draw");
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
