//! Amazon Bedrock through `aws-sdk-bedrockruntime`: one client (default region, profile,
//! endpoint override, retries, timeouts from `[bedrock]`; a per-call region override for models
//! configured in another region), blocking wrappers over the async SDK for the engine's
//! synchronous services, errors turned into messages that say what to do (which id or region
//! to use when Bedrock refuses one), and every paid call recorded in the meter. Credentials
//! come only from the AWS default chain (environment, shared profile, SSO, IMDS); they are
//! never stored or logged.
pub mod canvas;
pub mod describe;
pub mod nova;
pub mod nova_embed;
pub mod stability;
pub mod titan;

use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use serde_json::Value;

use crate::config::{BedrockConfig, ModelRef};
use crate::domain::ModelCall;
use crate::services::aws;
use crate::services::meter::Meter;
use crate::{Error, Result};

pub use crate::domain::bedrock_catalog as catalog;
pub use catalog::{Family, KnownModel};

/// The region the defaults work in together, used when neither `bedrock.region`, AWS_REGION
/// nor the profile names one (README, config/default.toml).
pub const DEFAULT_REGION: &str = "us-east-1";

/// A model as one job calls it: the id sent, its base model, the region of the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The `[bedrock.models]` key it came from (named in error messages).
    pub key: &'static str,
    /// What is sent as `modelId`.
    pub id: String,
    /// The base model (prices, capabilities).
    pub base: String,
    pub region: String,
    pub known: &'static KnownModel,
}

impl Route {
    pub fn family(&self) -> Family {
        self.known.family
    }
}

/// Checks one `[bedrock.models]` entry (see `catalog::check_model`).
pub fn check_model(
    key: &'static str,
    r: &ModelRef,
) -> std::result::Result<&'static KnownModel, String> {
    catalog::check_model(key, &r.id, &r.region, &r.base)
}

/// A Bedrock runtime client with its own small tokio runtime (the engine is synchronous).
/// One client serves every region: a call to a model configured in another region overrides
/// the region for that call (endpoint and signature).
pub struct Bedrock {
    rt: tokio::runtime::Runtime,
    /// At most `bedrock.max_concurrency` calls in flight (ingest workers share the client).
    limit: tokio::sync::Semaphore,
    client: aws_sdk_bedrockruntime::Client,
    sdk: aws_config::SdkConfig,
    region: String,
    meter: Arc<Meter>,
}

impl Bedrock {
    /// Builds the client from `[bedrock]`, with credentials from the AWS default chain.
    /// Nothing is sent until the first call.
    pub fn new(cfg: &BedrockConfig, meter: Arc<Meter>) -> Result<Self> {
        Self::build(cfg, meter, None)
    }

    /// As `new`, with the credentials given (tests, and programs embedding the library; the
    /// studio itself only uses the default chain).
    pub fn with_credentials(
        cfg: &BedrockConfig,
        meter: Arc<Meter>,
        credentials: aws_credential_types::Credentials,
    ) -> Result<Self> {
        Self::build(cfg, meter, Some(credentials))
    }

