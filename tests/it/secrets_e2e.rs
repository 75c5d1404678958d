//! Issue 8, "Secrets that can't be guessed", end to end: the real `ovhform plan` binary at
//! trace level against the simulator, with a 4-digit secret in a manifest (`{env:}` in a
//! post-installation script, an image URL and an HTTP header). Every output — the plan in
//! every format, the `--out` file, the logs — is searched for every form of the secret and of
//! the API credentials (plain, hex, base64 at every alignment and inside any base64 run,
//! unkeyed MD5/SHA-1/SHA-256/SHA-512, its length: `secrets_everywhere::hits_for`); and the outputs for many guesses
//! of the secret are compared: apart from digests keyed with the fleet secret they must be
//! identical, so no output lets anyone confirm a guess.

use std::path::{Path, PathBuf};
use std::process::Command;

use ovhform::sim::{SimConfig, SimHandle};

use crate::sim_support::start;

const SERVER: &str = "ns7000001.ip-10-3-1.eu";

fn manifests(dir: &Path) {
    std::fs::write(
        dir.join("s.yaml"),
        format!(
            "apiVersion: ovhform/v1\nkind: Server\nmetadata: {{name: {SERVER}}}\nspec:\n  install:\n    os: debian12_64\n    customizations:\n      hostname: secret-test\n      postInstallationScript: {{env: DEPLOY_TOKEN}}\n      imageURL: {{env: IMAGE_URL}}\n      httpHeaders: {{Authorization: {{env: IMAGE_AUTH}}}}\n"
        ),
    )
    .unwrap();
}

async fn sim() -> SimHandle {
    let fleet = ovhform::sim::fleet::parse(
        &format!("servers:\n  - {{name: {SERVER}, os: debian11_64}}\n"),
        Path::new("fleet.yaml"),
        &ovhform::sim::catalog::catalogue(),
    )
    .expect("fleet parses");
    start(SimConfig {
        fleet,
        ..SimConfig::for_tests()
    })
    .await
}

struct Outputs {
    stdout_by_format: Vec<String>,
    out_file: String,
    logs: String,
}

/// Runs `ovhform plan -vvv` in every format with `secret` as the token; the fleet secret is set.
async fn plan_outputs(sim: &SimHandle, secret: &str) -> Outputs {
    let work = tempfile::tempdir().unwrap();
    manifests(work.path());
    let creds = sim.credentials().clone();
    let base = sim.base_url();
    let dir: PathBuf = work.path().to_path_buf();
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || {
        let mut stdout_by_format = Vec::new();
        let mut logs = String::new();
        let out = dir.join("plan.json");
        for format in ["text", "json", "markdown"] {
            let o = Command::new(env!("CARGO_BIN_EXE_ovhform"))
                // A relative path: the plan names manifest lines as given, the same every run.
                .args(["plan", "-vvv", "--format", format, "--manifests", "s.yaml"])
                .arg("--out")
                .arg(&out)
                .arg("--state")
                .arg(dir.join("state"))
                .current_dir(&dir)
                .env_clear()
                .env("HOME", &dir)
                .env("NO_COLOR", "1")
                .env("RUST_LOG", "trace")
                .env("OVH_ENDPOINT", &base)
                .env("OVH_APPLICATION_KEY", &creds.application_key)
                .env("OVH_APPLICATION_SECRET", &creds.application_secret)
                .env("OVH_CONSUMER_KEY", &creds.consumer_key)
                .env("OVHFORM_SECRET_KEY", "fleet-secret-of-the-test")
                .env("DEPLOY_TOKEN", format!("#!/bin/sh\necho {secret}\n"))
                .env(
                    "IMAGE_URL",
                    format!("https://img.example/x.qcow2?t={secret}"),
                )
                .env("IMAGE_AUTH", format!("Bearer {secret}"))
                .output()
                .expect("run ovhform plan");
            // 0, or 1 when the plan has error findings: either way a plan was printed.
            assert!(
                matches!(o.status.code(), Some(0 | 1)) && !o.stdout.is_empty(),
                "{}",
                String::from_utf8_lossy(&o.stderr)
            );
            stdout_by_format.push(String::from_utf8_lossy(&o.stdout).into_owned());
            logs.push_str(&String::from_utf8_lossy(&o.stderr));
        }
        Outputs {
            stdout_by_format,
            out_file: std::fs::read_to_string(&out).unwrap(),
            logs,
        }
    })
    .await
    .unwrap()
}

