//! The Bedrock generators against a local fake Bedrock on 127.0.0.1 that checks what the real
//! SDK sends (path with the percent-encoded model id, headers, a SigV4 signature, the JSON body
//! of that model's schema) and answers with payloads of the real shapes, including the real
//! error type headers. No AWS account: credentials are test values given to the default chain.
//!
//! One test function: the credential chain reads the environment, which is set once, before
//! any thread starts.
mod common;

use std::io::Cursor;

use base64::Engine;
use campaign_studio::config::Config;
use campaign_studio::domain::{GenerationParams, GenerationRequest, Quality, TaskType};
use campaign_studio::services::bedrock::canvas;
use campaign_studio::services::generator_from_config;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const CANVAS: &str = "amazon.nova-canvas-v1:0";
const CANVAS_PATH: &str = "/model/amazon.nova-canvas-v1%3A0/invoke";
const STABILITY: &str = "stability.stable-image-ultra-v1:1";
const STABILITY_PATH: &str = "/model/stability.stable-image-ultra-v1%3A1/invoke";

fn png_b64(shade: u8) -> String {
    let img = image::RgbImage::from_pixel(32, 32, image::Rgb([shade, 100, 200]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn config(server: &MockServer, backend: &str) -> Config {
    let mut c = Config::defaults();
    c.generator.backend = backend.into();
    c.bedrock.region = "us-east-1".into();
    c.bedrock.endpoint_url = server.uri();
    c.bedrock.initial_backoff_ms = 1;
    c.bedrock.max_attempts = 3;
    c
}

fn request(task: TaskType, count: u32) -> GenerationRequest {
    GenerationRequest {
        prompt: "two friends surfing big waves at sunset, golden light".into(),
        negative_prompt: "blurry, watermark".into(),
        params: GenerationParams {
            count,
            width: 1280,
            height: 720,
            seed: 42,
            seed_was_random: false,
            cfg_scale: 6.5,
            quality: Quality::Premium,
            task,
            similarity_strength: None,
        },
        reference_images: Vec::new(),
        colours: Vec::new(),
    }
}

/// An error the way Bedrock sends it: status, `x-amzn-ErrorType` header, JSON message.
fn aws_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header(
            "x-amzn-ErrorType",
            format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .insert_header("content-type", "application/json")
        .set_body_json(json!({ "message": message }))
}

fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_json(body)
}

/// What every request must carry, whatever the model.
fn assert_signed_json(r: &Request) -> Value {
    let h = |k: &str| {
        r.headers
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("accept"), "application/json");
    let auth = h("authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDWIRETEST/")
            && auth.contains("/us-east-1/bedrock/aws4_request")
            && auth.contains("Signature="),
        "SigV4: {auth}"
    );
    assert!(!h("x-amz-date").is_empty());
    assert!(
        !auth.contains("wire-test-secret"),
        "the secret is never sent"
    );
    serde_json::from_slice(&r.body).expect("JSON body")
}

#[test]
fn bedrock_generators_on_the_wire() {
    // SAFETY: the only test in this binary; no other thread exists yet.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDWIRETEST");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "wire-test-secret");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        );
        std::env::remove_var("AWS_PROFILE");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    let dir = tempfile::tempdir().unwrap();

    // 1. Nova Canvas, text to image, five images in one call.
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(CANVAS_PATH))
            .respond_with(ok(json!({
                "images": (0..5).map(|i| png_b64(i * 40)).collect::<Vec<_>>()
            })))
            .up_to_n_times(1)
            .mount(&server),
    );
    let canvas_gen = generator_from_config(&config(&server, "bedrock/nova-canvas"))
        .unwrap()
        .unwrap();
    assert_eq!(canvas_gen.caps().model, CANVAS);
    let out = canvas_gen.generate(&request(TaskType::Text, 5)).unwrap();
    assert_eq!(out.len(), 5);
    assert!(
        out.iter()
            .all(|g| g.seed == 42 && g.png.starts_with(b"\x89PNG"))
    );
    let reqs = rt.block_on(server.received_requests()).unwrap();
    assert_eq!(reqs.len(), 1);
    let body = assert_signed_json(&reqs[0]);
    assert_eq!(
        body,
        json!({
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {
                "text": "two friends surfing big waves at sunset, golden light",
                "negativeText": "blurry, watermark"
            },
            "imageGenerationConfig": {
                "numberOfImages": 5, "width": 1280, "height": 720, "cfgScale": 6.5,
                "seed": 42, "quality": "premium"
            }
        })
    );
    rt.block_on(server.reset());

    // 2. Variation of two reference files: base64 PNGs and the similarity strength.
    let mut refs = Vec::new();
    for i in 0..2 {
        let p = dir.path().join(format!("ref{i}.jpg"));
        image::RgbImage::from_pixel(64, 48, image::Rgb([i * 90, 10, 10]))
            .save(&p)
            .unwrap();
        refs.push(p.display().to_string());
    }
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(CANVAS_PATH))
            .respond_with(ok(json!({ "images": [png_b64(1)] })))
            .mount(&server),
    );
    let mut r = request(TaskType::Variation, 1);
    r.reference_images = refs;
    r.params.similarity_strength = Some(0.8);
    canvas_gen.generate(&r).unwrap();
    // 3. Colour-guided with the brand colour first.
    let mut r = request(TaskType::ColorGuided, 2);
    r.colours = vec!["#ff6600".into(), "#1e90ff".into()];
    canvas_gen.generate(&r).unwrap();
    let reqs = rt.block_on(server.received_requests()).unwrap();
    let var = assert_signed_json(&reqs[0]);
    assert_eq!(var["taskType"], "IMAGE_VARIATION");
    let p = &var["imageVariationParams"];
    assert_eq!(p["similarityStrength"], 0.8);
    assert_eq!(p["images"].as_array().unwrap().len(), 2);
    let img = base64::engine::general_purpose::STANDARD
        .decode(p["images"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(
        image::load_from_memory(&img).unwrap().width(),
        64,
        "a reference within the limits is sent at its size"
    );
    let col = assert_signed_json(&reqs[1]);
    assert_eq!(col["taskType"], "COLOR_GUIDED_GENERATION");
    assert_eq!(
        col["colorGuidedGenerationParams"]["colors"],
        json!(["#ff6600", "#1e90ff"])
    );
    assert_eq!(col["imageGenerationConfig"]["numberOfImages"], 2);
    rt.block_on(server.reset());

    // 4. A request the model would refuse is refused before any call, naming the field.
    let mut bad = request(TaskType::Text, 1);
    bad.params.width = 1000;
    let e = canvas_gen.generate(&bad).unwrap_err().to_string();
    assert!(e.contains("width 1000") && e.contains("16"), "{e}");
    assert!(rt.block_on(server.received_requests()).unwrap().is_empty());

    // 5. Throttled once, then served: the SDK retries with backoff.
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(CANVAS_PATH))
            .respond_with(aws_error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            ))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server),
    );
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(CANVAS_PATH))
            .respond_with(ok(json!({ "images": [png_b64(7)] })))
            .with_priority(2)
            .mount(&server),
    );
    assert_eq!(
        canvas_gen
            .generate(&request(TaskType::Text, 1))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(rt.block_on(server.received_requests()).unwrap().len(), 2);
    rt.block_on(server.reset());

    // 6. Errors become messages that say what to do; nothing is retried that should not be.
    for (status, kind, message, want) in [
        (
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
            "Model access",
        ),
        (
            400,
            "ValidationException",
            "This request has been blocked by our content filters.",
            "content filter",
        ),
        (
            400,
            "ValidationException",
            "Malformed input request: #/imageGenerationConfig/width: 8 is not greater or equal to 320",
            "imageGenerationConfig/width",
        ),
        (
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
            "no such model in us-east-1",
        ),
    ] {
        rt.block_on(server.reset());
        rt.block_on(
            Mock::given(method("POST"))
                .and(path(CANVAS_PATH))
                .respond_with(aws_error(status, kind, message))
                .mount(&server),
        );
        let e = canvas_gen
            .generate(&request(TaskType::Text, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains(CANVAS), "{kind}: {e}");
        assert_eq!(
            rt.block_on(server.received_requests()).unwrap().len(),
            1,
            "{kind} is not retried"
        );
    }
    rt.block_on(server.reset());

    // 7. Stability: one image per call, seeds from the answer, a filtered image not kept.
    let stability = generator_from_config(&config(&server, "bedrock/stability"))
        .unwrap()
        .unwrap();
    assert_eq!(stability.caps().model, STABILITY);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(STABILITY_PATH))
            .respond_with(ok(
                json!({"images": [png_b64(3)], "seeds": [42], "finish_reasons": [null]}),
            ))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server),
    );
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(STABILITY_PATH))
            .respond_with(ok(
                json!({"images": [""], "seeds": [43], "finish_reasons": ["Filter reason: prompt"]}),
            ))
            .with_priority(2)
            .mount(&server),
    );
    let mut r = request(TaskType::Text, 2);
    r.params.width = 1344;
    r.params.height = 768;
    let out = stability.generate(&r).unwrap();
    assert_eq!(out.len(), 1, "the filtered image is not kept");
    assert_eq!(out[0].seed, 42);
    let reqs = rt.block_on(server.received_requests()).unwrap();
    assert_eq!(reqs.len(), 2);
    for (i, req) in reqs.iter().enumerate() {
        assert_eq!(
            assert_signed_json(req),
            json!({
                "prompt": "two friends surfing big waves at sunset, golden light",
                "negative_prompt": "blurry, watermark",
                "aspect_ratio": "16:9",
                "seed": 42 + i,
                "output_format": "png"
            })
        );
    }
    // Every image filtered: a plain message, nothing saved.
    let e = stability
        .generate(&request(TaskType::Text, 1))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("content filter") && e.contains("Filter reason: prompt"),
        "{e}"
    );
    // Stability makes text to image only.
    let e = stability
        .generate(&request(TaskType::Variation, 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not supported"), "{e}");

    // The body builder is what the generator sends.
    let b = canvas::body(&request(TaskType::Text, 1), &canvas::caps(CANVAS).sizes).unwrap();
    assert_eq!(b["taskType"], "TEXT_IMAGE");

    rt.block_on(server.reset());

    // 8. End to end through the CLI, with the config pointed at the fake: a small library,
    //    a campaign, references, a prompt, two generated images, an export that has them.
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(CANVAS_PATH))
            .respond_with(ok(json!({ "images": [png_b64(11), png_b64(12)] })))
            .mount(&server),
    );
    let env = common::Env::new();
    let lib = common::demo_library();
    let photos = env.dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for e in std::fs::read_dir(lib.join("images"))
        .unwrap()
        .flatten()
        .take(4)
    {
        std::fs::copy(e.path(), photos.join(e.file_name())).unwrap();
    }
    let cli = |args: &[&str]| -> Value {
        let out = env
            .cmd()
            .env("AWS_ACCESS_KEY_ID", "AKIDWIRETEST")
            .env("AWS_SECRET_ACCESS_KEY", "wire-test-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CAMPAIGN_STUDIO_GENERATOR__BACKEND", "bedrock/nova-canvas")
            .env("CAMPAIGN_STUDIO_BEDROCK__ENDPOINT_URL", server.uri())
            .env("CAMPAIGN_STUDIO_BEDROCK__REGION", "us-east-1")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let photos_s = photos.display().to_string();
    cli(&[
        "library",
        "ingest",
        &photos_s,
        "--objective",
        "likes",
        "--node",
        "followers",
        "--json",
    ]);
    let c = cli(&[
        "campaign",
        "new",
        "--name",
        "Cloud",
        "--brief",
        "people outdoors on a sunny day",
        "--objective",
        "likes",
        "--node",
        "followers",
        "--json",
    ]);
    let id = c["id"].as_str().unwrap().to_string();
    let run = cli(&["campaign", "recommend", &id, "-k", "2", "--json"]);
    let first = run["hits"][0]["asset_id"].as_str().unwrap().to_string();
    cli(&["campaign", "select", &id, &first, "--json"]);
    cli(&["campaign", "prompt", &id, "--json"]);
    let images = cli(&[
        "campaign", "generate", &id, "--count", "2", "--aspect", "16:9", "--seed", "7", "--json",
    ]);
    let images = images.as_array().unwrap();
    assert_eq!(images.len(), 2);
    for g in images {
        assert_eq!(g["model"], CANVAS);
        assert_eq!(g["seed"], 7);
        assert!(std::path::Path::new(g["path"].as_str().unwrap()).is_file());
    }
    let sent = rt.block_on(server.received_requests()).unwrap();
    let body = assert_signed_json(&sent[0]);
    assert_eq!(body["imageGenerationConfig"]["numberOfImages"], 2);
    assert_eq!(body["imageGenerationConfig"]["seed"], 7);
    let w = body["imageGenerationConfig"]["width"].as_u64().unwrap();
    let h = body["imageGenerationConfig"]["height"].as_u64().unwrap();
    assert!(
        w > h && w.is_multiple_of(16) && h.is_multiple_of(16) && w * h <= 4_194_304,
        "{w}x{h}"
    );
    let out = env.dir.path().join("export");
    let r = cli(&[
        "campaign",
        "export",
        &id,
        "--out",
        &out.display().to_string(),
        "--json",
    ]);
    assert_eq!(r["images"], 2);
    let saved = std::fs::read_to_string(out.join("campaign.json")).unwrap();
    assert!(!saved.contains("wire-test-secret") && !saved.contains("AKIDWIRETEST"));

    // 9. doctor --probe: region, credential source without the secret, one free call per model.
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(CANVAS_PATH))
            .and(body_json(json!({})))
            .respond_with(aws_error(
                400,
                "ValidationException",
                "Malformed input request: #: required key [taskType] not found",
            ))
            .with_priority(1)
            .mount(&server),
    );
    let d = cli(&["doctor", "--probe", "--json"]);
    let b = &d["bedrock"];
    assert_eq!(b["region"], "us-east-1");
    assert_eq!(b["generator_model"], CANVAS);
    let creds = b["credentials"].as_str().unwrap();
    assert!(
        creds.contains("TEST") && !creds.contains("AKIDWIRE"),
        "{creds}"
    );
    assert_eq!(b["probe"][CANVAS], "OK (reachable, access granted)");
    assert!(!d.to_string().contains("wire-test-secret"));
    let logs = std::fs::read_dir(env.data().join("logs")).unwrap();
    for f in logs.flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap_or_default();
        assert!(
            !text.contains("wire-test-secret"),
            "a secret reached the log"
        );
    }
}
