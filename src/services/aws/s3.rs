//! S3 GetObject for `library import`: the images of a deployment of the original sample.
//! Path-style requests (they work with every endpoint, VPC endpoints and loopback fakes
//! included), signed for service `s3`.
//!
//! Each object is streamed to a temporary file beside its target and renamed into place once
//! complete, so a run killed mid-download leaves no partial image that a later run would take
//! for a fetched one. The size is checked from `Content-Length` before the body is read, and
//! again while reading (a server may not send it).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use tokio::io::AsyncWriteExt;

use crate::config::ImportConfig;
use crate::{Error, Result};

pub struct S3Objects {
    client: aws_sdk_s3::Client,
    rt: Arc<tokio::runtime::Runtime>,
    concurrency: usize,
}

impl S3Objects {
    /// A client of `[import]`, credentials from the AWS default chain (or those given: tests,
    /// programs embedding the library). Nothing is sent until the first fetch.
    pub fn new(
        cfg: &ImportConfig,
        credentials: Option<aws_credential_types::Credentials>,
    ) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("s3-import")
            .build()
            .map_err(|e| Error::Cloud(format!("s3: cannot start its runtime: {e}")))?;
        let sdk = super::load(
            &rt,
            super::Settings {
                region: &cfg.region,
                profile: &cfg.profile,
                endpoint_url: &cfg.s3_endpoint_url,
                retry: RetryConfig::standard(),
                max_attempts: cfg.max_attempts,
                initial_backoff_ms: 200,
                connect_timeout_secs: 10,
                timeout_secs: cfg.timeout_secs,
                credentials,
            },
        );
        if sdk.region().is_none() {
            return Err(Error::Config(
                "reading the images from S3 needs a region: set import.region, AWS_REGION or the profile's region".into(),
            ));
        }
        let conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build();
        Ok(S3Objects {
            client: aws_sdk_s3::Client::from_conf(conf),
            rt: Arc::new(rt),
            concurrency: cfg.concurrency.max(1),
        })
    }
}

/// Why an object could not be had, naming it and the fix.
fn reason<E>(bucket: &str, key: &str, e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("").to_string(),
        _ => String::new(),
    };
    // A 404 of GetObject may come without a body (and so without a code).
    let status = match e {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        _ => None,
    };
    let code = match (code.as_str(), status) {
        ("", Some(404)) => "NoSuchKey".to_string(),
        ("", Some(403)) => "AccessDenied".to_string(),
        _ => code,
    };
    match code.as_str() {
        "NoSuchKey" | "NotFound" => format!(
            "s3://{bucket}/{key} does not exist; check --images and the record's image_s3_uri"
        ),
        "AccessDenied" | "Forbidden" => format!(
            "access to s3://{bucket}/{key} is denied; the credentials need s3:GetObject on it"
        ),
        _ => format!("cannot read s3://{bucket}/{key}: {}", error_text(e)),
    }
}

/// An SDK error with its sources (the service's code and message when it sent them).
fn error_text<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(s) = e {
        let err = s.err();
        return format!(
            "{} {}",
            err.code().unwrap_or("error"),
            err.message().unwrap_or("")
        )
        .trim()
        .to_string();
    }
    crate::services::error_chain(e)
}

async fn fetch_one(
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    path: PathBuf,
    max_bytes: u64,
) -> std::result::Result<(), String> {
    let out = client
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| reason(&bucket, &key, &e))?;
    if let Some(len) = out.content_length()
        && u64::try_from(len).unwrap_or(u64::MAX) > max_bytes
    {
        return Err(format!(
            "s3://{bucket}/{key} is {len} bytes, over library.max_file_bytes ({max_bytes})"
        ));
    }
    let tmp = tmp_path(&path);
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut body = out.body;
    let mut total: u64 = 0;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("reading s3://{bucket}/{key} broke off: {e}"))?
    {
        total = total.saturating_add(chunk.len() as u64);
        if total > max_bytes {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(format!(
                "s3://{bucket}/{key} is over library.max_file_bytes ({max_bytes})"
            ));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    }
    file.sync_all()
        .await
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

impl crate::services::import_source::ObjectSource for S3Objects {
    fn fetch_all(
        &self,
        bucket: &str,
        items: &[(String, PathBuf)],
        max_bytes: u64,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Vec<std::result::Result<(), String>> {
        let calls = items
            .iter()
            .enumerate()
            .map(|(i, (key, path))| {
                let fut = fetch_one(
                    self.client.clone(),
                    bucket.to_string(),
                    key.clone(),
                    path.clone(),
                    max_bytes,
                );
                async move { (i, fut.await) }
            })
            .collect();
        let mut out: Vec<std::result::Result<(), String>> =
            vec![Err("not fetched".into()); items.len()];
        for (i, r) in super::bounded(&self.rt, self.concurrency, calls, progress)
            .into_iter()
            .flatten()
        {
            if let Some(slot) = out.get_mut(i) {
                *slot = r;
            }
        }
        out
    }
}
