//! A fake Amazon S3 on 127.0.0.1 (wiremock) serving GetObject for the real SDK, written from
//! AWS's documentation (nothing recorded from the service): path-style `GET /BUCKET/KEY`
//! (the key percent-encoded), SigV4 with the credential scope `REGION/s3/aws4_request`, the
//! body with `Content-Length`; errors as the S3 REST API documents them, an XML body
//! `<Error><Code>…</Code><Message>…</Message></Error>` with `NoSuchKey` (404), `NoSuchBucket`
//! (404) and `AccessDenied` (403). An unsigned or wrongly scoped request gets `AccessDenied`,
//! as the service would refuse it.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub const REGION: &str = "eu-west-1";

#[derive(Default)]
pub struct State {
    /// (bucket, key) -> bytes
    pub objects: BTreeMap<(String, String), Vec<u8>>,
    /// Keys whose GetObject is refused with AccessDenied.
    pub denied: BTreeSet<String>,
    /// Every answer waits this long (latency of a real call).
    pub delay: Duration,
    /// GetObject requests seen: (bucket, key).
    pub gets: Vec<(String, String)>,
}

pub struct FakeS3 {
    pub rt: tokio::runtime::Runtime,
    pub server: MockServer,
    pub state: Arc<Mutex<State>>,
}

impl FakeS3 {
    pub fn start() -> Self {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let server = rt.block_on(MockServer::start());
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        rt.block_on(
            Mock::given(wiremock::matchers::any())
                .respond_with(move |req: &Request| answer(&s, req))
                .mount(&server),
        );
        FakeS3 { rt, server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.with(|s| {
            s.objects.insert((bucket.into(), key.into()), bytes);
        });
    }

    pub fn gets(&self) -> Vec<(String, String)> {
        self.with(|s| s.gets.clone())
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut g = self.state.lock().expect("fake state");
        f(&mut g)
    }
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/xml")
        .set_body_string(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAKE</RequestId></Error>"
        ))
}

fn signed_for_s3(req: &Request) -> bool {
    req.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.starts_with("AWS4-HMAC-SHA256 ") && a.contains(&format!("/{REGION}/s3/aws4_request"))
        })
}

fn answer(state: &Arc<Mutex<State>>, req: &Request) -> ResponseTemplate {
    let Ok(mut st) = state.lock() else {
        return error(500, "InternalError", "fake state poisoned");
    };
    let delay = st.delay;
    answer_now(&mut st, req).set_delay(delay)
}

fn answer_now(st: &mut State, req: &Request) -> ResponseTemplate {
    if !signed_for_s3(req) {
        return error(
            403,
            "AccessDenied",
            "The request signature does not match (service s3 expected)",
        );
    }
    if req.method.as_str() != "GET" {
        return error(405, "MethodNotAllowed", "Only GetObject is served here");
    }
    let mut parts = req.url.path().trim_start_matches('/').splitn(2, '/');
    let bucket = parts.next().unwrap_or("").to_string();
    let raw_key = parts.next().unwrap_or("");
    let key = percent_encoding::percent_decode_str(raw_key)
        .decode_utf8_lossy()
        .to_string();
    st.gets.push((bucket.clone(), key.clone()));
    if !st.objects.keys().any(|(b, _)| *b == bucket) {
        return error(404, "NoSuchBucket", "The specified bucket does not exist");
    }
    if st.denied.contains(&key) {
        return error(403, "AccessDenied", "Access Denied");
    }
    match st.objects.get(&(bucket, key)) {
        Some(bytes) => ResponseTemplate::new(200)
            .insert_header("content-type", "image/jpeg")
            .insert_header("etag", "\"fake\"")
            .set_body_bytes(bytes.clone()),
        None => error(404, "NoSuchKey", "The specified key does not exist."),
    }
}
