//! Issue 12, "Secrets": known secrets planted in every place ovhform takes one — the
//! application secret, the consumer key, the OAuth2 client secret, the fleet secret, `{env:}`
//! values, `httpHeaders` values (one of them a 5-character secret read from a sensitive file),
//! a post-installation script, cloud-init user data, the daemon's bearer token, a webhook URL's
//! token, a PostgreSQL password, and the wrong values tried in their place — then every output
//! of the real binaries at trace level is searched for them: plans in every format and the
//! saved plan, `validate` in every format, `apply` from a saved plan and direct, the daemon's
//! logs, `/healthz`, `/readyz`, `/metrics`, `/status` (with and without the token), the webhook
//! bodies, every file of the state directories, every row of every table of the PostgreSQL
//! store, the error messages of bad manifests, refused credentials, a wrong fleet secret, an
//! API refusal of the reinstall, a failed installation, an unreachable database — and the
//! simulator's own output and answers (it runs as `ovhform sim`, a separate process, at trace).
//!
//! "Searched" means every form that would hand the secret out or confirm a guess of it: the
//! text itself; hex (either case); standard and URL-safe base64 at the three byte alignments
//! (so a secret inside a longer encoded blob is found too), and every base64-looking run of the
//! outputs decoded (at its four character alignments) and searched again; unkeyed MD5, SHA-1,
//! SHA-256 and SHA-512 of the secret and of the whole planted text, in hex (and a 12-digit
//! prefix) and base64; and its length written as a length (`12 chars`, `len=12`, `12 bytes`,
//! `Some(12)`, …). Zero hits, and no output may show a panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::Rng as _;
use sha2::Digest as _;

const S1: &str = "ns3000001.ip-51-68-1.eu";
/// A plan of the planted manifests on the state directory.
const PLAN: [&str; 5] = ["plan", "--manifests", "m", "--state", "state"];
/// `apply` of the manifests in `m`, approving the wipe of [`S1`] only.
const APPLY_S1: [&str; 8] = [
    "apply",
    "--manifests",
    "m",
    "--state",
    "state",
    "--auto-approve",
    "--allow-wipe",
    S1,
];
const S2: &str = "ns3000002.ip-51-68-1.eu";

/// A random alphanumeric token of `len` characters.
fn token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// One planted secret: the random part, and the whole text it was planted as (a script, a
/// header value, a URL), when that is more than the random part.
struct Secret {
    name: &'static str,
    token: String,
    planted: String,
}

impl Secret {
    fn new(name: &'static str, len: usize, wrap: impl Fn(&str) -> String) -> Secret {
        let token = token(len);
        let planted = wrap(&token);
        Secret {
            name,
            token,
            planted,
        }
    }
}

/// Every secret of a run. Lengths differ from one another, and are not round numbers an
/// output would print for another reason.
struct Planted {
    application_secret: Secret,
    consumer_key: Secret,
    client_secret: Secret,
    fleet_secret: Secret,
    image_url: Secret,
    header: Secret,
    short: Secret,
    script: Secret,
    user_data: Secret,
    http_token: Secret,
    webhook_token: Secret,
    inline_header: Secret,
    ssh_key: Secret,
    wrong_application_secret: Secret,
    wrong_consumer_key: Secret,
    wrong_client_secret: Secret,
    wrong_fleet_secret: Secret,
    pg_password: Secret,
}

impl Planted {
    fn new() -> Planted {
        let same = |t: &str| t.to_string();
        Planted {
            application_secret: Secret::new("application secret", 41, same),
            consumer_key: Secret::new("consumer key", 43, same),
            client_secret: Secret::new("OAuth2 client secret", 39, same),
            fleet_secret: Secret::new("fleet secret", 45, same),
            image_url: Secret::new("{env:} imageURL", 37, |t| {
                format!("https://img.example/x.qcow2?t={t}")
            }),
            header: Secret::new("httpHeaders Authorization", 35, |t| format!("Bearer {t}")),
            short: Secret::new("5-character header", 5, same),
            script: Secret::new("post-installation script", 47, |t| {
                format!("#!/bin/sh\necho {t} > /root/token\n")
            }),
            user_data: Secret::new("configDriveUserData", 33, |t| {
                format!("#cloud-config\npassword: {t}\n")
            }),
            http_token: Secret::new("daemon bearer token", 29, same),
            webhook_token: Secret::new("webhook URL token", 31, same),
            inline_header: Secret::new("inline header (bad manifest)", 26, |t| {
                format!("Bearer {t}")
            }),
            ssh_key: Secret::new("invalid {env:} sshKey", 23, |t| format!("ssh-rsa {t}")),
            wrong_application_secret: Secret::new("wrong application secret", 42, same),
            wrong_consumer_key: Secret::new("wrong consumer key", 44, same),
            wrong_client_secret: Secret::new("wrong OAuth2 client secret", 38, same),
            wrong_fleet_secret: Secret::new("wrong fleet secret", 46, same),
            pg_password: Secret::new("PostgreSQL password", 27, same),
        }
    }

