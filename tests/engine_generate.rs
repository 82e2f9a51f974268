//! Generation, novelty, export and the KPI loop at the engine level, with deterministic fakes
//! for the embedder, the image analyser and the generator.
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use campaign_studio::config::Config;
use campaign_studio::domain::{BrandKit, TaskType};
use campaign_studio::engine::campaign::{self, NewCampaign, RecommendOptions};
use campaign_studio::engine::generate::{self, GenerateOptions};
use campaign_studio::engine::ingest::{IngestOptions, ingest};
use campaign_studio::engine::{Library, export, prompt};
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder, FakeGenerator};
use campaign_studio::services::local::composer::Composer;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::{Value, json};

fn setup(dir: &Path) -> (Library, String) {
    let root = dir.join("lib");
    std::fs::create_dir_all(&root).unwrap();
    let themes = [
        "dog running on a beach",
        "family dinner with pasta",
        "red car on a road",
    ];
    let mut rows = Vec::new();
    for i in 0..12u32 {
        let img = RgbImage::from_fn(64, 48, |x, y| {
            Rgb([(i * 20) as u8, (x * 3) as u8, (y * 5 + i) as u8])
        });
        let mut bytes = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        std::fs::write(root.join(format!("{i}.png")), bytes).unwrap();
        rows.push(json!({"id": format!("a{i:02}"), "file": format!("{i}.png"), "caption": format!("{} {i}", themes[i as usize % 3]),
            "labels": [themes[i as usize % 3].split(' ').next().unwrap()], "objective": "likes", "node": "followers", "results": i as f64 / 100.0}).to_string());
    }
    std::fs::write(root.join("manifest.jsonl"), rows.join("\n")).unwrap();
    let paths = Paths::for_dirs(&dir.join("config"), &dir.join("data"), &dir.join("cache"));
    let mut lib = Library::with_services(
        paths,
        Config::defaults(),
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .unwrap();
    let r = ingest(
        &mut lib,
        &IngestOptions {
            manifest: Some(root.join("manifest.jsonl")),
            root,
            jobs: 1,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.ingested, 12);
    let c = campaign::create(
        &lib,
        NewCampaign {
            name: "Beach dogs".into(),
            brief: "A happy dog running on a sunny beach".into(),
            objective: "likes".into(),
            node: "followers".into(),
            brand: Some(BrandKit {
                name: "Acme".into(),
                palette: vec!["#ff6600".into()],
                ..Default::default()
            }),
        },
    )
    .unwrap();
    let embedder = FakeEmbedder::new(64);
    let index = lib.load_index(&embedder.id).unwrap();
    let run = campaign::recommend(
        &lib,
        &c,
        &index,
        &embedder,
        &RecommendOptions {
            k: 4,
            query: None,
            kpi_weight: 0.25,
            rerank_factor: 2,
            widen: false,
        },
    )
    .unwrap();
    assert_eq!(run.hits.len(), 4);
    let keys: Vec<String> = run.hits[..2].iter().map(|h| h.asset_id.clone()).collect();
    campaign::select(&lib, &lib.store.campaign(&c.id).unwrap().unwrap(), &keys).unwrap();
    let c = lib.store.campaign(&c.id).unwrap().unwrap();
    prompt::write_prompt(&lib, &c, &Composer, None, 512, &mut |_| {}).unwrap();
    (lib, c.id)
}

#[test]
fn generates_with_provenance_validates_first_and_checks_novelty() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, id) = setup(dir.path());
    let c = lib.store.campaign(&id).unwrap().unwrap();
    let fake = FakeGenerator::default();

    // Invalid requests are refused before any call, naming the field.
    for (opts, want) in [
        (
            GenerateOptions {
                size: Some((1000, 1024)),
                ..Default::default()
            },
            "width 1000 is not a multiple of 16",
        ),
        (
            GenerateOptions {
                count: 6,
                ..Default::default()
            },
            "count 6",
        ),
        (
            GenerateOptions {
                cfg_scale: 20.0,
                ..Default::default()
            },
            "cfg",
        ),
        (
            GenerateOptions {
                aspect: Some("9:1".into()),
                ..Default::default()
            },
            "aspect",
        ),
        (
            GenerateOptions {
                seed: Some(u32::MAX),
                ..Default::default()
            },
            "seed",
        ),
    ] {
        let e = generate::generate(&mut lib, &c, &fake, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e} should mention {want}");
    }
    assert!(fake.requests.lock().unwrap().is_empty());

    let images = generate::generate(
        &mut lib,
        &c,
        &fake,
        &GenerateOptions {
            count: 5,
            seed: Some(42),
            aspect: Some("16:9".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(images.len(), 5);
    let seeds: Vec<u32> = images.iter().map(|i| i.seed).collect();
    assert_eq!(seeds, [42, 43, 44, 45, 46]);
    let req = &images[0].request;
    assert_eq!((req.params.width % 16, req.params.height % 16), (0, 0));
    assert!((req.params.width as f32 / req.params.height as f32 - 16.0 / 9.0).abs() < 0.05);
    assert!(!req.params.seed_was_random);
    let current = prompt::current(&lib, &c).unwrap().unwrap();
    assert!(images.iter().all(|i| i.prompt_version_id == current.id
        && i.references == c.selected
        && i.model == "fake/gradient"));
    assert!(images.iter().all(|i| Path::new(&i.path).is_file()));
    assert!(
        images
            .iter()
            .all(|i| i.novelty.as_ref().is_some_and(|n| !n.too_close))
    );
    assert_eq!(
        lib.store.campaign(&id).unwrap().unwrap().step.as_str(),
        "generated"
    );

    // Random seeds are drawn and recorded.
    let r = generate::generate(&mut lib, &c, &fake, &GenerateOptions::default()).unwrap();
    assert!(r[0].request.params.seed_was_random);
    assert_eq!(lib.store.generated_images(&id).unwrap().len(), 6);

    // Variation sends the selected references; colour-guided the brand colour first.
    generate::generate(
        &mut lib,
        &c,
        &fake,
        &GenerateOptions {
            task: TaskType::Variation,
            similarity_strength: Some(0.7),
            ..Default::default()
        },
    )
    .unwrap();
    generate::generate(
        &mut lib,
        &c,
        &fake,
        &GenerateOptions {
            task: TaskType::ColorGuided,
            ..Default::default()
        },
    )
    .unwrap();
    let reqs = fake.requests.lock().unwrap().clone();
    let var = &reqs[reqs.len() - 2];
    assert_eq!(var.reference_images.len(), 2);
    assert!(var.reference_images.iter().all(|p| Path::new(p).is_file()));
    assert_eq!(reqs.last().unwrap().colours[0], "#ff6600");
    assert!(reqs.last().unwrap().colours.len() > 1);

    // An image that copies a library asset is flagged.
    let asset = lib.store.asset(&c.selected[0]).unwrap().unwrap();
    let copier = FakeGenerator {
        copy_of: Some(asset.stored_path.clone().into()),
        ..Default::default()
    };
    let r = generate::generate(&mut lib, &c, &copier, &GenerateOptions::default()).unwrap();
    let n = r[0].novelty.as_ref().unwrap();
    assert!(n.too_close, "{n:?}");
    assert_eq!(n.phash_distance, Some(0));
    assert_eq!(n.nearest_asset.as_deref(), Some(asset.id.as_str()));
    assert!(n.similarity > 0.999, "{n:?}");

    // Variation without selected references is refused.
    campaign::select(&lib, &c, &[]).unwrap();
    let bare = lib.store.campaign(&id).unwrap().unwrap();
    let e = generate::generate(
        &mut lib,
        &bare,
        &fake,
        &GenerateOptions {
            task: TaskType::Variation,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("at least one selected reference"),
        "{e}"
    );
}

#[test]
fn export_is_self_contained_and_the_kpi_loop_feeds_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (mut lib, id) = setup(dir.path());
    let c = lib.store.campaign(&id).unwrap().unwrap();
    let images = generate::generate(
        &mut lib,
        &c,
        &FakeGenerator::default(),
        &GenerateOptions {
            count: 2,
            seed: Some(7),
            ..Default::default()
        },
    )
    .unwrap();

    let out = dir.path().join("export");
    let r = export::export(&lib, &c, &out, None).unwrap();
    assert_eq!((r.images, r.references, r.prompt_versions), (2, 2, 1));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(out.join("campaign.json")).unwrap()).unwrap();
    for section in ["generated_images", "references"] {
        for f in doc[section].as_array().unwrap() {
            assert!(out.join(f["file"].as_str().unwrap()).is_file(), "{f}");
        }
    }
    assert_eq!(doc["generated_images"][0]["request"]["params"]["seed"], 7);
    assert_eq!(doc["prompt_versions"].as_array().unwrap().len(), 1);
    // index.html parses as XML, and every image is embedded (no network, no relative file).
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&html);
    let mut imgs = 0;
    loop {
        match reader.read_event().expect("index.html is well-formed") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Empty(e) | quick_xml::events::Event::Start(e)
                if e.name().into_inner() == "img" =>
            {
                let src = e
                    .try_get_attribute("src")
                    .unwrap()
                    .unwrap()
                    .value
                    .to_string();
                assert!(
                    src.starts_with("data:image/jpeg;base64,"),
                    "{}",
                    &src[..40.min(src.len())]
                );
                imgs += 1;
            }
            _ => {}
        }
    }
    assert_eq!(imgs, 4);
    assert!(!html.contains("src=\"http") && !html.contains("href=") && !html.contains("url("));

    // Promote needs results first; then the image joins the library with the campaign's
    // objective, node and the recorded KPI.
    let e = campaign::promote(&mut lib, &images[0].id).unwrap_err();
    assert!(e.to_string().contains("no results yet"), "{e}");
    let e = campaign::record_results(&lib, &c, &images[0].id, -1.0).unwrap_err();
    assert!(e.to_string().contains("non-negative"));
    campaign::record_results(&lib, &c, &images[0].id[..10], 0.031).unwrap();
    let before = lib.store.count().unwrap();
    let r = campaign::promote(&mut lib, &images[0].id).unwrap();
    assert_eq!(r.ingested, 1, "{r:?}");
    assert_eq!(lib.store.count().unwrap(), before + 1);
    let a = lib
        .store
        .resolve(&format!("generated-{}", &images[0].id[..12]))
        .unwrap();
    assert_eq!(
        (a.objective.as_str(), a.node.as_str(), a.kpi),
        ("likes", "followers", Some(0.031))
    );
    assert!(
        a.description
            .description
            .contains("Generated for the campaign Beach dogs")
    );
    // Promoting again changes nothing.
    assert_eq!(
        campaign::promote(&mut lib, &images[0].id)
            .unwrap()
            .unchanged,
        1
    );
}
