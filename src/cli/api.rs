//! The OVHcloud API options every API-using subcommand flattens (`#[command(flatten)] api:
//! ApiArgs`), and their resolution into an [`ovh::ClientConfig`].
//!
//! Owns: flag definitions only. Must not touch: HTTP, credential file parsing (that is
//! `ovh::ClientConfig::resolve`). Secret values are never shown: not in `--help` (no defaults,
//! env values hidden), not in `Debug`.

use std::fmt;
use std::time::Duration;

use clap::Args;

use crate::ovh::{self, ConfigInput, ConfigSources, Endpoint, InstallApi};

/// The request budget when `--requests-per-minute` is not given and the API is OVHcloud's.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 60;

/// The budget to use: an explicit value always wins; otherwise OVH's fair use, except for a
/// loopback endpoint, which cannot be OVHcloud (throttling the simulator only makes a
/// 1,000-server plan take minutes for nothing).
pub fn requests_per_minute(given: Option<u32>, endpoint: &Endpoint) -> u32 {
    given.unwrap_or(if endpoint.is_loopback() {
        0
    } else {
        DEFAULT_REQUESTS_PER_MINUTE
    })
}

#[derive(Clone, Args)]
pub struct ApiArgs {
    /// API endpoint: ovh-eu, ovh-ca, ovh-us, kimsufi-eu, kimsufi-ca, soyoustart-eu,
    /// soyoustart-ca, or a full base URL such as http://127.0.0.1:8080/1.0.
    /// Default: `[default] endpoint` of ovh.conf, else ovh-eu.
    #[arg(long, env = "OVH_ENDPOINT", help_heading = "OVHcloud API")]
    pub endpoint: Option<String>,
    /// Application key (else OVH_APPLICATION_KEY, else ovh.conf).
    #[arg(long, help_heading = "OVHcloud API")]
    pub application_key: Option<String>,
    /// Application secret (else OVH_APPLICATION_SECRET, else ovh.conf). Prefer the
    /// environment or ovh.conf: command lines are visible to other local users.
    #[arg(long, help_heading = "OVHcloud API")]
    pub application_secret: Option<String>,
    /// Consumer key (else OVH_CONSUMER_KEY, else ovh.conf).
    #[arg(long, help_heading = "OVHcloud API")]
    pub consumer_key: Option<String>,
    /// OAuth2 client id of a service account (else OVH_CLIENT_ID, else ovh.conf).
    #[arg(long, help_heading = "OVHcloud API")]
    pub client_id: Option<String>,
    /// OAuth2 client secret (else OVH_CLIENT_SECRET, else ovh.conf).
    #[arg(long, help_heading = "OVHcloud API")]
    pub client_secret: Option<String>,
    /// Client-side request budget per minute; 0 = unlimited. When not given: 60 (OVH's fair
    /// use is about 60 per key), or unlimited for a loopback endpoint (127.0.0.0/8, ::1,
    /// localhost: the simulator).
    #[arg(long, value_name = "N", help_heading = "OVHcloud API")]
    pub requests_per_minute: Option<u32>,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..), help_heading = "OVHcloud API")]
    pub concurrency: u16,
    /// Timeout of each API request (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, help_heading = "OVHcloud API")]
    pub timeout: Duration,
    /// Which API starts installations: `reinstall` (POST /reinstall) or `legacy`
    /// (POST /install/start, ended on ovh-eu on 2025-10-07; refuses custom partitioning).
    #[arg(long, value_enum, default_value_t = InstallApi::Reinstall, help_heading = "OVHcloud API")]
    pub install_api: InstallApi,
    /// Retries of a failed safe (GET) call, with jittered backoff; writes are never retried
    /// blindly.
    #[arg(long, default_value_t = 4, help_heading = "OVHcloud API")]
    pub retries: usize,
}

impl fmt::Debug for ApiArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ApiArgs")
            .field("endpoint", &self.endpoint)
            .field("application_key", &self.application_key)
            .field("application_secret", &r(&self.application_secret))
            .field("consumer_key", &r(&self.consumer_key))
            .field("client_id", &self.client_id)
            .field("client_secret", &r(&self.client_secret))
            .field("requests_per_minute", &self.requests_per_minute)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("install_api", &self.install_api)
            .field("retries", &self.retries)
            .finish()
    }
}

