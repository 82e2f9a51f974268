//! What the AWS clients share: the SDK configuration built from our settings (retries,
//! timeouts, region, profile, endpoint, optional fixed credentials) and the conversions
//! between the SDK's `Document` and JSON. Bedrock, S3 Vectors and the S3 reads of an import
//! each keep their own runtime and client; only how they are configured lives here.
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

pub mod doc;
pub mod s3;

/// Everything the SDK configuration is built from. Empty strings mean "from the environment"
/// (AWS_REGION, AWS_PROFILE, the default endpoint).
pub struct Settings<'a> {
    pub region: &'a str,
    pub profile: &'a str,
    pub endpoint_url: &'a str,
    /// Standard or adaptive retries; attempts and first backoff are set from the fields below.
    pub retry: RetryConfig,
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub connect_timeout_secs: u64,
    pub timeout_secs: u64,
    /// Fixed credentials (tests, programs embedding the library); None: the default chain.
    pub credentials: Option<aws_credential_types::Credentials>,
}

/// Loads the SDK configuration on `rt` (the default chain reads profiles and may ask the
/// instance metadata service, which is why it runs on the client's own runtime).
pub fn load(rt: &tokio::runtime::Runtime, s: Settings<'_>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            s.retry
                .with_max_attempts(s.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(s.initial_backoff_ms))
                .with_max_backoff(Duration::from_secs(20)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(s.connect_timeout_secs))
                .read_timeout(Duration::from_secs(s.timeout_secs))
                .operation_attempt_timeout(Duration::from_secs(s.timeout_secs))
                .build(),
        );
    if !s.region.is_empty() {
        loader = loader.region(aws_config::Region::new(s.region.to_string()));
    }
    if !s.profile.is_empty() {
        loader = loader.profile_name(s.profile);
    }
    if !s.endpoint_url.is_empty() {
        loader = loader.endpoint_url(s.endpoint_url);
    }
    if let Some(c) = s.credentials {
        loader = loader.credentials_provider(c);
    }
    rt.block_on(loader.load())
}

/// Runs `futures` on `rt`, at most `limit` at once (a future starts only once it holds a
/// permit), calling `done` with the number finished after each; the results in completion
/// order, a task that failed to run as its error's text. S3 Vectors' batch calls and the S3
/// reads of an import share it.
pub fn bounded<T, Fut>(
    rt: &tokio::runtime::Runtime,
    limit: usize,
    futures: Vec<Fut>,
    mut done: impl FnMut(usize),
) -> Vec<Result<T, String>>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for fut in futures {
            let permits = permits.clone();
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                fut.await
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.map_err(|e| e.to_string()));
            done(out.len());
        }
        out
    })
}
