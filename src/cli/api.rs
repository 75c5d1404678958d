//! The OVHcloud API options every API-using subcommand flattens (`#[command(flatten)] api:
//! ApiArgs`), and their resolution into an [`ovh::ClientConfig`].
//!
//! Owns: flag definitions only. Must not touch: HTTP, credential file parsing (that is
//! `ovh::ClientConfig::resolve`). Secret values are never shown: not in `--help` (no defaults,
//! env values hidden), not in `Debug`.

use std::fmt;
use std::time::Duration;

use clap::Args;

use crate::ovh::{self, ConfigInput, ConfigSources, InstallApi};

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
    /// Client-side request budget per minute (OVH's fair use is about 60 per key); 0 = unlimited.
    #[arg(long, default_value_t = 60, help_heading = "OVHcloud API")]
    pub requests_per_minute: u32,
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
        cfg.requests_per_minute = self.requests_per_minute;
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
        assert_eq!(t.api.requests_per_minute, 60);
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
}
