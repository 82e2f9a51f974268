//! Amazon Bedrock through `aws-sdk-bedrockruntime`: one client (region, profile, endpoint
//! override, retries, timeouts from `[bedrock]`), blocking wrappers over the async SDK for the
//! engine's synchronous services, and errors turned into messages that say what to do.
//! Credentials come only from the AWS default chain (environment, shared profile, SSO, IMDS);
//! they are never stored or logged.
pub mod canvas;
pub mod describe;
pub mod nova;
pub mod stability;
pub mod titan;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::primitives::Blob;
use serde_json::Value;

use crate::config::BedrockConfig;
use crate::{Error, Result};

/// A Bedrock runtime client with its own small tokio runtime (the engine is synchronous).
pub struct Bedrock {
    rt: tokio::runtime::Runtime,
    /// At most `bedrock.max_concurrency` calls in flight (ingest workers share the client).
    limit: tokio::sync::Semaphore,
    client: aws_sdk_bedrockruntime::Client,
    sdk: aws_config::SdkConfig,
    region: String,
}

impl Bedrock {
    /// Builds the client from `[bedrock]`. Nothing is sent until the first call.
    pub fn new(cfg: &BedrockConfig) -> Result<Self> {
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
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                retry
                    .with_max_attempts(cfg.max_attempts)
                    .with_initial_backoff(Duration::from_millis(cfg.initial_backoff_ms))
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
                    .read_timeout(Duration::from_secs(cfg.timeout_secs))
                    .operation_attempt_timeout(Duration::from_secs(cfg.timeout_secs))
                    .build(),
            );
        if !cfg.region.is_empty() {
            loader = loader.region(aws_config::Region::new(cfg.region.clone()));
        }
        if !cfg.profile.is_empty() {
            loader = loader.profile_name(&cfg.profile);
        }
        if !cfg.endpoint_url.is_empty() {
            loader = loader.endpoint_url(&cfg.endpoint_url);
        }
        let sdk = rt.block_on(loader.load());
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::Cloud(
                "bedrock: no AWS region: set bedrock.region in the config, or AWS_REGION".into(),
            )
        })?;
        let client = aws_sdk_bedrockruntime::Client::new(&sdk);
        Ok(Bedrock {
            rt,
            limit: tokio::sync::Semaphore::new(cfg.max_concurrency.max(1)),
            client,
            sdk,
            region,
        })
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

    /// A call that costs nothing: an empty body. "Malformed input" means the model is reachable
    /// and access is granted; any other error is the problem, as the user would meet it.
    pub fn probe(&self, model: &str) -> std::result::Result<String, String> {
        match self.invoke_json(model, &serde_json::json!({})) {
            Ok(_) => Ok("OK".into()),
            Err(Error::Cloud(m)) if m.contains("refused as invalid") => {
                Ok("OK (reachable, access granted)".into())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Runs one call on the client's runtime, within the concurrency limit.
    pub(crate) fn run<F: std::future::Future>(&self, call: F) -> F::Output {
        self.rt.block_on(async {
            let _permit = self.limit.acquire().await;
            call.await
        })
    }

    /// InvokeModel with a JSON body; returns the JSON answer.
    pub fn invoke_json(&self, model: &str, body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        tracing::info!(model, bytes = bytes.len(), "bedrock invoke");
        let out = self
            .run(
                self.client
                    .invoke_model()
                    .model_id(model)
                    .content_type("application/json")
                    .accept("application/json")
                    .body(Blob::new(bytes))
                    .send(),
            )
            .map_err(|e| self.error(model, e))?;
        serde_json::from_slice(out.body().as_ref()).map_err(|e| {
            Error::Cloud(format!(
                "{model}: the answer is not the JSON the model documents: {e}"
            ))
        })
    }

    /// Turns an SDK error into a message that names the model and what to do.
    pub fn error<E, R>(&self, model: &str, e: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let region = &self.region;
        let msg = match &e {
            SdkError::ServiceError(se) => {
                let err = se.err();
                let code = err.code().unwrap_or("error");
                let text = err.message().unwrap_or("").to_string();
                describe(model, region, code, &text)
            }
            SdkError::TimeoutError(_) => format!(
                "{model}: no answer within bedrock.timeout_secs; the model may be busy, try again or raise the timeout"
            ),
            SdkError::DispatchFailure(d) => format!(
                "{model}: could not reach Bedrock in {region} ({}); check the network, the region and bedrock.endpoint_url",
                d.as_connector_error()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "connection failed".into())
            ),
            other => {
                // The SDK's own text is terse ("response error"); its sources say what.
                let mut text = other.to_string();
                let mut src = std::error::Error::source(other);
                while let Some(s) = src {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    src = s.source();
                }
                format!("{model}: {text}")
            }
        };
        tracing::warn!(model, error = %msg, "bedrock call failed");
        Error::Cloud(msg)
    }
}

/// The user-facing message for a Bedrock error code.
pub fn describe(model: &str, region: &str, code: &str, text: &str) -> String {
    let lower = text.to_lowercase();
    match code {
        "AccessDeniedException" => format!(
            "{model}: access denied in {region}. Enable access to this model in the Bedrock console for {region} (Model access), and allow bedrock:InvokeModel for it in IAM. ({text})"
        ),
        "ThrottlingException" | "ServiceQuotaExceededException" => format!(
            "{model}: Bedrock is throttling requests in {region} and the retries ran out; wait a moment, or ask for a higher quota. ({text})"
        ),
        "ValidationException" if lower.contains("content filter") || lower.contains("blocked") => {
            format!(
                "{model}: the request was blocked by the model's content filter. Change the prompt (or the references) and try again. ({text})"
            )
        }
        "ValidationException" => format!("{model}: the request was refused as invalid: {text}"),
        "ResourceNotFoundException" => format!(
            "{model}: no such model in {region}; check the model id in [bedrock.models] and that the model is offered in {region}. ({text})"
        ),
        "ModelTimeoutException" => format!("{model}: the model timed out; try again. ({text})"),
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
    let img = image::load_from_memory(bytes)
        .map_err(|e| Error::Cloud(format!("{model}: unreadable image in the answer: {e}")))?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| Error::Cloud(format!("{model}: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_to_do() {
        let m = describe(
            "amazon.nova-canvas-v1:0",
            "eu-west-1",
            "AccessDeniedException",
            "You don't have access to the model",
        );
        assert!(m.contains("Model access") && m.contains("eu-west-1"), "{m}");
        let m = describe(
            "amazon.nova-canvas-v1:0",
            "us-east-1",
            "ValidationException",
            "This request has been blocked by our content filters.",
        );
        assert!(m.contains("content filter"), "{m}");
        let m = describe(
            "m",
            "r",
            "ValidationException",
            "imageGenerationConfig.width: must be a multiple of 16",
        );
        assert!(m.contains("imageGenerationConfig.width"), "{m}");
    }
}
