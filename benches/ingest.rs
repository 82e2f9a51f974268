//! Per-image work done at ingest besides the models: decode, thumbnail, perceptual hash,
//! palette, sha256. `cargo bench --bench ingest`
use campaign_studio::services::local::imaging;
use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use std::hint::black_box;

fn sample() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/images");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("demo/images")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    std::fs::read(&files[0]).expect("a demo image")
}

fn per_image(c: &mut Criterion) {
    let bytes = sample();
    let img = imaging::decode(&bytes, "jpg", 50_000_000).unwrap().image;
    c.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(&bytes))));
    c.bench_function("decode (header check + full decode)", |b| {
        b.iter(|| imaging::decode(black_box(&bytes), "jpg", 50_000_000).unwrap())
    });
    c.bench_function("thumbnail 320 px jpeg", |b| {
        b.iter(|| imaging::thumbnail_jpeg(black_box(&img), 320).unwrap())
    });
    c.bench_function("perceptual hash", |b| {
        b.iter(|| imaging::phash(black_box(&img)))
    });
    c.bench_function("palette (k-means, 5)", |b| {
        b.iter(|| imaging::palette(black_box(&img), 5))
    });
    c.bench_function("all non-model work", |b| {
        b.iter(|| {
            let d = imaging::decode(black_box(&bytes), "jpg", 50_000_000).unwrap();
            let _ = imaging::thumbnail_jpeg(&d.image, 320).unwrap();
            let _ = imaging::phash(&d.image);
            let _ = imaging::palette(&d.image, 5);
            let _ = imaging::brightness(&d.image);
            Sha256::digest(&bytes)
        })
    });
}

criterion_group!(benches, per_image);
criterion_main!(benches);