/// The texts `secret` was planted as: the value alone, and the script, URL and header built
/// around it. `secrets_everywhere::hits_for` searches every form of each (plain, hex, base64 at
/// every alignment and inside any base64 run, unkeyed MD5/SHA-1/SHA-256/SHA-512, lengths).
fn planted(secret: &str) -> Vec<String> {
    vec![
        secret.to_string(),
        format!("#!/bin/sh\necho {secret}\n"),
        format!("https://img.example/x.qcow2?t={secret}"),
        format!("Bearer {secret}"),
    ]
}

/// Every hit of `secret`'s planted texts in `output`.
fn hits(label: &str, output: &str, secret: &str) -> Vec<String> {
    let texts = planted(secret);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    crate::secrets_everywhere::hits_for(label, output.as_bytes(), "planted secret", &texts)
}

/// Masks what legitimately differs between runs: times, durations and keyed digests.
fn mask(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        if line.contains("planned at")
            || line.contains("generated_at")
            || line.contains("\"finished\"")
        {
            out.push_str("<time line>\n");
            continue;
        }
        // A saved plan's checksum is a hash of the rest of the plan (its times and keyed
        // digests included): it tells nothing the plan does not show.
        if line.contains("\"checksum\": \"sha256:") {
            out.push_str("<checksum line>\n");
            continue;
        }
        // The apply command names this run's temporary directory.
        if line.contains("apply_command") || line.contains("ovhform apply ") {
            out.push_str("<apply command>\n");
            continue;
        }
        let mut rest = line;
        let mut l = String::new();
        while let Some(i) = rest.find("hmac-sha256:") {
            l.push_str(&rest[..i]);
            l.push_str("hmac-sha256:<keyed>");
            let tail = &rest[i + "hmac-sha256:".len()..];
            let n = tail
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(tail.len());
            rest = &tail[n..];
        }
        l.push_str(rest);
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_no_output_lets_anyone_confirm_a_guess_of_a_four_digit_secret() {
    let sim = sim().await;
    let truth = plan_outputs(&sim, "deploy:7391").await;
    let creds = sim.credentials().clone();

    // 1. No form of the secret, or of the API credentials, in any output.
    let all = format!(
        "{}\n{}\n{}",
        truth.stdout_by_format.join("\n"),
        truth.out_file,
        truth.logs
    );
    assert!(
        truth.logs.contains("TRACE") || truth.logs.contains("DEBUG"),
        "the plan really ran at trace level:\n{}",
        &truth.logs[..truth.logs.len().min(2000)]
    );
    let mut found = hits("plan outputs", &all, "deploy:7391");
    for (name, c) in [
        ("application secret", &creds.application_secret),
        ("consumer key", &creds.consumer_key),
    ] {
        found.extend(crate::secrets_everywhere::hits_for(
            "plan outputs",
            all.as_bytes(),
            name,
            &[c.as_str()],
        ));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The reinstall is there, with the secrets as placeholders.
    assert!(truth.out_file.contains("<secret>") && truth.out_file.contains("<credential>"));

    // 2. Brute force: the outputs for other guesses are the same but for keyed digests, so
    // comparing them with the published ones confirms nothing.
    let published: Vec<String> = truth
        .stdout_by_format
        .iter()
        .chain([&truth.out_file])
        .map(|s| mask(s))
        .collect();
    for guess in ["0000", "7390", "7392", "1234", "9999", "0739", "3917"] {
        let g = plan_outputs(&sim, &format!("deploy:{guess}")).await;
        let seen: Vec<String> = g
            .stdout_by_format
            .iter()
            .chain([&g.out_file])
            .map(|s| mask(s))
            .collect();
        assert_eq!(seen, published, "guess {guess} gives other outputs");
        let found = hits(
            &format!("logs of guess {guess}"),
            &g.logs,
            &format!("deploy:{guess}"),
        );
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
    sim.shutdown().await;
}