impl ApiArgs {
    /// The explicitly given values (highest priority in resolution).
    pub fn config_input(&self) -> ConfigInput {
        ConfigInput {
            endpoint: self.endpoint.clone(),
            application_key: self.application_key.clone(),
            application_secret: self.application_secret.clone(),
            consumer_key: self.consumer_key.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
        }
    }

    /// Resolve against explicit sources (tests) and apply the tuning flags.
    pub fn client_config_from(
        &self,
        sources: &ConfigSources,
    ) -> Result<ovh::ClientConfig, ovh::Error> {
        let mut cfg = ovh::ClientConfig::resolve(&self.config_input(), sources)?;
        cfg.requests_per_minute = requests_per_minute(self.requests_per_minute, &cfg.endpoint);
        cfg.concurrency = usize::from(self.concurrency);
        cfg.timeout = self.timeout;
        cfg.install_api = self.install_api;
        cfg.max_retries = self.retries;
        Ok(cfg)
    }

    /// Resolve against the process environment and the standard ovh.conf locations.
    pub fn client_config(&self) -> Result<ovh::ClientConfig, ovh::Error> {
        self.client_config_from(&ConfigSources::from_process())
    }

    /// A ready client.
    pub fn client(&self) -> Result<ovh::Client, ovh::Error> {
        ovh::Client::new(self.client_config()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        api: ApiArgs,
    }

    #[test]
    fn parses_defaults_and_never_shows_secrets() {
        let t = T::try_parse_from([
            "t",
            "--endpoint",
            "http://127.0.0.1:1/1.0",
            "--application-key",
            "ak",
            "--application-secret",
            "TOPSECRET-AS",
            "--consumer-key",
            "TOPSECRET-CK",
        ])
        .unwrap();
        assert_eq!(t.api.requests_per_minute, None);
        assert_eq!(t.api.install_api, InstallApi::Reinstall);
        assert_eq!(t.api.timeout, Duration::from_secs(60));
        let cfg = t.api.client_config_from(&ConfigSources::default()).unwrap();
        let shown = format!("{t:?} {cfg:?}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        let help = T::command().render_long_help().to_string();
        assert!(
            help.contains("--install-api") && help.contains("--requests-per-minute"),
            "{help}"
        );
    }

    fn resolved_budget(args: &[&str]) -> u32 {
        let mut argv = vec!["t", "--application-key", "ak", "--application-secret", "as"];
        argv.extend(["--consumer-key", "ck"]);
        argv.extend(args);
        let t = T::try_parse_from(argv).unwrap();
        t.api
            .client_config_from(&ConfigSources::default())
            .unwrap()
            .requests_per_minute
    }

    #[test]
    fn request_budget_is_unlimited_on_loopback_unless_given() {
        assert_eq!(resolved_budget(&["--endpoint", "ovh-eu"]), 60);
        assert_eq!(
            resolved_budget(&["--endpoint", "http://10.1.2.3:8080/1.0"]),
            60
        );
        for local in [
            "http://127.0.0.1:8080/1.0",
            "http://[::1]:8080/1.0",
            "http://localhost:8080/1.0",
        ] {
            assert_eq!(resolved_budget(&["--endpoint", local]), 0, "{local}");
            // An explicit value always wins, in both directions.
            let given = ["--endpoint", local, "--requests-per-minute", "30"];
            assert_eq!(resolved_budget(&given), 30, "{local}");
        }
        let given = ["--endpoint", "ovh-eu", "--requests-per-minute", "0"];
        assert_eq!(resolved_budget(&given), 0);
        let given = ["--endpoint", "ovh-ca", "--requests-per-minute", "120"];
        assert_eq!(resolved_budget(&given), 120);
    }

    #[test]
    fn the_endpoint_may_come_from_the_environment() {
        let sources = ConfigSources {
            env: [
                ("OVH_ENDPOINT", "http://127.0.0.1:9/1.0"),
                ("OVH_APPLICATION_KEY", "ak"),
                ("OVH_APPLICATION_SECRET", "as"),
                ("OVH_CONSUMER_KEY", "ck"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            files: vec![],
        };
        let mut t = T::try_parse_from(["t"]).unwrap();
        // clap reads OVH_ENDPOINT from the process too; only `sources` counts here.
        t.api.endpoint = None;
        let cfg = t.api.client_config_from(&sources).unwrap();
        assert_eq!(cfg.requests_per_minute, 0);
    }
}