    fn build(
        cfg: &BedrockConfig,
        meter: Arc<Meter>,
        credentials: Option<aws_credential_types::Credentials>,
    ) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("bedrock")
            .build()
            .map_err(|e| Error::Cloud(format!("bedrock: cannot start its runtime: {e}")))?;
        let retry = if cfg.retry_mode == "adaptive" {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        };
        let mut sdk = aws::load(
            &rt,
            aws::Settings {
                region: &cfg.region,
                profile: &cfg.profile,
                endpoint_url: &cfg.endpoint_url,
                retry,
                max_attempts: cfg.max_attempts,
                initial_backoff_ms: cfg.initial_backoff_ms,
                connect_timeout_secs: cfg.connect_timeout_secs,
                timeout_secs: cfg.timeout_secs,
                credentials,
            },
        );
        // No region anywhere (config, AWS_REGION, profile): the one the defaults are set for.
        if sdk.region().is_none() {
            sdk = sdk
                .into_builder()
                .region(aws_config::Region::new(DEFAULT_REGION))
                .build();
        }
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let client = aws_sdk_bedrockruntime::Client::new(&sdk);
        Ok(Bedrock {
            rt,
            limit: tokio::sync::Semaphore::new(cfg.max_concurrency.max(1)),
            client,
            sdk,
            region,
            meter,
        })
    }

    /// The route of one `[bedrock.models]` entry; an entry that cannot work from its region
    /// (a profile-only model by its plain id, another geography's profile) is refused here,
    /// before any call, with the id to use.
    pub fn route(&self, key: &'static str, r: &ModelRef) -> Result<Route> {
        let known = check_model(key, r).map_err(Error::Config)?;
        let id = r.id.trim().to_string();
        let (region, chosen) = catalog::call_region(known, &id, &r.region, &self.region);
        if chosen {
            tracing::info!(model = %id, region = %region, "called where the model is served");
        }
        if let Some(problem) = catalog::route_problem(known, &id, &region, key) {
            return Err(Error::Config(problem));
        }
        Ok(Route {
            key,
            id,
            base: known.base.to_string(),
            region,
            known,
        })
    }

    /// The route of the Bedrock text embedder whose embedder id names `model`: where
    /// `bedrock.models.embeddings` says to call it ("" id: the model itself), which must be
    /// that same model.
    pub fn embedding_route(&self, model: &str, r: &ModelRef) -> Result<Route> {
        let r = if r.id.trim().is_empty() {
            ModelRef {
                id: model.to_string(),
                ..r.clone()
            }
        } else {
            r.clone()
        };
        let route = self.route("embeddings", &r)?;
        if route.base != model {
            return Err(Error::Config(format!(
                "key 'bedrock.models.embeddings': '{}' is {}, but models.text_embedder names {model}; leave embeddings.id empty, or give an inference profile or ARN of {model}",
                route.id, route.known.name
            )));
        }
        Ok(route)
    }

    /// Where the credentials come from ("EnvironmentVariable", "ProfileFile", "IMDSv2", ...) and
    /// the access key id with all but its last 4 characters hidden. Never the secret.
    pub fn credential_source(&self) -> std::result::Result<String, String> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| "no credential provider".to_string())?;
        let creds = self
            .rt
            .block_on(provider.provide_credentials())
            .map_err(|e| format!("no credentials: {e}"))?;
        let id = creds.access_key_id();
        let tail: String = id
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        // `Credentials` has no getter for its provider's name; its Debug output carries it
        // (and redacts the secret), so it is read from there.
        let source = format!("{:?}", creds)
            .split("provider_name: ")
            .nth(1)
            .and_then(|s| s.split([',', ' ', '}']).next())
            .unwrap_or("AWS default chain")
            .trim_matches('"')
            .to_string();
        Ok(format!("{source}, access key …{tail}"))
    }

    /// A call that costs nothing (an empty body), and what its answer means for the route:
    /// "invocable" (Bedrock took the model id and refused only the empty body), "would fail"
    /// (the model is not served this way: retired, needs a profile, not in the region, no
    /// access) or "unreachable".
    pub fn probe(&self, route: &Route) -> Probe {
        let out = self.run_plain(
            self.client
                .invoke_model()
                .model_id(&route.id)
                .content_type("application/json")
                .accept("application/json")
                .body(Blob::new(b"{}".to_vec()))
                .customize()
                .config_override(self.override_for(route))
                .send(),
        );
        let (verdict, detail) = match out {
            Ok(_) => ("invocable", "answered".to_string()),
            Err(SdkError::ServiceError(se)) => {
                let code = se.err().code().unwrap_or("error").to_string();
                let text = se.err().message().unwrap_or("").to_string();
                match refusal(route, &code, &text) {
                    Some(why) => ("would fail", why),
                    None if code == "ValidationException" => (
                        "invocable",
                        "reachable, access granted (the empty test body was refused, as expected)"
                            .to_string(),
                    ),
                    None => ("would fail", describe(route, &code, &text)),
                }
            }
            Err(e) => ("unreachable", self.error(route, e).to_string()),
        };
        Probe {
            key: route.key,
            model: route.id.clone(),
            region: route.region.clone(),
            verdict,
            detail,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The per-call config of a route: its region when it differs from the client's.
    pub(crate) fn override_for(&self, route: &Route) -> aws_sdk_bedrockruntime::config::Builder {
        let mut b = aws_sdk_bedrockruntime::config::Builder::default();
        if route.region != self.region {
            b = b.region(aws_sdk_bedrockruntime::config::Region::new(
                route.region.clone(),
            ));
        }
        b
    }

    /// Records a paid call the moment it returned (see `services::meter`).
    pub(crate) fn record(&self, route: &Route, call: ModelCall) {
        self.meter.record(ModelCall {
            model: route.id.clone(),
            base_model: route.base.clone(),
            region: route.region.clone(),
            ..call
        });
    }

    /// Runs one call on the client's runtime, within the concurrency limit, racing it against
    /// the thread's job token (`services::cancel`): a cancel drops the in-flight call (its
    /// connection is closed) and answers `Error::Cancelled`.
    pub(crate) fn run<F: std::future::Future>(&self, call: F) -> Result<F::Output> {
        let token = crate::services::cancel::current();
        self.rt.block_on(async {
            let work = async {
                let _permit = self.limit.acquire().await;
                call.await
            };
            match token {
                None => Ok(work.await),
                Some(t) => tokio::select! {
                    biased;
                    _ = t.cancelled() => Err(Error::Cancelled),
                    out = work => Ok(out),
                },
            }
        })
    }

    /// `run` without cancellation (the free probe of `doctor`).
    fn run_plain<F: std::future::Future>(&self, call: F) -> F::Output {
        self.rt.block_on(async {
            let _permit = self.limit.acquire().await;
            call.await
        })
    }

    /// InvokeModel with a JSON body; returns the JSON answer and the token counts Bedrock put
    /// in the response headers, if any.
    pub fn invoke_json(&self, route: &Route, body: &Value) -> Result<Invoked> {
        let bytes = serde_json::to_vec(body)?;
        tracing::info!(model = %route.id, region = %route.region, bytes = bytes.len(), "bedrock invoke");
        let headers = TokenHeaders::default();
        let out = self
            .run(
                self.client
                    .invoke_model()
                    .model_id(&route.id)
                    .content_type("application/json")
                    .accept("application/json")
                    .body(Blob::new(bytes))
                    .customize()
                    .config_override(self.override_for(route))
                    .interceptor(headers.clone())
                    .send(),
            )?
            .map_err(|e| self.error(route, e))?;
        let json = serde_json::from_slice(out.body().as_ref()).map_err(|e| {
            Error::Cloud(format!(
                "{}: the answer is not the JSON the model documents: {e}",
                route.id
            ))
        })?;
        let (input_tokens, output_tokens) = headers.get();
        Ok(Invoked {
            json,
            input_tokens,
            output_tokens,
        })
    }

    /// Turns an SDK error into a message that names the model and what to do.
    pub fn error<E, R>(&self, route: &Route, e: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let model = &route.id;
        let region = &route.region;
        let msg = match &e {
            SdkError::ServiceError(se) => {
                let err = se.err();
                let code = err.code().unwrap_or("error");
                let text = err.message().unwrap_or("").to_string();
                describe(route, code, &text)
            }
            SdkError::TimeoutError(_) => format!(
                "{model}: no answer within bedrock.timeout_secs; the model may be busy, try again or raise the timeout"
            ),
            // A read timeout surfaces as a dispatch failure whose connector error is a
            // timeout: the server was reached (or the network is slow), so say the timeout.
            SdkError::DispatchFailure(d)
                if d.as_connector_error().is_some_and(|c| c.is_timeout()) =>
            {
                format!(
                    "{model}: no answer from Bedrock in {region} within the timeout (bedrock.connect_timeout_secs to connect, bedrock.timeout_secs to answer); the model may be busy or the network slow: try again or raise the timeout"
                )
            }
            SdkError::DispatchFailure(d) => format!(
                "{model}: could not reach Bedrock in {region} ({}); check the network, the region and bedrock.endpoint_url",
                d.as_connector_error()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "connection failed".into())
            ),
            // The SDK's own text is terse ("response error"); its sources say what.
            other => format!("{model}: {}", crate::services::error_chain(other)),
        };
        tracing::warn!(model = %model, error = %msg, "bedrock call failed");
        Error::Cloud(msg)
    }
}

