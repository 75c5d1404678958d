//! Endpoints and credentials, resolved exactly as the official clients do (REFERENCE §6.1,
//! §6.4, §6.5): per key, explicit value > `OVH_<KEY>` environment variable > `ovh.conf` files
//! (`./ovh.conf` > `~/.ovh.conf` > `/etc/ovh.conf`, key by key, section = endpoint). The
//! process environment and file paths are injected through [`ConfigSources`] so that tests
//! never depend on the real HOME or environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Error;

/// Known endpoint names: (name, API base URL, OAuth2 token URL when OAuth2 is supported).
pub const ENDPOINT_NAMES: &[(&str, &str, Option<&str>)] = &[
    (
        "ovh-eu",
        "https://eu.api.ovh.com/1.0",
        Some("https://www.ovh.com/auth/oauth2/token"),
    ),
    (
        "ovh-ca",
        "https://ca.api.ovh.com/1.0",
        Some("https://ca.ovh.com/auth/oauth2/token"),
    ),
    (
        "ovh-us",
        "https://api.us.ovhcloud.com/1.0",
        Some("https://us.ovhcloud.com/auth/oauth2/token"),
    ),
    ("kimsufi-eu", "https://eu.api.kimsufi.com/1.0", None),
    ("kimsufi-ca", "https://ca.api.kimsufi.com/1.0", None),
    ("soyoustart-eu", "https://eu.api.soyoustart.com/1.0", None),
    ("soyoustart-ca", "https://ca.api.soyoustart.com/1.0", None),
];

/// A resolved API endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// What the user wrote (a region name or a URL); also the `ovh.conf` section name.
    pub name: String,
    /// Base URL without trailing slash, e.g. `https://eu.api.ovh.com/1.0`.
    pub base_url: String,
    /// Where OAuth2 client-credentials tokens come from; `None` when the endpoint has no OAuth2.
    pub token_url: Option<String>,
}

impl Endpoint {
    /// A region name or a full `http(s)://` base URL. For a URL on a known OVHcloud API host
    /// (`eu.api.ovh.com`, `ca.api.ovh.com`, `api.us.ovhcloud.com`, the kimsufi and soyoustart
    /// hosts), OAuth2 is what that region's name gives (see [`known_host_token_url`]); for any
    /// other URL the token URL is `<scheme>://<host:port>/auth/oauth2/token` (how the
    /// simulator serves it).
    pub fn parse(value: &str) -> Result<Endpoint, Error> {
        let value = value.trim();
        if let Some((name, base, token)) = ENDPOINT_NAMES.iter().find(|(n, _, _)| *n == value) {
            return Ok(Endpoint {
                name: (*name).to_string(),
                base_url: (*base).to_string(),
                token_url: token.map(str::to_string),
            });
        }
        if value.starts_with("http://") || value.starts_with("https://") {
            let url = reqwest::Url::parse(value).map_err(|e| Error::Config {
                message: format!("endpoint `{value}` is not a valid URL: {e}"),
                hint: "use e.g. `http://127.0.0.1:8080/1.0` or a region name".into(),
            })?;
            if url.query().is_some() || url.fragment().is_some() {
                return Err(Error::Config {
                    message: format!("endpoint `{value}` must not carry a query or fragment"),
                    hint: "give the API base URL only, e.g. `http://127.0.0.1:8080/1.0`".into(),
                });
            }
            let token_url = match known_host_token_url(&url) {
                Some(known) => known.map(str::to_string),
                None => Some(format!(
                    "{}/auth/oauth2/token",
                    url.origin().ascii_serialization()
                )),
            };
            return Ok(Endpoint {
                name: value.to_string(),
                base_url: value.trim_end_matches('/').to_string(),
                token_url,
            });
        }
        let names: Vec<&str> = ENDPOINT_NAMES.iter().map(|(n, _, _)| *n).collect();
        Err(Error::Config {
            message: format!("unknown endpoint `{value}`"),
            hint: format!(
                "use one of {} or a full base URL such as http://127.0.0.1:8080/1.0",
                names.join(", ")
            ),
        })
    }

