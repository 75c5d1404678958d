//! `ovhform healthcheck`: GET the daemon's `/healthz` (or another of its URLs) and exit 0 on
//! HTTP 200, 1 otherwise — the container image's HEALTHCHECK, which has no curl.
//!
//! Owns: the probe (one GET, a timeout, no proxy, no redirect) and its one-line verdict. Must
//! not touch: the daemon's routes (`daemon/http.rs`) or anything that changes state.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{EXIT_ERROR, EXIT_OK};
use crate::escape;

/// Where the Dockerfile's default command serves: `run --listen 0.0.0.0:9090` answers on the
/// container's loopback too.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9090/healthz";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to GET: the daemon's /healthz, or /readyz to wait for its first pass. Plain
    /// HTTP only, as the daemon serves it.
    #[arg(
        long,
        value_name = "URL",
        env = "OVHFORM_HEALTHCHECK_URL",
        default_value = DEFAULT_URL,
        value_parser = parse_url
    )]
    pub url: reqwest::Url,
    /// Give up after this long (connecting and answering together).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The daemon's bearer token (/readyz, /metrics and /status need it when the daemon has
    /// one). Sent only to a loopback address: never in clear text across a network.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "OVHFORM_HTTP_TOKEN",
        hide_env_values = true
    )]
    pub http_token: Option<String>,
}

/// Why a probe failed. The URL is the operator's own; a response body is never quoted.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not answer within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

fn parse_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "the daemon serves plain HTTP: use http://, not {}://",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err("the URL names no host".into());
    }
    Ok(url)
}

/// A host that cannot be another machine: 127.0.0.0/8, ::1, or `localhost`.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // An IPv6 host keeps its brackets in the URL's text.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// One GET: Ok for 200 only. No proxy (a loopback probe through `HTTP_PROXY` would test the
/// proxy) and no redirect (a 3xx is not healthy).
pub async fn probe(
    url: &reqwest::Url,
    timeout: Duration,
    token: Option<&str>,
) -> Result<(), ProbeError> {
    let shown = url.to_string();
    // reqwest is built with `rustls-no-provider` and panics building any client, even a
    // plain-HTTP one, without a process-wide provider: ring, as the API client does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("ovhform-healthcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProbeError::Unreachable {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
    let mut request = client.get(url.clone());
    if let Some(token) = token.filter(|_| is_loopback(url)) {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            ProbeError::Timeout {
                url: shown.clone(),
                timeout,
            }
        } else {
            ProbeError::Unreachable {
                url: shown.clone(),
                reason: root_cause(&e),
            }
        }
    })?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(ProbeError::Status { url: shown, status }),
    }
}

/// reqwest's messages repeat the URL at every level ("error sending request for url (…)"):
/// the innermost cause (connection refused, no route to host…) is what an operator needs.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    // A one-shot GET: a single-threaded runtime starts faster and uses less memory than the
    // daemon's, which matters for a probe run every 30 s.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    let outcome = rt.block_on(probe(&args.url, args.timeout, args.http_token.as_deref()));
    Ok(match outcome {
        Ok(()) => {
            println!(
                "healthy: {} answered HTTP 200",
                escape::line(args.url.as_str())
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("unhealthy: {}", escape::line(&e.to_string()));
            ExitCode::from(EXIT_ERROR)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_with_a_host_are_accepted() {
        assert!(parse_url(DEFAULT_URL).is_ok());
        let https = parse_url("https://127.0.0.1:9090/healthz").unwrap_err();
        assert!(https.contains("plain HTTP"), "{https}");
        assert!(parse_url("127.0.0.1:9090").is_err());
        assert!(parse_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn the_token_goes_only_to_loopback_hosts() {
        let url = |s: &str| parse_url(s).unwrap();
        assert!(is_loopback(&url("http://127.0.0.1:9090/readyz")));
        assert!(is_loopback(&url("http://127.3.2.1/readyz")));
        assert!(is_loopback(&url("http://[::1]:9090/readyz")));
        assert!(is_loopback(&url("http://LOCALHOST:9090/readyz")));
        assert!(!is_loopback(&url("http://10.0.0.5:9090/readyz")));
        assert!(!is_loopback(&url("http://[::ffff:10.0.0.5]:9090/readyz")));
        assert!(!is_loopback(&url("http://localhost.example.com/readyz")));
    }
}