/// The Bedrock text embedder an embedder id names ("bedrock/<model>/..."), routed as
/// `[bedrock.models] embeddings` says.
pub fn embedder(
    bedrock: Arc<Bedrock>,
    id: &str,
    models: &crate::config::BedrockModels,
) -> Result<Arc<dyn crate::services::Embedder>> {
    let model = id
        .strip_prefix(titan::PREFIX)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| Error::Config(format!("'{id}' is not a Bedrock embedder id")))?;
    let route = bedrock.embedding_route(model, &models.embeddings)?;
    Ok(match route.family() {
        Family::NovaMultimodalEmbeddings => {
            Arc::new(nova_embed::NovaEmbed::new(bedrock, id, route)?)
        }
        _ => Arc::new(titan::Titan::new(bedrock, id, route)?),
    })
}

/// What `doctor --probe` found for one route.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    pub key: &'static str,
    pub model: String,
    pub region: String,
    /// "invocable", "would fail" or "unreachable".
    pub verdict: &'static str,
    pub detail: String,
}

/// An InvokeModel answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoked {
    pub json: Value,
    /// `x-amzn-bedrock-input-token-count` / `-output-token-count`, when Bedrock sent them.
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
}

/// Reads the token-count headers of an InvokeModel answer.
#[derive(Debug, Clone, Default)]
struct TokenHeaders(Arc<Mutex<(Option<u32>, Option<u32>)>>);

