//! Helpers of the daemon tests: `/metrics` through the official Prometheus client's
//! OpenMetrics parser (the pinned `prometheus-client` in the test venv, see scripts/test.sh).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Parses `text` with `prometheus_client.openmetrics.parser` and panics with the parser's
/// message when it refuses it. Never skipped: without the venv the test fails saying how to
/// get it.
pub fn parse_openmetrics(text: &str) {
    let hint = "run scripts/test.sh (it creates a venv with the pinned prometheus-client and exports OVHFORM_TEST_PYTHON)";
    let py = std::env::var("OVHFORM_TEST_PYTHON")
        .unwrap_or_else(|_| panic!("OVHFORM_TEST_PYTHON is not set: {hint}"));
    let script = "import sys\n\
from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
families = list(text_string_to_metric_families(sys.stdin.read()))\n\
assert families, 'no metric family'\n\
print(len(families))\n";
    let mut child = Command::new(&py)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}: {hint}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families >= 8, "{families} families parsed");
}

/// Collects a child's stderr lines in the background.
pub fn collect_lines(stderr: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            sink.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line);
        }
    });
    lines
}

/// The `host:port` an `ovhform run` announced on stderr (`… http://ADDR (…)`), waiting for
/// it at most 30 s.
pub fn announced_address(lines: &Mutex<Vec<String>>, who: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = lines.lock().unwrap().iter().find_map(|l| {
            l.split("http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        });
        if let Some(a) = found {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "{who} printed no address: {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