    /// The full URL of an API path. Like go-ovh/python-ovh, a path starting with `/v1` or
    /// `/v2` replaces the trailing `/1.0` of the base URL (`/v2/iam/resource` →
    /// `https://eu.api.ovh.com/v2/iam/resource`).
    pub fn target(&self, path: &str) -> String {
        let base = self.base_url.as_str();
        if (path.starts_with("/v1") || path.starts_with("/v2")) && base.ends_with("/1.0") {
            format!("{}{}", &base[..base.len() - 4], path)
        } else {
            format!("{base}{path}")
        }
    }

    /// True when the API is on this machine: a URL whose host is in 127.0.0.0/8, `::1` (or
    /// an IPv4-mapped loopback) or `localhost`. Such an endpoint is a simulator or a test
    /// fake, never OVHcloud, so OVH's fair-use limit does not apply to it.
    pub fn is_loopback(&self) -> bool {
        let Ok(url) = reqwest::Url::parse(&self.base_url) else {
            return false;
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
            Ok(std::net::IpAddr::V6(ip)) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Err(_) => host.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        }
    }
}

/// The OAuth2 token URL of a URL endpoint whose host is one of OVHcloud's API hosts:
/// `Some(region's token URL)` (`None` inside when that host has no OAuth2: kimsufi,
/// soyoustart), or `None` when the host is not OVHcloud's.
///
/// Why: tokens for `https://eu.api.ovh.com/1.0` come from `https://www.ovh.com/auth/oauth2/token`,
/// not from the API host itself, so `<origin>/auth/oauth2/token` would ask a URL that does not
/// issue tokens. go-ovh keys its token URLs by the API base URL (`tokensURLs[OvhEU]` …); the
/// match here is by host (scheme `https`, default port), so `https://eu.api.ovh.com/v1` or a
/// trailing slash find the region too. The table is [`ENDPOINT_NAMES`], the one source of both.
fn known_host_token_url(url: &reqwest::Url) -> Option<Option<&'static str>> {
    if url.scheme() != "https" || url.port().is_some() {
        return None;
    }
    let host = url.host_str()?.trim_end_matches('.');
    ENDPOINT_NAMES.iter().find_map(|(_, base, token)| {
        let known = reqwest::Url::parse(base).ok()?;
        known
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(host))
            .then_some(*token)
    })
}

/// A secret string: shown as `<redacted>` in `Debug`, has no `Display`. Read it with
/// [`Secret::expose`] only where it is used (signing, the token request).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How requests are authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Application key/secret + consumer key: every request signed (REFERENCE §6.2).
    ApplicationKey {
        application_key: String,
        application_secret: Secret,
        consumer_key: Secret,
    },
    /// OAuth2 client credentials: `Authorization: Bearer`, token refreshed on expiry (§6.4).
    OAuth2 {
        client_id: String,
        client_secret: Secret,
        token_url: String,
    },
    /// None: only unauthenticated calls (`/auth/time`, the catalogue), for `ovhform doctor`
    /// checking an endpoint before credentials are set up. An authenticated call fails with
    /// [`Error::Config`] before anything is sent.
    None,
}

/// Which API starts an OS installation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InstallApi {
    /// `POST /dedicated/server/{sn}/reinstall` (current API).
    #[default]
    Reinstall,
    /// `POST /dedicated/server/{sn}/install/start` (ended on ovh-eu on 2025-10-07).
    Legacy,
}

/// Values given explicitly (command-line flags); `None` = not given. Secrets redacted in Debug.
#[derive(Clone, Default)]
pub struct ConfigInput {
    pub endpoint: Option<String>,
    pub application_key: Option<String>,
    pub application_secret: Option<String>,
    pub consumer_key: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl fmt::Debug for ConfigInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConfigInput")
            .field("endpoint", &self.endpoint)
            .field("application_key", &self.application_key)
            .field("application_secret", &r(&self.application_secret))
            .field("consumer_key", &r(&self.consumer_key))
            .field("client_id", &self.client_id)
            .field("client_secret", &r(&self.client_secret))
            .finish()
    }
}

