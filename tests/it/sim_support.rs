//! Shared helpers of the simulator tests: start a simulator, and a tiny signed HTTP client
//! that records every exchange (independent of ovhform's own client, which is built elsewhere).

use std::time::Duration;

use ovhform::sim::{self, SimConfig, SimCredentials, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A hand-written fleet like the demo's: a hybrid UEFI server (SSD + NVMe), a legacy-boot
/// server with a hardware RAID controller, a Windows server without Windows-incompatible
/// templates, all in the same region.
pub const FLEET_YAML: &str = r#"
servers:
  - name: ns3000001.ip-51-68-1.eu
    os: debian12_64
    commercialRange: SCALE-1
    tags: {env: prod, "ovh:managedBy": ovh}
    diskGroups:
      - {diskType: SSD, numberOfDisks: 2, diskSizeGb: 480}
      - {diskType: NVME, numberOfDisks: 2, diskSizeGb: 1920, content: "postgres data"}
  - name: ns3000002.ip-51-68-1.eu
    os: ubuntu2404-server_64
    bootMode: legacy
    diskGroups:
      - {diskType: SAS, numberOfDisks: 4, diskSizeGb: 1200, raidController: "LSI MegaRAID 9361-8i"}
    compatibleTemplates: [debian12_64, ubuntu2404-server_64, alma9_64, proxmox8_64, byolinux_64]
  - name: ns3000003.ip-51-68-1.eu
    os: win2022-std_64
    boot: rescue-customer
    diskGroups: [{diskType: SSD, numberOfDisks: 4, diskSizeGb: 960}]
"#;

pub const HYBRID: &str = "ns3000001.ip-51-68-1.eu";
pub const RAID: &str = "ns3000002.ip-51-68-1.eu";
pub const WINDOWS: &str = "ns3000003.ip-51-68-1.eu";

pub fn fleet() -> Vec<sim::Server> {
    sim::fleet::parse(
        FLEET_YAML,
        std::path::Path::new("test-fleet.yaml"),
        &sim::catalog::catalogue(),
    )
    .expect("test fleet parses")
}

pub async fn start(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    sim::spawn(listener, config)
}

pub async fn start_default() -> SimHandle {
    start(SimConfig {
        fleet: fleet(),
        ..SimConfig::for_tests()
    })
    .await
}

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub request: Option<Value>,
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A plain HTTP client (reqwest needs a rustls provider installed even for http://).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

pub struct Api {
    http: reqwest::Client,
    root: String,
    creds: SimCredentials,
    pub log: Vec<Exchange>,
}

pub fn signature(c: &SimCredentials, method: &str, url: &str, body: &str, ts: i64) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(format!(
        "{}+{}+{method}+{url}+{body}+{ts}",
        c.application_secret, c.consumer_key
    ));
    format!("$1${}", hex::encode(h.finalize()))
}

impl Api {
    pub fn new(sim: &SimHandle) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Api {
            http,
            root: sim.root_url(),
            creds: sim.credentials(),
            log: Vec::new(),
        }
    }

    pub fn with_credentials(mut self, creds: SimCredentials) -> Self {
        self.creds = creds;
        self
    }

    /// `path` starts with `/1.0`, `/v1` or `/v2`. Signed unless `signed` is false.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        signed: bool,
    ) -> Exchange {
        let url = format!("{}{path}", self.root);
        let text = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Ovh-Application", &self.creds.application_key);
        if signed {
            let ts = jiff::Timestamp::now().as_second();
            req = req
                .header("X-Ovh-Consumer", &self.creds.consumer_key)
                .header("X-Ovh-Timestamp", ts.to_string())
                .header(
                    "X-Ovh-Signature",
                    signature(&self.creds, method.as_str(), &url, &text, ts),
                );
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if body.is_some() {
            req = req
                .header("Content-Type", "application/json")
                .body(text.clone());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let ex = Exchange {
            method,
            path: path.to_string(),
            request: body_clone(&text),
            status,
            headers,
            body,
        };
        self.log.push(ex.clone());
        ex
    }

    pub async fn get(&mut self, path: &str) -> Exchange {
        self.send(Method::GET, path, None, &[], true).await
    }

    pub async fn put(&mut self, path: &str, body: Value) -> Exchange {
        self.send(Method::PUT, path, Some(body), &[], true).await
    }

    pub async fn post(&mut self, path: &str, body: Option<Value>) -> Exchange {
        self.send(Method::POST, path, body, &[], true).await
    }

    pub async fn delete(&mut self, path: &str) -> Exchange {
        self.send(Method::DELETE, path, None, &[], true).await
    }
}

fn body_clone(text: &str) -> Option<Value> {
    if text.is_empty() {
        None
    } else {
        serde_json::from_str(text).ok()
    }
}

/// Asserts an API error answer: status and class.
#[track_caller]
pub fn assert_error(ex: &Exchange, status: u16, class: &str) {
    assert_eq!(
        ex.status.as_u16(),
        status,
        "{} {}: {}",
        ex.method,
        ex.path,
        ex.body
    );
    assert_eq!(
        ex.body["class"], class,
        "{} {}: {}",
        ex.method, ex.path, ex.body
    );
}