impl TokenHeaders {
    fn get(&self) -> (Option<u32>, Option<u32>) {
        match self.0.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }
}

impl aws_sdk_bedrockruntime::config::Intercept for TokenHeaders {
    fn name(&self) -> &'static str {
        "TokenHeaders"
    }

    fn read_after_transmit(
        &self,
        context: &aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_bedrockruntime::config::RuntimeComponents,
        _cfg: &mut aws_sdk_bedrockruntime::config::ConfigBag,
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let h = context.response().headers();
        let n = |k: &str| h.get(k).and_then(|v| v.trim().parse::<u32>().ok());
        let counts = (
            n("x-amzn-bedrock-input-token-count"),
            n("x-amzn-bedrock-output-token-count"),
        );
        match self.0.lock() {
            Ok(mut g) => *g = counts,
            Err(p) => *p.into_inner() = counts,
        }
        Ok(())
    }
}

/// Why Bedrock will not serve a route as configured, when its answer says so; None when the
/// answer is about something else (the body, throttling, ...).
pub fn refusal(route: &Route, code: &str, text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let (id, region, key, m) = (&route.id, &route.region, route.key, route.known);
    if lower.contains("on-demand throughput") || lower.contains("inference profile") {
        return Some(format!(
            "{id}: Bedrock in {region} serves {} only through an inference profile; {}. ({text})",
            m.name,
            catalog::advice(m, region, key)
        ));
    }
    if lower.contains("provided model identifier is invalid") {
        return Some(format!(
            "{id}: not served in {region} under this id; {}. ({text})",
            catalog::advice(m, region, key)
        ));
    }
    if lower.contains("end of its life") {
        return Some(format!(
            "{id}: {} has reached end-of-life on Bedrock{}; choose another model for bedrock.models.{key}. ({text})",
            m.name,
            m.lifecycle.map(|l| format!(" ({l})")).unwrap_or_default()
        ));
    }
    if code == "ResourceNotFoundException" && lower.contains("legacy") {
        return Some(format!(
            "{id}: {} is a legacy model and this account has lost access to it; choose another model for bedrock.models.{key}. ({text})",
            m.name
        ));
    }
    if code == "AccessDeniedException" {
        return Some(format!(
            "{id}: access denied in {region}. Enable access to {} in the Bedrock console for {region} (Model access), and allow bedrock:InvokeModel for it in IAM. ({text})",
            m.name
        ));
    }
    if code == "ResourceNotFoundException" {
        return Some(format!(
            "{id}: no such model in {region}; {}. ({text})",
            catalog::advice(m, region, key)
        ));
    }
    None
}

/// The user-facing message for a Bedrock error code.
pub fn describe(route: &Route, code: &str, text: &str) -> String {
    if let Some(why) = refusal(route, code, text) {
        return why;
    }
    let model = &route.id;
    let region = &route.region;
    let lower = text.to_lowercase();
    match code {
        "ThrottlingException" | "ServiceQuotaExceededException" => format!(
            "{model}: Bedrock is throttling requests in {region} and the retries ran out; wait a moment, or ask for a higher quota. ({text})"
        ),
        "ValidationException" if lower.contains("content filter") || lower.contains("blocked") => {
            format!(
                "{model}: the request was blocked by the model's content filter. Change the prompt (or the references) and try again. ({text})"
            )
        }
        "ValidationException" => format!("{model}: the request was refused as invalid: {text}"),
        "ModelTimeoutException" => format!("{model}: the model timed out; try again. ({text})"),
        "ModelErrorException" => {
            format!("{model}: the model failed to produce a valid answer; try again. ({text})")
        }
        "ModelNotReadyException" | "ServiceUnavailableException" | "InternalServerException" => {
            format!("{model}: Bedrock is unavailable right now ({code}); try again. ({text})")
        }
        _ => format!("{model}: {code}: {text}"),
    }
}