/// Where configuration is read from besides explicit values: environment variables and
/// `ovh.conf` files in INCREASING priority (`/etc/ovh.conf`, `~/.ovh.conf`, `./ovh.conf`).
#[derive(Clone, Default)]
pub struct ConfigSources {
    pub env: BTreeMap<String, String>,
    pub files: Vec<PathBuf>,
}

impl fmt::Debug for ConfigSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Env values may be secrets: only the names are shown.
        f.debug_struct("ConfigSources")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("files", &self.files)
            .finish()
    }
}

impl ConfigSources {
    /// The process's `OVH_*` variables and the standard file locations.
    pub fn from_process() -> ConfigSources {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("OVH_"))
            .collect();
        let mut files = vec![PathBuf::from("/etc/ovh.conf")];
        if let Some(home) = std::env::var_os("HOME") {
            files.push(Path::new(&home).join(".ovh.conf"));
        }
        files.push(PathBuf::from("ovh.conf"));
        ConfigSources { env, files }
    }
}

/// Everything a [`super::Client`] needs. Build with [`ClientConfig::resolve`] (or
/// [`ClientConfig::new`] in tests), then adjust the tuning fields.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    /// Client-side budget; 0 = unlimited (tests). The real API's fair use is ~60/min per key.
    pub requests_per_minute: u32,
    /// The period `requests_per_minute` counts over: a minute, except against a simulator
    /// whose clock runs faster (a minute of its clock), so the budget's rate, burst and window
    /// keep their shape in its time.
    pub budget_period: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Timeout of every single HTTP request (connect + response).
    pub timeout: Duration,
    pub install_api: InstallApi,
    /// How long catalog answers (templates, compatibleTemplates) and hardware facts are reused.
    pub cache_ttl: Duration,
    /// `X-Pagination-Size` of expanded listings.
    pub page_size: u32,
    /// Ids per batch GET (the OVH console uses chunks of 50).
    pub batch_size: usize,
    /// Retries of safe calls (GET) after the first attempt.
    pub max_retries: usize,
    pub retry_min_delay: Duration,
    pub retry_max_delay: Duration,
}

impl ClientConfig {
    /// The budget as a rate, in requests per second of real time (0: unlimited).
    pub fn requests_per_second(&self) -> f64 {
        let period = self.budget_period.as_secs_f64();
        if period > 0.0 {
            f64::from(self.requests_per_minute) / period
        } else {
            0.0
        }
    }