    fn all(&self) -> Vec<&Secret> {
        vec![
            &self.application_secret,
            &self.consumer_key,
            &self.client_secret,
            &self.fleet_secret,
            &self.image_url,
            &self.header,
            &self.short,
            &self.script,
            &self.user_data,
            &self.http_token,
            &self.webhook_token,
            &self.inline_header,
            &self.ssh_key,
            &self.wrong_application_secret,
            &self.wrong_consumer_key,
            &self.wrong_client_secret,
            &self.wrong_fleet_secret,
            &self.pg_password,
        ]
    }
}

/// Every output collected, by where it came from.
#[derive(Default)]
struct Outputs(Vec<(String, Vec<u8>)>);

impl Outputs {
    fn add(&mut self, label: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((label.into(), bytes.into()));
    }
    fn run(&mut self, label: &str, run: &Ran) {
        self.add(format!("{label}: stdout"), run.stdout.clone());
        self.add(format!("{label}: stderr"), run.stderr.clone());
    }
    /// Every file under `dir`, recursively.
    fn dir(&mut self, label: &str, dir: &Path) -> usize {
        let mut n = 0;
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    self.add(
                        format!("{label}: {}", path.display()),
                        std::fs::read(&path).unwrap(),
                    );
                    n += 1;
                }
            }
        }
        n
    }
}

/// A finished command.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = |s: &str| {
            let lines: Vec<&str> = s
                .lines()
                .filter(|l| !l.contains(" TRACE ") && !l.contains(" DEBUG "))
                .collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr (no trace/debug)\n{}",
            self.code,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