/// Decodes a base64 image the model returned, naming the model when it is not one.
pub(crate) fn decode_image(model: &str, b64: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| {
            Error::Cloud(format!(
                "{model}: an image in the answer is not base64: {e}"
            ))
        })?;
    image::guess_format(&bytes).map_err(|e| {
        Error::Cloud(format!(
            "{model}: an image in the answer is not an image: {e}"
        ))
    })?;
    Ok(bytes)
}

/// Re-encodes any image as PNG (generated images are stored as PNG).
pub(crate) fn to_png(model: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if image::guess_format(bytes).ok() == Some(image::ImageFormat::Png) {
        return Ok(bytes.to_vec());
    }
    let img = crate::services::local::imaging::decode_limited(
        bytes,
        crate::services::local::imaging::ImageLimits::default(),
    )
    .map_err(|e| Error::Cloud(format!("{model}: unreadable image in the answer: {e}")))?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| Error::Cloud(format!("{model}: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(key: &'static str, id: &str, region: &str) -> Route {
        let known = check_model(key, &ModelRef::new(id)).unwrap();
        Route {
            key,
            id: id.into(),
            base: known.base.into(),
            region: region.into(),
            known,
        }
    }

    #[test]
    fn access_denied_names_the_console_page_and_region() {
        let m = describe(
            &route("canvas", "amazon.nova-canvas-v1:0", "eu-west-1"),
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        );
        assert!(m.contains("Model access") && m.contains("eu-west-1"), "{m}");
    }

    #[test]
    fn content_filter_refusal_says_so() {
        let m = describe(
            &route("canvas", "amazon.nova-canvas-v1:0", "us-east-1"),
            "ValidationException",
            "This request has been blocked by our content filters. Please adjust your text prompt to submit a new request.",
        );
        assert!(m.contains("content filter"), "{m}");
    }

    #[test]
    fn invalid_field_is_named() {
        let m = describe(
            &route("canvas", "amazon.nova-canvas-v1:0", "us-east-1"),
            "ValidationException",
            "imageGenerationConfig.width: must be a multiple of 16",
        );
        assert!(m.contains("imageGenerationConfig.width"), "{m}");
    }

    #[test]
    fn profile_required_names_the_profile_id() {
        let m = describe(
            &route("writer", "amazon.nova-pro-v1:0", "eu-west-3"),
            "ValidationException",
            "Invocation of model ID amazon.nova-pro-v1:0 with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
        );
        assert!(
            m.contains("bedrock.models.writer = \"eu.amazon.nova-pro-v1:0\""),
            "{m}"
        );
    }

    #[test]
    fn wrong_region_names_a_serving_region() {
        let m = describe(
            &route("stability", "stability.stable-image-core-v1:1", "us-east-1"),
            "ValidationException",
            "The provided model identifier is invalid.",
        );
        assert!(m.contains("region = \"us-west-2\""), "{m}");
    }

    #[test]
    fn end_of_life_is_said_with_the_date() {
        let m = describe(
            &route("canvas", "amazon.nova-canvas-v1:0", "us-east-1"),
            "ResourceNotFoundException",
            "This model version has reached the end of its life. Please refer to the AWS documentation for more details.",
        );
        assert!(m.contains("end-of-life") && m.contains("2026-09-30"), "{m}");
    }

    #[test]
    fn unknown_model_for_a_job_is_refused_naming_the_known_ones() {
        let e = check_model("writer", &ModelRef::new("anthropic.claude-v2")).unwrap_err();
        assert!(
            e.contains("bedrock.models.writer") && e.contains("amazon.nova-pro-v1:0"),
            "{e}"
        );
    }

    #[test]
    fn a_model_cannot_fill_another_job() {
        let e = check_model("writer", &ModelRef::new("amazon.nova-canvas-v1:0")).unwrap_err();
        assert!(e.contains("cannot do this job"), "{e}");
    }

    #[test]
    fn application_profile_arn_needs_its_base() {
        let arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/x1";
        let e = check_model("writer", &ModelRef::new(arn)).unwrap_err();
        assert!(e.contains("base = "), "{e}");
        let ok = check_model(
            "writer",
            &ModelRef {
                id: arn.into(),
                region: String::new(),
                base: "amazon.nova-2-lite-v1:0".into(),
            },
        )
        .unwrap();
        assert_eq!(ok.family, Family::Nova2Lite);
    }

    #[test]
    fn a_bad_region_is_refused() {
        let e = check_model(
            "stability",
            &ModelRef {
                id: "stability.stable-image-core-v1:1".into(),
                region: "oregon".into(),
                base: String::new(),
            },
        )
        .unwrap_err();
        assert!(e.contains("bedrock.models.stability.region"), "{e}");
    }
}