    /// Defaults for everything but the endpoint and the credentials.
    pub fn new(endpoint: Endpoint, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            endpoint,
            credentials,
            requests_per_minute: 60,
            budget_period: Duration::from_secs(60),
            concurrency: 8,
            timeout: Duration::from_secs(60),
            install_api: InstallApi::Reinstall,
            cache_ttl: Duration::from_secs(3600),
            page_size: 500,
            batch_size: 50,
            max_retries: 4,
            retry_min_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(30),
        }
    }

    /// Resolve endpoint and credentials: explicit > env `OVH_*` > `ovh.conf` files.
    pub fn resolve(input: &ConfigInput, sources: &ConfigSources) -> Result<ClientConfig, Error> {
        let files = load_files(&sources.files)?;
        let lookup = |explicit: &Option<String>,
                      flag: &str,
                      section: &str,
                      key: &str|
         -> Option<(String, String)> {
            if let Some(v) = explicit.as_ref().filter(|v| !v.is_empty()) {
                return Some((v.clone(), format!("--{flag}")));
            }
            let var = format!("OVH_{}", key.to_ascii_uppercase());
            if let Some(v) = sources.env.get(&var).filter(|v| !v.is_empty()) {
                return Some((v.clone(), var));
            }
            // Highest-priority file first: later files in `sources.files` override earlier ones.
            files.iter().rev().find_map(|(path, ini)| {
                ini.section(Some(section))
                    .and_then(|s| s.get(key))
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        (
                            v.to_string(),
                            format!("{} [{section}] {key}", path.display()),
                        )
                    })
            })
        };
        let endpoint = endpoint_from(&lookup(&input.endpoint, "endpoint", "default", "endpoint"))?;
        let section = endpoint.name.clone();
        let ak = lookup(
            &input.application_key,
            "application-key",
            &section,
            "application_key",
        );
        let as_ = lookup(
            &input.application_secret,
            "application-secret",
            &section,
            "application_secret",
        );
        let ck = lookup(
            &input.consumer_key,
            "consumer-key",
            &section,
            "consumer_key",
        );
        let id = lookup(&input.client_id, "client-id", &section, "client_id");
        let cs = lookup(
            &input.client_secret,
            "client-secret",
            &section,
            "client_secret",
        );

        let app_method = [&ak, &as_, &ck]
            .iter()
            .find_map(|o| o.as_ref().map(|(_, src)| src.clone()));
        let oauth_method = [&id, &cs]
            .iter()
            .find_map(|o| o.as_ref().map(|(_, src)| src.clone()));
        if let (Some(a), Some(o)) = (&app_method, &oauth_method) {
            return Err(Error::Config {
                message: format!(
                    "can't use multiple authentication methods: application key credentials (from {a}) and OAuth2 client credentials (from {o})"
                ),
                hint: "keep either application_key/application_secret/consumer_key or client_id/client_secret".into(),
            });
        }
        if oauth_method.is_some() {
            let (Some((client_id, _)), Some((secret, _))) = (id.clone(), cs) else {
                let missing = if id.is_none() {
                    "client_id"
                } else {
                    "client_secret"
                };
                return Err(Error::Config {
                    message: format!("OAuth2 {missing} is missing for endpoint `{section}`"),
                    hint: "both client_id and client_secret must be given (OVH_CLIENT_ID / OVH_CLIENT_SECRET)".into(),
                });
            };
            let Some(token_url) = endpoint.token_url.clone() else {
                return Err(Error::Config {
                    message: format!(
                        "OAuth2 authentication is not available on endpoint `{section}`"
                    ),
                    hint:
                        "use ovh-eu, ovh-ca, ovh-us or a full URL, or application key credentials"
                            .into(),
                });
            };
            return Ok(ClientConfig::new(
                endpoint,
                Credentials::OAuth2 {
                    client_id,
                    client_secret: Secret::new(secret),
                    token_url,
                },
            ));
        }
        match (ak, as_, ck) {
            (Some((ak, _)), Some((as_, _)), Some((ck, _))) => Ok(ClientConfig::new(
                endpoint,
                Credentials::ApplicationKey {
                    application_key: ak,
                    application_secret: Secret::new(as_),
                    consumer_key: Secret::new(ck),
                },
            )),
            (Some(_), None, _) | (None, Some(_), _) => Err(Error::Config {
                message: format!("application key and application secret must be given together (endpoint `{section}`)"),
                hint: "set both OVH_APPLICATION_KEY and OVH_APPLICATION_SECRET (or both keys in ovh.conf)".into(),
            }),
            (Some(_), Some(_), None) => Err(Error::Config {
                message: format!("consumer key is missing for endpoint `{section}`"),
                hint: "create one (e.g. https://eu.api.ovh.com/createToken/) and set OVH_CONSUMER_KEY or consumer_key in ovh.conf".into(),
            }),
            _ => Err(Error::Config {
                message: format!("no OVHcloud credentials found for endpoint `{section}`"),
                hint: "set OVH_APPLICATION_KEY/OVH_APPLICATION_SECRET/OVH_CONSUMER_KEY or OVH_CLIENT_ID/OVH_CLIENT_SECRET, or write them in ./ovh.conf, ~/.ovh.conf or /etc/ovh.conf under [<endpoint>]".into(),
            }),
        }
    }
}