fn ran(out: std::process::Output) -> Ran {
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every form of `s` that would give it away or confirm a guess of it, with a name for the
/// report. Each form is searched as bytes.
fn forms(s: &str) -> Vec<(String, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let b = s.as_bytes();
    let mut out = vec![
        ("plain".to_string(), b.to_vec()),
        ("hex".into(), hex::encode(b).into_bytes()),
        ("HEX".into(), hex::encode_upper(b).into_bytes()),
    ];
    // Base64 of the secret inside a longer blob, at each of the three byte alignments: only
    // the characters that depend on the secret's bytes alone.
    for offset in 0..3 {
        let mut blob = vec![0u8; offset];
        blob.extend_from_slice(b);
        blob.extend_from_slice(&[0, 0]);
        let start = (offset * 8).div_ceil(6);
        let end = ((offset + b.len()) * 8) / 6;
        for (name, engine) in [
            ("base64", &STANDARD_NO_PAD),
            ("base64url", &URL_SAFE_NO_PAD),
        ] {
            let enc = engine.encode(&blob);
            out.push((
                format!("{name} at byte offset {offset}"),
                enc.as_bytes()[start..end].to_vec(),
            ));
        }
    }
    let digests: [(&str, Vec<u8>); 4] = [
        ("md5", <md5::Md5 as md5::Digest>::digest(b).to_vec()),
        ("sha1", sha1::Sha1::digest(b).to_vec()),
        ("sha256", sha2::Sha256::digest(b).to_vec()),
        ("sha512", sha2::Sha512::digest(b).to_vec()),
    ];
    for (name, d) in digests {
        let h = hex::encode(&d);
        out.push((format!("{name} hex prefix"), h.as_bytes()[..12].to_vec()));
        out.push((
            format!("{name} HEX prefix"),
            h[..12].to_uppercase().into_bytes(),
        ));
        out.push((
            format!("{name} base64"),
            STANDARD
                .encode(&d)
                .trim_end_matches('=')
                .as_bytes()
                .to_vec(),
        ));
        out.push((
            format!("{name} base64url"),
            URL_SAFE_NO_PAD.encode(&d).into_bytes(),
        ));
    }
    out
}

/// The ways an output could state a length `n`.
fn length_phrases(n: usize) -> Vec<String> {
    let mut v: Vec<String> = [
        "{} chars",
        "{} characters",
        "{} bytes",
        "{} byte ",
        "{} big",
        "{} long",
        "len={}",
        "len: {}",
        "len {}",
        "length={}",
        "length: {}",
        "length {}",
        "size={}",
        "size: {}",
        "size {}",
        "Some({})",
        "({})",
    ]
    .iter()
    .map(|p| p.replace("{}", &n.to_string()))
    .collect();
    v.sort();
    v
}

/// Base64-looking runs of `hay`, decoded at each of their four character alignments, in both
/// alphabets: a secret inside any encoded blob shows up in here as itself.
fn decoded_runs(hay: &[u8]) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let is_b64 = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_');
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if !is_b64(hay[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < hay.len() && is_b64(hay[i]) {
            i += 1;
        }
        let run: Vec<u8> = hay[start..i]
            .iter()
            .map(|&c| match c {
                b'-' => b'+',
                b'_' => b'/',
                c => c,
            })
            .collect();
        if run.len() < 8 {
            continue;
        }
        for shift in 0..4 {
            let part = &run[shift..];
            let part = &part[..part.len() / 4 * 4];
            if let Ok(bytes) = STANDARD_NO_PAD.decode(part) {
                out.extend_from_slice(&bytes);
                out.push(b'\n');
            }
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Every way `bytes` (the output `label`) gives away one of `texts` (the forms of one secret
/// named `name`): see the module doc. Empty when it gives none away.
pub(crate) fn hits_for(label: &str, bytes: &[u8], name: &str, texts: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    let decoded = decoded_runs(bytes);
    let text = String::from_utf8_lossy(bytes);
    for t in texts {
        for (form, needle) in forms(t) {
            if let Some(at) = find(bytes, &needle) {
                let from = at.saturating_sub(120);
                let to = (at + needle.len() + 60).min(bytes.len());
                hits.push(format!(
                    "{label}: the {name} ({form}) in …{}…",
                    String::from_utf8_lossy(&bytes[from..to])
                ));
            }
        }
        if find(&decoded, t.as_bytes()).is_some() {
            hits.push(format!("{label}: the {name} inside a base64 run"));
        }
        for n in [t.len(), t.chars().count()] {
            for phrase in length_phrases(n) {
                let mut from = 0;
                while let Some(i) = text[from..].find(&phrase) {
                    let at = from + i;
                    let glued = text[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_digit());
                    let end = at + phrase.len();
                    let runs_on = phrase.ends_with(|c: char| c.is_ascii_digit())
                        && text[end..].starts_with(|c: char| c.is_ascii_digit());
                    // `Token(5)` in a dependency's trace is an identifier's argument, not a
                    // length: a bare `(N)` counts only after a space or punctuation.
                    let called = phrase.starts_with('(')
                        && text[..at]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_');
                    let glued =
                        (glued && phrase.starts_with(|c: char| c.is_ascii_digit())) || called;
                    if !glued && !runs_on {
                        let mut lo = at.saturating_sub(100);
                        while !text.is_char_boundary(lo) {
                            lo -= 1;
                        }
                        let mut hi = (end + 40).min(text.len());
                        while !text.is_char_boundary(hi) {
                            hi += 1;
                        }
                        hits.push(format!(
                            "{label}: the length of the {name} ({phrase:?}) in …{}…",
                            &text[lo..hi]
                        ));
                    }
                    from = at + phrase.len();
                }
            }
        }
    }
    hits
}

/// The label of the one output that must show a panic (`OVHFORM_PANIC_AT`).
const EXPECTED_PANIC: &str = "apply with a panic in the executor";

/// Panics naming every hit: a secret form, a decoded secret, a length, or a panic.
fn assert_no_leak(outputs: &Outputs, planted: &Planted) {
    eprintln!(
        "searching {} outputs ({} bytes) for {} secrets",
        outputs.0.len(),
        outputs.0.iter().map(|(_, b)| b.len()).sum::<usize>(),
        planted.all().len()
    );
    let mut hits = Vec::new();
    for (label, bytes) in &outputs.0 {
        if String::from_utf8_lossy(bytes).contains("panicked at")
            && !label.starts_with(EXPECTED_PANIC)
        {
            hits.push(format!("{label}: a panic"));
        }
        for secret in planted.all() {
            let mut texts = vec![secret.token.as_str()];
            if secret.planted != secret.token {
                texts.push(&secret.planted);
            }
            hits.extend(hits_for(label, bytes, secret.name, &texts));
        }
    }
    assert!(
        hits.is_empty(),
        "{} hit(s) in {} outputs:\n{}",
        hits.len(),
        outputs.0.len(),
        hits.join("\n")
    );
}

/// The scanner itself finds what it must: each kind of form, inside other text.
#[test]
fn the_scanner_finds_every_form_it_claims_to() {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let planted = Planted::new();
    let s = &planted.script;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("plain", format!("x {} y", s.token).into_bytes()),
        (
            "base64 of a blob, offset 1",
            format!("body={}", STANDARD.encode(format!("a{}", s.planted))).into_bytes(),
        ),
        (
            "base64url of a blob, offset 2",
            format!("u={}", URL_SAFE.encode(format!("ab{}zz", s.token))).into_bytes(),
        ),
        (
            "hex",
            format!("k={}", hex::encode(format!("q{}", s.token))).into_bytes(),
        ),
        (
            "sha256",
            format!("digest {}", hex::encode(sha2::Sha256::digest(&s.planted))).into_bytes(),
        ),
        (
            "md5 base64",
            format!(
                "etag {}",
                STANDARD.encode(<md5::Md5 as md5::Digest>::digest(&s.token))
            )
            .into_bytes(),
        ),
        (
            "length",
            format!("value ({} chars)", s.token.len()).into_bytes(),
        ),
        (
            "length of the planted text",
            format!("Customization is {} big", s.planted.len()).into_bytes(),
        ),
    ];
    for (what, bytes) in cases {
        let hits = hits_for(what, &bytes, s.name, &[&s.token, &s.planted]);
        assert!(!hits.is_empty(), "the scanner missed: {what}");
    }
    // A length glued to other digits is another number; an identifier's argument is not a
    // length.
    let n = s.token.len();
    let other = format!("len={n}1 and 1{n} bytes, poller token=Token({n})");
    assert!(hits_for("digits", other.as_bytes(), s.name, &[&s.token]).is_empty());
    let mut clean = Outputs::default();
    clean.add(
        "clean",
        b"plan: 2 to reinstall; request {\"postInstallationScript\": \"<secret>\"}".to_vec(),
    );
    assert_no_leak(&clean, &planted);
}

// --- running the binaries ---------------------------------------------------------------------

/// `ovhform sim` in its own process, at trace level, with the planted credentials given.
struct Sim {
    child: Child,
    endpoint: String,
    root: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Sim {
    fn start(p: &Planted, extra: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ovhform"))
            .args(["sim", "--listen", "127.0.0.1:0", "--servers", "2"])
            .args(["--speed", "1000", "--install-duration", "20s"])
            .args(extra)
            .env_clear()
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .env("OVHFORM_SIM_APPLICATION_KEY", "planted-app-key")
            .env(
                "OVHFORM_SIM_APPLICATION_SECRET",
                &p.application_secret.token,
            )
            .env("OVHFORM_SIM_CONSUMER_KEY", &p.consumer_key.token)
            .env("OVHFORM_SIM_CLIENT_ID", "EU.planted-client")
            .env("OVHFORM_SIM_CLIENT_SECRET", &p.client_secret.token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ovhform sim");
        let stdout = crate::daemon_support::collect_lines(child.stdout.take().unwrap());
        let stderr = crate::daemon_support::collect_lines(child.stderr.take().unwrap());
        let addr = crate::daemon_support::announced_address(&stdout, "ovhform sim");
        let root = format!("http://{}", addr.trim_end_matches("/1.0"));
        Sim {
            child,
            endpoint: format!("{root}/1.0"),
            root,
            stdout,
            stderr,
        }
    }

    /// Stops it (this test's own child) and hands over what it printed.
    fn stop(mut self, label: &str, outputs: &mut Outputs) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The collector threads end with the pipes.
        std::thread::sleep(Duration::from_millis(200));
        outputs.add(
            format!("{label}: stdout"),
            self.stdout.lock().unwrap().join("\n"),
        );
        outputs.add(
            format!("{label}: stderr"),
            self.stderr.lock().unwrap().join("\n"),
        );
    }
}

/// A working directory: manifests, state, saved plans.
struct Work {
    dir: PathBuf,
    _keep: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let keep = tempfile::tempdir().unwrap();
        Work {
            dir: keep.path().to_path_buf(),
            _keep: keep,
        }
    }

    /// `ovhform ARGS` at trace level with the planted credentials and manifest secrets in its
    /// environment (`env` adds or replaces; a `None` value removes).
    fn command(
        &self,
        p: &Planted,
        endpoint: &str,
        args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env_clear()
            .env("HOME", &self.dir)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .env("OVHFORM_TIME_SCALE", "1000")
            .env("OVHFORM_POLL_MS", "50")
            .env("OVH_ENDPOINT", endpoint)
            .env("OVH_APPLICATION_KEY", "planted-app-key")
            .env("OVH_APPLICATION_SECRET", &p.application_secret.token)
            .env("OVH_CONSUMER_KEY", &p.consumer_key.token)
            .env("OVHFORM_SECRET_KEY", &p.fleet_secret.token)
            .env("SCRIPT", &p.script.planted)
            .env("USER_DATA", &p.user_data.planted)
            .env("IMAGE_URL", &p.image_url.planted)
            .env("IMAGE_AUTH", &p.header.planted)
            .env("SSH_KEY", &p.ssh_key.planted);
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// Runs ovhform to its end; the tests' runtimes are multi-threaded, so the wait blocks
    /// one worker, not the simulator that answers it.
    fn run(&self, p: &Planted, endpoint: &str, args: &[&str], env: &[(&str, Option<&str>)]) -> Ran {
        tokio::task::block_in_place(|| {
            ran(self
                .command(p, endpoint, args, env)
                .output()
                .expect("run ovhform"))
        })
    }
}

/// Server 1: Debian with a post-installation script from `{env:}`; server 2: an image with
/// user data, an `{env:}` image URL and two headers (one from a sensitive 5-character file).
fn write_manifests(dir: &Path, p: &Planted, s1_policy: &str, s2_policy: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("short.txt"), &p.short.token).unwrap();
    std::fs::write(
        dir.join("servers.yaml"),
        format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {S1}}}\nspec:\n  policy: {{reinstall: {s1_policy}}}\n  install:\n    os: debian12_64\n    customizations:\n      hostname: planted\n      postInstallationScript: {{env: SCRIPT}}\n---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {S2}}}\nspec:\n  policy: {{reinstall: {s2_policy}}}\n  install:\n    os: byolinux_64\n    customizations:\n      imageURL: {{env: IMAGE_URL}}\n      configDriveUserData: {{env: USER_DATA}}\n      httpHeaders:\n        Authorization: {{env: IMAGE_AUTH}}\n        X-Short: {{file: short.txt, sensitive: true}}\n"
        ),
    )
    .unwrap();
}

