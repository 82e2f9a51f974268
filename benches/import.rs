//! `library import` throughput against the loopback fakes of the tests (a sample's S3 Vectors
//! index and its image bucket, tests/common/s3vectors.rs and tests/common/s3.rs) with a fixed
//! latency on every call, as a remote service would add: records per second, and how close the
//! download phase comes to the ideal of `concurrency / latency` GetObject calls per second.
//!
//! `cargo bench --bench import`; IMPORT_BENCH_N records (default 400), IMPORT_BENCH_LATENCY_MS
//! per call (default 50), IMPORT_BENCH_CONCURRENCY GetObject calls in flight (default 8, the
//! `[import]` default). The images are small distinct PNGs, so the measure is of the network
//! path; the ingest after it runs with the deterministic fake models, one job, and is timed
//! apart (it is what the local models cost, measured by the ingest bench).
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaign_studio::config::Config;
use campaign_studio::engine::Library;
use campaign_studio::engine::import::{
    ImportOptions, ObjectSource, S3Location, SourceUri, import, open_objects, open_source,
    staging_dir,
};
use campaign_studio::paths::Paths;
use campaign_studio::services::fake::{FakeAnalyser, FakeEmbedder};
use serde_json::json;

// The tests' fakes; the bench uses part of what they offer.
#[allow(dead_code)]
#[path = "../tests/common/s3.rs"]
mod s3;
#[allow(dead_code)]
#[path = "../tests/common/s3vectors.rs"]
mod s3vectors;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn png(i: usize) -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 24, |x, y| {
        image::Rgb([
            (i % 251) as u8,
            (i / 251 % 251) as u8,
            (x * 7 + y * 3) as u8,
        ])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("png");
    bytes
}

fn unit(i: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..1024)
        .map(|j| ((i * 31 + j * 17) % 97) as f32 - 48.0)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn main() {
    let n = env_or("IMPORT_BENCH_N", 400);
    let latency = Duration::from_millis(env_or("IMPORT_BENCH_LATENCY_MS", 50) as u64);
    let concurrency = env_or("IMPORT_BENCH_CONCURRENCY", 8).max(1);
    let vectors = s3vectors::FakeS3Vectors::start("bench-vectors");
    let bucket = s3::FakeS3::start();
    let mut ix = s3vectors::FakeIndex {
        arn: "arn:aws:s3vectors:eu-west-1:123456789012:bucket/bench-vectors/index/pace".into(),
        dim: 1024,
        metric: "cosine".into(),
        data_type: "float32".into(),
        mode: "ENHANCED".into(),
        ..Default::default()
    };
    for i in 0..n {
        let key = format!("img-{i:05}");
        ix.vectors.insert(
            key.clone(),
            (
                unit(i),
                json!({"results": 0.01, "node": "followers", "objective": "clicks",
                       "image_s3_uri": format!("s3://bench-images/images/{key}.png"),
                       "image_description": "a picture", "img_element_list": "a,b"}),
            ),
        );
        bucket.put("bench-images", &format!("images/{key}.png"), png(i));
    }
    vectors.with(|st| {
        st.indexes.insert("pace".into(), ix);
        st.delay = latency;
    });
    bucket.with(|st| st.delay = latency);

    let mut config = Config::defaults();
    config.index.s3vectors.region = s3vectors::REGION.into();
    config.index.s3vectors.endpoint_url = vectors.uri();
    config.import.region = s3::REGION.into();
    config.import.s3_endpoint_url = bucket.uri();
    config.import.concurrency = concurrency;
    let creds = aws_credential_types::Credentials::new("AKIDBENCH", "bench", None, None, "bench");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = Paths::for_dirs(
        &dir.path().join("config"),
        &dir.path().join("data"),
        &dir.path().join("cache"),
    );
    let mut lib = Library::with_services(
        paths,
        config.clone(),
        Arc::new(FakeEmbedder::new(64)),
        Arc::new(FakeAnalyser::default()),
    )
    .expect("library");
    let from = SourceUri::parse("s3vectors://bench-vectors/pace").expect("uri");
    let source = open_source(&config, &from, Some(creds.clone()), None).expect("source");
    let objects = open_objects(&config, Some(creds)).expect("s3");

    // The download phase alone: every object, `concurrency` calls in flight.
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch");
    let items: Vec<(String, std::path::PathBuf)> = (0..n)
        .map(|i| {
            (
                format!("images/img-{i:05}.png"),
                scratch.join(format!("{i}.png")),
            )
        })
        .collect();
    let t = Instant::now();
    let got = objects.fetch_all("bench-images", &items, 1 << 20, &|_| {});
    let fetch_s = t.elapsed().as_secs_f64();
    assert!(got.iter().all(Result::is_ok), "every object fetched");
    let ideal = concurrency as f64 / latency.as_secs_f64();
    let rate = n as f64 / fetch_s;

    // The whole import: listing, downloads, manifest, ingest (fake models), Titan vectors.
    let opts = ImportOptions {
        images: S3Location::parse("s3://bench-images/images").expect("images"),
        map_objective: Default::default(),
        map_node: Default::default(),
        dry_run: false,
        jobs: 1,
    };
    let fetched_at = std::sync::Mutex::new(None::<Instant>);
    let t = Instant::now();
    let report = import(
        &mut lib,
        source.as_ref(),
        &objects,
        &opts,
        &|done, total| {
            if done == total
                && let Ok(mut g) = fetched_at.lock()
            {
                *g = Some(Instant::now());
            }
        },
        &mut |_| {},
    )
    .expect("import");
    let total_s = t.elapsed().as_secs_f64();
    let network_s = fetched_at
        .lock()
        .ok()
        .and_then(|g| *g)
        .map(|at| at.duration_since(t).as_secs_f64())
        .unwrap_or(f64::NAN);
    assert_eq!(report.imported, n, "{:?}", report.failed);
    assert!(staging_dir(&lib.paths.data_dir, &source.name()).is_dir());

    println!(
        "import bench: {n} records, {} ms per call, {concurrency} GetObject in flight",
        latency.as_millis()
    );
    println!(
        "  downloads alone:           {rate:7.1} objects/s  (ideal {ideal:.1}: {:.2} of ideal)",
        rate / ideal
    );
    println!(
        "  listing + downloads:       {:7.1} records/s  ({:.2} of ideal)",
        n as f64 / network_s,
        n as f64 / network_s / ideal
    );
    println!(
        "  whole import:              {:7.1} records/s  ({total_s:.2} s; ingest with fake models {:.2} s)",
        n as f64 / total_s,
        total_s - network_s
    );
}