/// The endpoint a lookup found (`ovh-eu` when none).
fn endpoint_from(found: &Option<(String, String)>) -> Result<Endpoint, Error> {
    Endpoint::parse(found.as_ref().map_or("ovh-eu", |(v, _)| v.as_str()))
}

impl ClientConfig {
    /// The endpoint alone, resolved as [`ClientConfig::resolve`] does (explicit >
    /// `OVH_ENDPOINT` > `[default] endpoint` of the files > `ovh-eu`), whatever the state of
    /// the credentials: what `ovhform doctor` probes when they are missing or broken.
    pub fn resolve_endpoint(
        input: &ConfigInput,
        sources: &ConfigSources,
    ) -> Result<Endpoint, Error> {
        if let Some(v) = input.endpoint.as_ref().filter(|v| !v.is_empty()) {
            return Endpoint::parse(v);
        }
        if let Some(v) = sources.env.get("OVH_ENDPOINT").filter(|v| !v.is_empty()) {
            return Endpoint::parse(v);
        }
        let files = load_files(&sources.files)?;
        let from_files = files.iter().rev().find_map(|(_, ini)| {
            ini.section(Some("default"))
                .and_then(|s| s.get("endpoint"))
                .filter(|v| !v.is_empty())
                .map(|v| (v.to_string(), String::new()))
        });
        endpoint_from(&from_files)
    }
}