/// Manifests that reference secrets and are wrong: an `{env:}` SSH key that is not one, and a
/// header written inline (its value is in the file, so the error must not quote the line).
fn write_bad_manifests(dir: &Path, p: &Planted) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {S1}}}\nspec:\n  install:\n    os: debian12_64\n    customizations:\n      sshKey: {{env: SSH_KEY}}\n      postInstallationScript: {{env: SCRIPT}}\n---\napiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {S2}}}\nspec:\n  install:\n    os: byolinux_64\n    customizations:\n      imageURL: {{env: IMAGE_URL}}\n      httpHeaders: {{Authorization: \"{}\"}}\n",
            p.inline_header.planted
        ),
    )
    .unwrap();
}

/// A webhook receiver on 127.0.0.1 recording every body (and nothing else: its URL, token
/// included, is ours).
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.to_vec());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// A running `ovhform run`.
struct Daemon {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn spawn(mut cmd: Command) -> Daemon {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("ovhform run");
        let stdout = crate::daemon_support::collect_lines(child.stdout.take().unwrap());
        let stderr = crate::daemon_support::collect_lines(child.stderr.take().unwrap());
        let addr = crate::daemon_support::announced_address(&stderr, "ovhform run");
        Daemon {
            child,
            addr,
            stderr,
            stdout,
        }
    }

