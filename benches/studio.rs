//! Studio rendering: time to render the busiest screen (references with a full list and the
//! detail column; the prompt pane with a long streamed scratchpad) at 200x60, and the cost of
//! one key (update + render) while a stream is running. `cargo bench --bench studio`
use std::hint::black_box;

use campaign_studio::app::keymap::default_keymap;
use campaign_studio::app::{Action, Pane, State, update};
use campaign_studio::domain::ReferenceHit;
use campaign_studio::services::PromptEvent;
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

fn render(c: &mut Criterion) {
    let km = default_keymap();
    let mut t = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    for pane in [Pane::References, Pane::Prompt] {
        let s = busy_state(pane);
        c.bench_function(&format!("render {pane:?} 200x60"), |b| {
            b.iter(|| {
                t.draw(|f| campaign_studio::ui::render(f, black_box(&s), &km))
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
            t.draw(|f| campaign_studio::ui::render(f, &s, &km))
                .expect("draw");
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
