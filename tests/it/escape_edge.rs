//! Issue 8: nothing from outside reaches a terminal raw — beyond plans, the CLI's error
//! output (which quotes API messages) and manifest diagnostics (which quote manifest text).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// A one-shot fake API on 127.0.0.1 answering every request with a 500 whose message is
/// hostile, as a compromised proxy or a buggy API could.
fn hostile_api() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/1.0", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        for stream in listener.incoming().take(3) {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "{\"class\":\"Server::InternalServerError\",\"message\":\"\\u001b[2J\\u001b[H\\rPlan: no changes \\u202e\"}";
            let _ = write!(
                s,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, h)
}

#[test]
fn regression_a_hostile_api_error_never_reaches_the_terminal_raw() {
    let (url, _h) = hostile_api();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ovhform"))
        .args(["plan", "--manifests"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/manifests"))
        .args(["--retries", "0", "--timeout", "5s"])
        .current_dir(home.path())
        .env_clear()
        .env("HOME", home.path())
        .env("OVH_ENDPOINT", &url)
        .env("OVH_APPLICATION_KEY", "ak")
        .env("OVH_APPLICATION_SECRET", "as")
        .env("OVH_CONSUMER_KEY", "ck")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for bad in ['\x1b', '\r', '\u{202e}'] {
        assert!(!err.contains(bad), "{bad:?} raw in:\n{err}");
    }
    assert!(
        err.contains("\\x1b[2J"),
        "the message is shown, escaped:\n{err}"
    );
}

#[test]
fn regression_manifest_text_is_escaped_in_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "apiVersion: ovhform/v1\nkind: Server\n# \x1b[2J\u{202e} comment\nmetadata: {name: \"bad\x1b[31m name\"}\nspec: {}\n",
    )
    .unwrap();
    for color in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovhform"));
        cmd.arg("validate").arg(dir.path());
        if !color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains('\u{202e}') && !err.contains("\x1b[2J") && !err.contains("\x1b[31m"),
            "{err}"
        );
    }
}