/// Parse the files that exist, keeping their order (lowest priority first).
fn load_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, ini::Ini)>, Error> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_file() {
            continue;
        }
        let ini = ini::Ini::load_from_file(path).map_err(|e| Error::Config {
            message: format!("cannot read {}: {e}", path.display()),
            hint: "ovh.conf is an INI file: `[default]` with `endpoint=`, then one `[<endpoint>]` section with the keys".into(),
        })?;
        out.push((path.clone(), ini));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        for url in [
            "http://127.0.0.1:8080/1.0",
            "http://127.10.20.30/1.0",
            "http://[::1]:8080/1.0",
            "http://[::ffff:127.0.0.1]:8080/1.0",
            "http://localhost:8080/1.0",
            "https://LOCALHOST./1.0",
        ] {
            assert!(Endpoint::parse(url).unwrap().is_loopback(), "{url}");
        }
        for name in [
            "ovh-eu",
            "kimsufi-ca",
            "http://10.0.0.1:8080/1.0",
            "http://[::2]/1.0",
            "http://localhost.example.net/1.0",
            "http://127.0.0.1.nip.io/1.0",
        ] {
            assert!(!Endpoint::parse(name).unwrap().is_loopback(), "{name}");
        }
    }

    #[test]
    fn endpoint_names_and_urls() {
        let eu = Endpoint::parse("ovh-eu").unwrap();
        assert_eq!(
            eu.target("/dedicated/server"),
            "https://eu.api.ovh.com/1.0/dedicated/server"
        );
        assert_eq!(
            eu.target("/v2/iam/resource"),
            "https://eu.api.ovh.com/v2/iam/resource"
        );
        assert_eq!(
            eu.token_url.as_deref(),
            Some("https://www.ovh.com/auth/oauth2/token")
        );
        assert_eq!(Endpoint::parse("kimsufi-ca").unwrap().token_url, None);
        let sim = Endpoint::parse("http://127.0.0.1:8080/1.0/").unwrap();
        assert_eq!(sim.base_url, "http://127.0.0.1:8080/1.0");
        assert_eq!(
            sim.target("/v2/iam/resource/x"),
            "http://127.0.0.1:8080/v2/iam/resource/x"
        );
        assert_eq!(
            sim.token_url.as_deref(),
            Some("http://127.0.0.1:8080/auth/oauth2/token")
        );
        let err = Endpoint::parse("ovh-moon").unwrap_err().to_string();
        assert!(
            err.contains("unknown endpoint `ovh-moon`") && err.contains("ovh-eu"),
            "{err}"
        );
    }

    /// OAuth2 for a URL endpoint on a known OVHcloud API host asks that region's token URL,
    /// as go-ovh does for its base URLs; other URLs (the simulator, a proxy) keep
    /// `<origin>/auth/oauth2/token`.
    #[test]
    fn url_endpoints_on_ovh_hosts_use_the_regions_token_url() {
        let token = |v: &str| Endpoint::parse(v).unwrap().token_url;
        for (name, base, expected) in ENDPOINT_NAMES {
            assert_eq!(
                token(base).as_deref(),
                *expected,
                "{name}: its base URL given as a URL"
            );
            assert_eq!(token(base), token(name), "{name}: URL and name agree");
        }
        assert_eq!(
            token("https://eu.api.ovh.com/v1/").as_deref(),
            Some("https://www.ovh.com/auth/oauth2/token")
        );
        assert_eq!(
            token("https://CA.API.OVH.COM./1.0").as_deref(),
            Some("https://ca.ovh.com/auth/oauth2/token")
        );
        assert_eq!(
            token("https://api.us.ovhcloud.com/1.0").as_deref(),
            Some("https://us.ovhcloud.com/auth/oauth2/token")
        );
        assert_eq!(token("https://eu.api.kimsufi.com/1.0"), None);
        // Not OVHcloud's hosts (or not as OVHcloud serves them): the URL's own origin.
        for (url, origin) in [
            ("http://127.0.0.1:8080/1.0", "http://127.0.0.1:8080"),
            ("http://eu.api.ovh.com/1.0", "http://eu.api.ovh.com"),
            (
                "https://eu.api.ovh.com:8443/1.0",
                "https://eu.api.ovh.com:8443",
            ),
            (
                "https://eu.api.ovh.com.example.net/1.0",
                "https://eu.api.ovh.com.example.net",
            ),
            (
                "https://proxy.example.net/ovh/1.0",
                "https://proxy.example.net",
            ),
        ] {
            assert_eq!(
                token(url),
                Some(format!("{origin}/auth/oauth2/token")),
                "{url}"
            );
        }
    }

    /// doctor probes the endpoint even when the credentials do not resolve.
    #[test]
    fn the_endpoint_resolves_without_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("ovh.conf");
        std::fs::write(&conf, "[default]\nendpoint=ovh-ca\n").unwrap();
        let mut sources = ConfigSources {
            env: BTreeMap::new(),
            files: vec![conf],
        };
        let none = ConfigInput::default();
        assert!(ClientConfig::resolve(&none, &sources).is_err());
        let ep = ClientConfig::resolve_endpoint(&none, &sources).unwrap();
        assert_eq!(ep.name, "ovh-ca");
        sources
            .env
            .insert("OVH_ENDPOINT".into(), "http://127.0.0.1:9/1.0".into());
        let ep = ClientConfig::resolve_endpoint(&none, &sources).unwrap();
        assert_eq!(ep.base_url, "http://127.0.0.1:9/1.0");
        let given = ConfigInput {
            endpoint: Some("kimsufi-eu".into()),
            ..Default::default()
        };
        assert_eq!(
            ClientConfig::resolve_endpoint(&given, &sources)
                .unwrap()
                .name,
            "kimsufi-eu"
        );
        assert_eq!(
            ClientConfig::resolve_endpoint(&none, &ConfigSources::default())
                .unwrap()
                .name,
            "ovh-eu"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let input = ConfigInput {
            application_secret: Some("S3CRET-AS".into()),
            consumer_key: Some("S3CRET-CK".into()),
            client_secret: Some("S3CRET-CS".into()),
            ..Default::default()
        };
        let shown = format!("{input:?} {:?}", Secret::new("S3CRET-X"));
        assert!(!shown.contains("S3CRET"), "{shown}");
    }
}