    /// GET `path` with the token (or none): status and body.
    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let mut req = crate::sim_support::http().get(format!("http://{}{path}", self.addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("daemon answers");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    /// SIGTERM (to this test's own child), then what it printed.
    async fn stop(self, label: &str, outputs: &mut Outputs) {
        let Daemon {
            mut child,
            stdout,
            stderr,
            ..
        } = self;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let exit = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(s) = child.try_wait().unwrap() {
                    return Some(s);
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap();
        assert!(exit.is_some(), "{label} did not stop on SIGTERM");
        // The collector threads end with the pipes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        outputs.add(
            format!("{label}: stdout"),
            stdout.lock().unwrap().join("\n"),
        );
        outputs.add(
            format!("{label}: stderr"),
            stderr.lock().unwrap().join("\n"),
        );
    }
}

/// Waits until `ready` holds, at most `secs`.
async fn wait_until<F, Fut>(secs: u64, what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole CLI and daemon surface with a state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planted_secret_stays_out_of_every_output_of_plan_apply_and_the_daemon() {
    let p = Planted::new();
    let mut outputs = Outputs::default();
    let work = Work::new();
    let sim = Sim::start(&p, &[]);
    let ep = sim.endpoint.clone();
    write_manifests(&work.dir.join("m"), &p, "manual", "manual");

    // Plans, every format, and the saved plan.
    for format in ["text", "json", "markdown"] {
        let args = [
            "plan",
            "--format",
            format,
            "--manifests",
            "m",
            "--state",
            "state",
            "--out",
            "plan.json",
        ];
        let r = work.run(&p, &ep, &args, &[]);
        assert_eq!(r.code, Some(0), "{r}");
        assert!(r.stderr.contains(" TRACE "), "not at trace level: {r}");
        outputs.run(&format!("plan --format {format}"), &r);
        let saved = std::fs::read_to_string(work.dir.join("plan.json")).unwrap();
        assert!(saved.contains("<secret>") && saved.contains("<credential>"));
        outputs.add(format!("plan --out (after --format {format})"), saved);
    }

    // Bad manifests that reference secrets: validate in every format, plan.
    write_bad_manifests(&work.dir.join("bad"), &p);
    for format in ["text", "json", "github"] {
        let r = work.run(&p, &ep, &["validate", "--format", format, "bad"], &[]);
        assert_eq!(r.code, Some(1), "{r}");
        outputs.run(&format!("validate --format {format} (bad manifests)"), &r);
    }
    let r = work.run(
        &p,
        &ep,
        &["plan", "--manifests", "bad", "--state", "state"],
        &[],
    );
    assert!(
        r.code == Some(1) && r.stderr.contains("E0315") && r.stderr.contains("E0303"),
        "{r}"
    );
    outputs.run("plan (bad manifests)", &r);

    // Apply the saved plan: both servers reinstalled, records written.
    let r = work.run(
        &p,
        &ep,
        &[
            "apply",
            "plan.json",
            "--manifests",
            "m",
            "--state",
            "state",
            "--auto-approve",
            "--allow-wipe",
            S1,
            "--allow-wipe",
            S2,
        ],
        &[],
    );
    assert!(r.code == Some(0) && r.stdout.contains("2 converged"), "{r}");
    outputs.run("apply plan.json", &r);

    // A plan with the records in place: secrets compared through keyed digests, nothing to do.
    let r = work.run(&p, &ep, &PLAN, &[]);
    assert!(r.code == Some(0) && r.stdout.contains("no changes"), "{r}");
    outputs.run("plan after apply", &r);

    // The wrong fleet secret: said, never shown.
    let r = work.run(
        &p,
        &ep,
        &PLAN,
        &[("OVHFORM_SECRET_KEY", Some(&p.wrong_fleet_secret.token))],
    );
    assert!(r.stdout.contains("fleet-secret-mismatch"), "{r}");
    outputs.run("plan with a wrong fleet secret", &r);

    // Refused credentials: application secret, consumer key, OAuth2 client secret; and the
    // right OAuth2 pair.
    let r = work.run(
        &p,
        &ep,
        &PLAN,
        &[(
            "OVH_APPLICATION_SECRET",
            Some(&p.wrong_application_secret.token),
        )],
    );
    assert!(
        r.code == Some(1) && r.stderr.contains("Invalid signature"),
        "{r}"
    );
    outputs.run("plan with a wrong application secret", &r);
    let r = work.run(
        &p,
        &ep,
        &PLAN,
        &[("OVH_CONSUMER_KEY", Some(&p.wrong_consumer_key.token))],
    );
    assert!(
        r.code == Some(1) && r.stderr.contains("INVALID_CREDENTIAL"),
        "{r}"
    );
    outputs.run("plan with a wrong consumer key", &r);
    let oauth2 = |secret: &str| -> Vec<(&str, Option<String>)> {
        vec![
            ("OVH_APPLICATION_KEY", None),
            ("OVH_APPLICATION_SECRET", None),
            ("OVH_CONSUMER_KEY", None),
            ("OVH_CLIENT_ID", Some("EU.planted-client".into())),
            ("OVH_CLIENT_SECRET", Some(secret.to_string())),
        ]
    };
    for (label, secret, ok) in [
        ("plan with OAuth2", &p.client_secret.token, true),
        (
            "plan with a wrong OAuth2 client secret",
            &p.wrong_client_secret.token,
            false,
        ),
    ] {
        let env = oauth2(secret);
        let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let r = work.run(
            &p,
            &ep,
            &["plan", "-vvv", "--manifests", "m", "--state", "state"],
            &env,
        );
        if ok {
            assert_eq!(r.code, Some(0), "{r}");
        } else {
            assert!(
                r.code == Some(1) && r.stderr.contains("invalid_client"),
                "{r}"
            );
        }
        outputs.run(label, &r);
    }

    // Apply without a saved plan, the script now too big for the API: it refuses the
    // reinstall naming the customization's size (the length of a secret), which must not
    // come through.
    let big_script = format!("{}{}\n", p.script.planted, "#".repeat(40_000));
    let r = work.run(&p, &ep, &APPLY_S1, &[("SCRIPT", Some(&big_script))]);
    assert!(
        r.code == Some(1) && r.stdout.contains("CustomizationSizeExceeded"),
        "{r}"
    );
    outputs.run("apply direct, refused by the API", &r);
    let b64_len = base64::engine::general_purpose::STANDARD
        .encode(&big_script)
        .len();
    for n in [big_script.len(), b64_len] {
        assert!(
            !r.stdout.contains(&n.to_string()) && !r.stderr.contains(&n.to_string()),
            "the refused script's size {n} is shown: {r}"
        );
    }

    // JSON logs, `doctor`, `state show`.
    let r = work.run(
        &p,
        &ep,
        &[
            "--log-format",
            "json",
            "plan",
            "--manifests",
            "m",
            "--state",
            "state",
            "--format",
            "json",
        ],
        &[],
    );
    assert!(
        r.code == Some(0) && r.stderr.contains("\"level\":\"TRACE\""),
        "{r}"
    );
    outputs.run("plan --log-format json", &r);
    let r = work.run(
        &p,
        &ep,
        &["doctor", "--manifests", "m", "--state", "state"],
        &[],
    );
    assert!(
        r.stdout.contains("OVHcloud") || r.stderr.contains("OVHcloud"),
        "{r}"
    );
    outputs.run("doctor", &r);
    let r = work.run(&p, &ep, &["state", "show", "--state", "state"], &[]);
    assert!(r.code == Some(0) && r.stdout.contains(S1), "{r}");
    outputs.run("state show", &r);

    // A panic in the executor, right after the reinstall's intent is journaled (the request
    // and its secrets in hand): what the panic prints, with a full backtrace.
    let script_v2 = format!("{}# v2\n", p.script.planted);
    let r = work.run(
        &p,
        &ep,
        &APPLY_S1,
        &[
            ("SCRIPT", Some(&script_v2)),
            ("OVHFORM_PANIC_AT", Some("intent:after-journal")),
            ("RUST_BACKTRACE", Some("full")),
        ],
    );
    assert!(
        r.code != Some(0) && r.stderr.contains("panic point intent:after-journal"),
        "{r}"
    );
    outputs.run(EXPECTED_PANIC, &r);

    // The simulator's own answers to wrong credentials echo none of them.
    let http = crate::sim_support::http();
    for (id, secret) in [
        ("EU.planted-client", p.wrong_client_secret.token.as_str()),
        ("EU.someone-else", p.client_secret.token.as_str()),
    ] {
        let resp = http
            .post(format!("{}/auth/oauth2/token", sim.root))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={id}&client_secret={secret}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let headers = format!("{:?}", resp.headers());
        outputs.add(
            format!("sim: token answer to {id}"),
            format!("{headers}\n{}", resp.text().await.unwrap()),
        );
    }
    let resp = http
        .get(format!("{}/dedicated/server", sim.endpoint))
        .header("X-Ovh-Application", "planted-app-key")
        .header("X-Ovh-Consumer", &p.consumer_key.token)
        .header(
            "X-Ovh-Timestamp",
            jiff::Timestamp::now().as_second().to_string(),
        )
        .header(
            "X-Ovh-Signature",
            format!("$1${}", p.application_secret.token),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let headers = format!("{:?}", resp.headers());
    outputs.add(
        "sim: answer to a bad signature",
        format!("{headers}\n{}", resp.text().await.unwrap()),
    );
    // What ovhform wrote into the servers' IAM tags (its records' mirror), as any key that may
    // read the servers sees it.
    let creds = ovhform::sim::SimCredentials {
        application_key: "planted-app-key".into(),
        application_secret: p.application_secret.token.clone(),
        consumer_key: p.consumer_key.token.clone(),
        client_id: "EU.planted-client".into(),
        client_secret: p.client_secret.token.clone(),
    };
    for server in [S1, S2] {
        let url = format!("{}/dedicated/server/{server}", sim.endpoint);
        let ts = jiff::Timestamp::now().as_second();
        let resp = http
            .get(&url)
            .header("X-Ovh-Application", "planted-app-key")
            .header("X-Ovh-Consumer", &p.consumer_key.token)
            .header("X-Ovh-Timestamp", ts.to_string())
            .header(
                "X-Ovh-Signature",
                crate::sim_support::signature(&creds, "GET", &url, "", ts),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body = resp.text().await.unwrap();
        assert!(body.contains("ovhform:"), "no record tags: {body}");
        outputs.add(format!("sim: {server} and its IAM tags"), body);
    }
    outputs.dir("state directory (CLI)", &work.dir.join("state"));
    assert!(work.dir.join("state/records.json").is_file());
    assert!(
        !work.dir.join("state/fleet.key").exists(),
        "the fleet secret came from the environment"
    );
    sim.stop("ovhform sim", &mut outputs);

    // The daemon, against a simulator whose installations all fail: server 1 (auto) is
    // reinstalled and its task fails, server 2 (manual) waits for approval; both notify.
    let failing = Sim::start(&p, &["--install-failure-rate", "1"]);
    let (hook_url, hooks) = webhook_receiver().await;
    let d_work = Work::new();
    let manifests = d_work.dir.join("config/m");
    write_manifests(&manifests, &p, "auto", "manual");
    let webhook = format!("{hook_url}?token={}", p.webhook_token.token);
    let mut cmd = d_work.command(
        &p,
        &failing.endpoint,
        &[
            "run",
            "--manifests",
            "config/m",
            "--state",
            "state",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1h",
        ],
        &[
            ("OVHFORM_HTTP_TOKEN", Some(&p.http_token.token)),
            ("OVHFORM_WEBHOOK_URL", Some(&webhook)),
        ],
    );
    cmd.env("RUST_LOG", "trace");
    let daemon = tokio::task::block_in_place(|| Daemon::spawn(cmd));
    wait_until(60, "a taskFailed and an approvalNeeded webhook", || {
        let hooks = hooks.clone();
        async move {
            let got = hooks.lock().unwrap();
            let text: String = got.iter().map(|b| String::from_utf8_lossy(b)).collect();
            text.contains("\"taskFailed\"") && text.contains("\"approvalNeeded\"")
        }
    })
    .await;
    for path in ["/healthz", "/readyz", "/metrics", "/status"] {
        let (status, body) = daemon.get(path, Some(&p.http_token.token)).await;
        assert_eq!(status, 200, "{path}");
        outputs.add(format!("daemon {path}"), body);
        let (status, body) = daemon.get(path, None).await;
        outputs.add(format!("daemon {path} without the token ({status})"), body);
        let (status, body) = daemon.get(path, Some(&p.wrong_fleet_secret.token)).await;
        outputs.add(format!("daemon {path} with a wrong token ({status})"), body);
    }
    let (_, status) = daemon.get("/status", Some(&p.http_token.token)).await;
    let status = String::from_utf8_lossy(&status).into_owned();
    assert!(
        status.contains("ended ovhError") && status.contains("pendingApproval"),
        "{status}"
    );
    let (_, metrics) = daemon.get("/metrics", Some(&p.http_token.token)).await;
    assert!(String::from_utf8_lossy(&metrics).contains("ovhform_"));
    // An invalid edit whose errors are about secrets: counted in /status, never quoted.
    write_bad_manifests(&manifests, &p);
    std::fs::remove_file(manifests.join("servers.yaml")).unwrap();
    wait_until(30, "the invalid edit in /status", || {
        let d = &daemon;
        let token = p.http_token.token.clone();
        async move {
            let (_, body) = d.get("/status", Some(&token)).await;
            String::from_utf8_lossy(&body).contains("\"manifestErrors\":{")
        }
    })
    .await;
    for path in ["/metrics", "/status"] {
        let (_, body) = daemon.get(path, Some(&p.http_token.token)).await;
        outputs.add(format!("daemon {path} after an invalid edit"), body);
    }
    daemon.stop("ovhform run", &mut outputs).await;
    for (i, body) in hooks.lock().unwrap().iter().enumerate() {
        outputs.add(format!("webhook body {i}"), body.clone());
    }
    let n = outputs.dir("state directory (daemon)", &d_work.dir.join("state"));
    assert!(n >= 2, "{n} files");
    failing.stop("ovhform sim (failing installs)", &mut outputs);

    // Every output was collected, and none gives a secret away.
    assert!(outputs.0.len() >= 60, "{} outputs", outputs.0.len());
    assert_no_leak(&outputs, &p);
}

/// The PostgreSQL store: the fleet secret stored through `state fleet-secret`, a daemon on the
/// store (records, intents, lease), the refusals and connection errors that name the URL; then
/// every row of every table, as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planted_secret_stays_out_of_the_postgresql_store_and_its_errors() {
    let p = Planted::new();
    let mut outputs = Outputs::default();
    let db = crate::pg_support::fresh_db().await;
    // The throwaway server trusts loopback, so the password is never asked for; it still goes
    // through every place ovhform handles the URL.
    let url = db.url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{}@", p.pg_password.token),
        1,
    );
    assert!(
        url.contains(&p.pg_password.token) || db.external,
        "{}",
        db.url
    );
    let sim = Sim::start(&p, &[]);
    let work = Work::new();

    // The fleet secret into the store, from stdin.
    let out = tokio::task::block_in_place(|| {
        use std::io::Write as _;
        let mut child = work
            .command(
                &p,
                &sim.endpoint,
                &["state", "fleet-secret", "--state", &url, "--stdin"],
                &[("OVHFORM_SECRET_KEY", None)],
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{}\n", p.fleet_secret.token).as_bytes())
            .unwrap();
        ran(child.wait_with_output().unwrap())
    });
    assert_eq!(out.code, Some(0), "{out}");
    outputs.run("state fleet-secret (PostgreSQL)", &out);

    // Commands that take only a directory refuse the URL, naming it.
    for cmd in ["plan", "apply"] {
        let r = work.run(
            &p,
            &sim.endpoint,
            &[cmd, "--manifests", "m", "--state", &url],
            &[],
        );
        assert_eq!(r.code, Some(1), "{r}");
        outputs.run(&format!("{cmd} --state postgres://…"), &r);
    }
    write_manifests(&work.dir.join("config/m"), &p, "auto", "manual");

    // A database that is not there.
    let dead = format!(
        "postgres://postgres:{}@127.0.0.1:1/nothing",
        p.pg_password.token
    );
    let r = tokio::task::block_in_place(|| {
        let mut cmd = work.command(
            &p,
            &sim.endpoint,
            &[
                "run",
                "--manifests",
                "config/m",
                "--state",
                &dead,
                "--listen",
                "127.0.0.1:0",
            ],
            &[("OVHFORM_SECRET_KEY", None)],
        );
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "run on a dead database never gave up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ran(child.wait_with_output().unwrap())
    });
    assert_eq!(r.code, Some(1), "{r}");
    outputs.run("run --state postgres://… (unreachable)", &r);

    // The daemon on the store: server 1 is reinstalled, its record written; server 2's
    // approval event goes to a webhook nobody listens on (its URL, token included, must not
    // show in the failed deliveries' logs).
    let unreachable_hook = format!("http://127.0.0.1:1/hook?token={}", p.webhook_token.token);
    let cmd = work.command(
        &p,
        &sim.endpoint,
        &[
            "run",
            "--manifests",
            "config/m",
            "--state",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1h",
            "--replica",
            "planted-replica",
        ],
        &[
            ("OVHFORM_SECRET_KEY", None),
            ("OVHFORM_HTTP_TOKEN", Some(&p.http_token.token)),
            ("OVHFORM_WEBHOOK_URL", Some(&unreachable_hook)),
        ],
    );
    let daemon = tokio::task::block_in_place(|| Daemon::spawn(cmd));
    let sql = db.sql().await;
    wait_until(90, "server 1's record in PostgreSQL", || {
        let sql = &sql;
        async move {
            sql.query_opt("SELECT doc::text FROM ovhform_records", &[])
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.get::<_, String>(0).contains(S1))
        }
    })
    .await;
    wait_until(60, "the webhook's delivery to give up", || {
        let lines = daemon.stderr.clone();
        async move {
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("webhook event not delivered"))
        }
    })
    .await;
    for path in ["/metrics", "/status"] {
        let (status, body) = daemon.get(path, Some(&p.http_token.token)).await;
        assert_eq!(status, 200, "{path}");
        outputs.add(format!("daemon on PostgreSQL {path}"), body);
    }
    daemon.stop("ovhform run (PostgreSQL)", &mut outputs).await;

    // Every row of every table, as JSON text. The fleet secret's own table holds it by design
    // (that is where `state fleet-secret` put it): checked there, and only there.
    let tables: Vec<String> = sql
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 5, "{tables:?}");
    let mut rows = 0;
    for table in &tables {
        let query = format!("SELECT row_to_json(t)::text FROM \"{table}\" t");
        for row in sql.query(&query, &[]).await.unwrap() {
            let text: String = row.get(0);
            let text = if table == "ovhform_fleet_secrets" {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(
                    v["secret"],
                    p.fleet_secret.token.as_str(),
                    "stored as given"
                );
                v.as_object_mut().unwrap().remove("secret");
                v.to_string()
            } else {
                text
            };
            outputs.add(format!("PostgreSQL {table}"), text);
            rows += 1;
        }
    }
    assert!(rows >= 4, "{rows} rows");
    sim.stop("ovhform sim", &mut outputs);
    assert_no_leak(&outputs, &p);
}
