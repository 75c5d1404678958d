//! Issue 8, "Records: whom to believe" and "Secrets that can't be guessed": each "seen" of the
//! hostile review is a named `regression_` test here, plus the rules around it — the store is
//! authoritative, implausible records are refused, records have an owner, a tag-only wipe is
//! never automatic, a failed reinstall leaves the server degraded, secrets are compared only
//! through keyed digests.

use std::collections::BTreeSet;

use ovhform::model::*;
use ovhform::plan::digest::FleetKey;
use ovhform::plan::testkit::{self, apply_in_memory_keyed, record_for};
use ovhform::plan::{Action, ActionKind, Approval, Blocker, Plan, PlanInput};
use ovhform::state::{merge_records, record_from_tags, record_to_tags};

use crate::plan::{input, kinds, now, one, plan_ok, with_secrets};

fn codes(p: &Plan, server: &str) -> Vec<&'static str> {
    p.servers[server]
        .findings
        .iter()
        .map(|f| f.code.slug())
        .collect()
}

fn only(r: &InstallRecord) -> Records {
    Records {
        installs: [(r.server.clone(), r.clone())].into(),
        ..Default::default()
    }
}

/// Seen: a made-up `ovhform:fingerprint` with a later `finished` turned "no changes" into
/// `reinstall`, approval `policy auto`. The store is authoritative; a disagreeing tag is a
/// dispute, from which nothing destructive is planned.
#[test]
fn regression_a_forged_tag_with_a_later_finish_does_not_wipe_an_in_sync_server() {
    let (mut d, o, r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().policy.reinstall = ReinstallPolicy::Auto;
    let store = r.installs["a.eu"].clone();
    let forged = InstallRecord {
        fingerprint: format!("sha256:{}", "f".repeat(64)),
        finished: Some(now()),
        started: Some(now()),
        ..store.clone()
    };
    // Through the tag encoding, as a plan in CI reads it.
    let tagged = record_from_tags("a.eu", &record_to_tags(&forged).unwrap())
        .unwrap()
        .unwrap();
    let merged = merge_records(only(&store), only(&tagged));
    let p = plan_ok(&d, &o, &merged, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
    assert!(codes(&p, "a.eu").contains(&"record-disputed"));
    let msg = &p.servers["a.eu"].findings[0].message;
    assert!(
        msg.contains("the store records") && msg.contains("the tags record"),
        "{msg}"
    );
    assert!(msg.contains("ovhform state take-tag a.eu"), "{msg}");

    // And when the store itself says a reinstall is due, the dispute still blocks it.
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .generation = 2;
    let p = plan_ok(&d, &o, &merged, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.effective_kind(), ActionKind::Reinstall);
    assert!(a.blockers().contains(&Blocker::RecordDisputed), "{a:?}");
}

/// Seen: `ovhform:os: debian11_64` on a debian12_64 server with the desired fingerprint
/// planned a wipe. The OS only changes by a reinstall: a record claiming an OS the history
/// never installed is refused, and the in-sync server is adopted, not wiped.
#[test]
fn regression_a_record_claiming_an_os_never_installed_is_refused() {
    let (d, o, mut r) = one("a.eu");
    r.installs.get_mut("a.eu").unwrap().os = "debian11_64".into();
    let p = plan_ok(&d, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Adopt]);
    assert!(codes(&p, "a.eu").contains(&"record-implausible"));
}

#[test]
fn records_from_the_future_or_of_an_unknown_algorithm_are_refused() {
    for spoil in [
        |r: &mut InstallRecord| r.finished = Some("2030-01-01T00:00:00Z".parse().unwrap()),
        |r: &mut InstallRecord| r.algorithm = 9,
        |r: &mut InstallRecord| r.server = "b.eu".into(),
    ] {
        let (mut d, o, mut r) = one("a.eu");
        spoil(r.installs.get_mut("a.eu").unwrap());
        let p = plan_ok(&d, &o, &r, &input());
        assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Adopt]);
        assert!(codes(&p, "a.eu").contains(&"record-implausible"));
        // A refused record never leads to a wipe, even when the manifest wants another OS.
        d.servers.get_mut("a.eu").unwrap().install =
            Some(testkit::install_spec("ubuntu2404-server_64", "a-eu"));
        let p = plan_ok(&d, &o, &r, &input());
        let a = &p.servers["a.eu"].actions[0];
        assert_eq!(a.effective_kind(), ActionKind::Reinstall);
        assert!(a.blockers().contains(&Blocker::RecordRefused), "{a:?}");
    }
}

/// Seen: every server in the account with an `ovhform:` tag was planned `forget` ("no
/// manifest for this server any more") and `--detailed-exitcode` returned 2. Records have an
/// owner: another fleet's servers are not in this plan.
#[test]
fn regression_another_fleets_servers_are_not_in_the_plan() {
    let (d, mut o, mut r) = one("a.eu");
    let mut theirs = record_for("b.eu", &testkit::install_spec("debian12_64", "b"), now());
    theirs.fleet = "payments".into();
    let mut tagged = testkit::observed_server("b.eu", "debian12_64");
    tagged.tags = record_to_tags(&theirs).unwrap();
    o.servers.insert("b.eu".into(), tagged);
    r.installs.insert("b.eu".into(), theirs.clone());
    let p = plan_ok(&d, &o, &r, &input());
    assert!(!p.servers.contains_key("b.eu"), "{:?}", p.servers.keys());
    assert!(!p.has_changes());

    // A manifest naming another fleet's server is an error, unless taken over explicitly.
    let mut d2 = d.clone();
    d2.servers.insert(
        "b.eu".into(),
        testkit::desired_server("b.eu", "debian12_64"),
    );
    let p = plan_ok(&d2, &o, &r, &input());
    assert!(codes(&p, "b.eu").contains(&"owned-by-other-fleet"));
    assert!(p.has_errors());
    assert_eq!(
        p.servers["b.eu"].actions[0].blockers(),
        [Blocker::OtherFleet {
            fleet: "payments".into()
        }]
    );
    let mut take = input();
    take.take_over = BTreeSet::from(["b.eu".to_string()]);
    let p = plan_ok(&d2, &o, &r, &take);
    assert!(
        !p.has_errors(),
        "{:?}",
        p.all_findings().collect::<Vec<_>>()
    );
    // `forget` never touches another fleet's record: its manifest-less server is not ours.
    assert!(
        !plan_ok(&d, &o, &r, &input())
            .servers
            .values()
            .any(|s| s.actions.iter().any(|a| a.kind() == ActionKind::Forget))
    );
}

/// A wipe whose only evidence is a tag-only record is never auto-approved: it needs an
/// explicit approval naming the server, whatever the policy.
#[test]
fn regression_a_wipe_evidenced_only_by_tags_is_never_automatic() {
    let (mut d, o, mut r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().policy.reinstall = ReinstallPolicy::Auto;
    r.installs.get_mut("a.eu").unwrap().fingerprint = format!("sha256:{}", "e".repeat(64));
    r.sources.insert("a.eu".into(), RecordSource::Tags);
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    assert!(matches!(
        &a.reinstall().unwrap().approval,
        Approval::AllowWipe { flag, why: Some(why) }
            if flag == "--allow-wipe a.eu" && why.contains("tags")
    ));
    // The same record from the store: policy auto stands.
    r.sources.insert("a.eu".into(), RecordSource::Store);
    let p = plan_ok(&d, &o, &r, &input());
    assert!(matches!(
        p.servers["a.eu"].actions[0].reinstall().unwrap().approval,
        Approval::Auto { .. }
    ));
}

/// Seen: a failed foreign reinstall (disks wiped at step 9) was adopted as healthy. A
/// reinstall that ended `customerError`/`ovhError` leaves the server degraded: never adopted,
/// never "in progress", shown with its failing step, and re-wiping it needs approval.
#[test]
fn regression_a_failed_foreign_reinstall_is_degraded_not_adopted() {
    let (mut d, mut o, mut r) = one("a.eu");
    r.installs.clear();
    let detail = o.servers.get_mut("a.eu").unwrap().detail.as_mut().unwrap();
    detail.tasks.push(Task {
        id: 77,
        function: "reinstallServer".into(),
        status: TaskStatus::OvhError,
        comment: Some("Install failed".into()),
        start_date: Some(now()),
        done_date: Some(now()),
    });
    detail.install_status = Some(InstallStatus {
        elapsed_secs: 900,
        steps: (1..=10)
            .map(|i| InstallStep {
                comment: format!("step {i}"),
                status: match i {
                    1..=8 => "done",
                    9 => "error",
                    _ => "todo",
                }
                .into(),
                error: (i == 9).then(|| "partitioning failed".into()),
            })
            .collect(),
    });
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(
        (a.kind(), a.effective_kind()),
        (ActionKind::Blocked, ActionKind::Adopt)
    );
    assert!(matches!(
        &a.blockers()[0],
        Blocker::InstallFailed { task: 77, step: Some(s), error: Some(e) }
            if s == "step 9" && e == "partitioning failed"
    ));
    assert!(codes(&p, "a.eu").contains(&"install-failed"));
    assert!(p.has_errors());

    // A reinstall of the degraded server needs an explicit approval even under policy auto.
    let ds = d.servers.get_mut("a.eu").unwrap();
    ds.policy.reinstall = ReinstallPolicy::Auto;
    ds.install = Some(testkit::install_spec("ubuntu2404-server_64", "a-eu"));
    let p = plan_ok(&d, &o, &r, &input());
    assert!(matches!(
        &p.servers["a.eu"].actions[0].reinstall().unwrap().approval,
        Approval::AllowWipe { why: Some(w), .. } if w.contains("failed")
    ));
}

#[test]
fn regression_adopt_respects_suspend() {
    let (mut d, o, mut r) = one("a.eu");
    r.installs.clear();
    d.servers.get_mut("a.eu").unwrap().policy.suspend = true;
    let p = plan_ok(&d, &o, &r, &input());
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(
        (a.kind(), a.effective_kind()),
        (ActionKind::Blocked, ActionKind::Adopt)
    );
    assert!(matches!(a.blockers()[0], Blocker::Suspended { .. }));
}

/// With the fleet secret a changed secret is a reinstall shown as "changed", never its
/// value; a changed `httpHeaders` value alone is a credential rotation, recorded without a
/// rebuild; without the secret, secrets are not compared and the plan says so.
#[test]
fn secrets_are_compared_through_keyed_digests_only() {
    let key = FleetKey::new("fleet-secret-for-tests").unwrap();
    let mut keyed = input();
    keyed.fleet_key = Some(key.clone());
    let (mut d, mut o, mut r) = one("a.eu");
    with_secrets(d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap());
    r.installs.clear();
    // Install through the test kit's executor, which records the keyed digests.
    d.servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap()
        .os = "debian12_64".into();
    let p = plan_ok(&d, &o, &r, &keyed);
    apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
    assert!(r.installs["a.eu"].secrets.is_some());
    let p = plan_ok(&d, &o, &r, &keyed);
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);

    // A secret changes: reinstall, named, shown as changed only.
    let mut d2 = d.clone();
    let spec = d2
        .servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap();
    spec.request["customizations"]["imageURL"] = "https://images.example/x?token=NEW".into();
    testkit::refingerprint(spec);
    let p = plan_ok(&d2, &o, &r, &keyed);
    let a = &p.servers["a.eu"].actions[0];
    assert_eq!(a.kind(), ActionKind::Reinstall);
    let c = a
        .changes()
        .iter()
        .find(|c| c.field == "install.customizations.imageURL")
        .unwrap_or_else(|| panic!("{:?}", a.changes()));
    assert_eq!(c.new.as_deref(), Some("(secret, changed)"));
    assert!(!p.to_json().contains("token=NEW"));
    // Without the key nothing secret is compared: no reinstall, and the coverage says so.
    let p = plan_ok(&d2, &o, &r, &input());
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Noop]);
    assert_eq!(p.report.coverage.secrets_not_compared, 1);
    assert!(
        p.report
            .coverage
            .line()
            .contains("secret values not compared")
    );

    // Only the header value (a credential) changes: a rotation, not a rebuild.
    let mut d3 = d.clone();
    let spec = d3
        .servers
        .get_mut("a.eu")
        .unwrap()
        .install
        .as_mut()
        .unwrap();
    spec.request["customizations"]["httpHeaders"]["Authorization"] = "Bearer rotated".into();
    testkit::refingerprint(spec);
    let p = plan_ok(&d3, &o, &r, &keyed);
    assert_eq!(kinds(&p, "a.eu"), vec![ActionKind::Adopt]);
    assert!(codes(&p, "a.eu").contains(&"credentials-rotated"));
}

/// From a PR comment alone a 4-digit secret (`deploy:7391`) was recovered in about 10,000
/// guesses. Every output a reviewer or a read-only key sees — the plan in every format and
/// the record as IAM tags — must be the same whatever the secret, except for keyed digests,
/// which nobody without the fleet secret can compute: no guess can be confirmed.
#[test]
fn regression_a_four_digit_secret_cannot_be_brute_forced_from_any_output() {
    use ovhform::cli::render::{MARKDOWN_LIMIT, render_markdown, render_text};
    let key = FleetKey::new("fleet-secret-for-tests").unwrap();
    let outputs = |secret: &str| -> String {
        let (mut d, mut o, mut r) = one("a.eu");
        r.installs.clear();
        o.servers.get_mut("a.eu").unwrap().os = "ubuntu2404-server_64".into();
        let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
        spec.request["customizations"]["postInstallationScript"] = secret.into();
        spec.secret_paths
            .insert("/customizations/postInstallationScript".into());
        testkit::refingerprint(spec);
        let mut i = PlanInput {
            fleet_key: Some(key.clone()),
            ..input()
        };
        i.apply_command = None;
        let p = plan_ok(&d, &o, &r, &i);
        let mut all = format!(
            "{}\n{}\n{}\n{}",
            render_text(&p, false),
            render_text(&p, true),
            render_markdown(&p, MARKDOWN_LIMIT),
            p.to_json()
        );
        // The record apply writes, and the tags that mirror it.
        apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
        let rec = &r.installs["a.eu"];
        all.push_str(&format!("{:?}", record_to_tags(rec).unwrap()));
        all.push_str(&serde_json::to_string(rec).unwrap());
        // Keyed digests differ per secret by design; an attacker cannot compute them.
        let masked = regex_lite_mask(&all);
        assert!(!masked.contains(secret), "the secret itself is shown");
        masked
    };
    let truth = outputs("deploy:7391");
    for guess in (0..10_000).step_by(97).chain([7390, 7391, 7392]) {
        let g = outputs(&format!("deploy:{guess:04}"));
        assert_eq!(
            g, truth,
            "outputs for guess {guess:04} differ: a guess is confirmable"
        );
    }
}

/// Replaces every `hmac-sha256:<64 hex>` by a fixed mask.
fn regex_lite_mask(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("hmac-sha256:") {
        out.push_str(&rest[..i]);
        out.push_str("hmac-sha256:<keyed>");
        let tail = &rest[i + "hmac-sha256:".len()..];
        let hex = tail
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(tail.len());
        rest = &tail[hex..];
    }
    out.push_str(rest);
    out
}

#[test]
fn a_reinstall_from_a_record_without_its_request_says_the_fields_are_unknown() {
    let (mut d, o, mut r) = one("a.eu");
    r.installs.get_mut("a.eu").unwrap().request = None;
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    spec.request["customizations"]["hostname"] = "renamed".into();
    testkit::refingerprint(spec);
    let p = plan_ok(&d, &o, &r, &input());
    let c = &p.servers["a.eu"].actions[0].changes()[0];
    assert_eq!(c.field, "install.fingerprint");
    assert!(
        c.old.as_deref().unwrap().contains("fields unknown"),
        "{c:?}"
    );
}

#[test]
fn an_executor_sees_the_approval_reason_in_the_typed_payload() {
    let (mut d, o, mut r) = one("a.eu");
    d.servers.get_mut("a.eu").unwrap().policy.reinstall = ReinstallPolicy::Auto;
    r.installs.get_mut("a.eu").unwrap().generation = 0;
    r.sources.insert("a.eu".into(), RecordSource::Tags);
    let p = plan_ok(&d, &o, &r, &input());
    match &p.servers["a.eu"].actions[0] {
        Action::Reinstall(x) => assert!(matches!(x.approval, Approval::AllowWipe { .. })),
        other => panic!("{other:?}"),
    }
}

/// Changing only `httpHeaders` values (credentials to fetch an image that the URL and checksum
/// identify) is reported as a rotation and never forces a reinstall — with or without the fleet
/// secret.
#[test]
fn regression_rotating_http_header_credentials_is_not_a_rebuild() {
    let key = FleetKey::new("fleet-secret-for-tests").unwrap();
    let (mut d, mut o, mut r) = one("a.eu");
    with_secrets(d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap());
    r.installs.clear();
    let keyed = PlanInput {
        fleet_key: Some(key.clone()),
        ..input()
    };
    let p = plan_ok(&d, &o, &r, &keyed);
    apply_in_memory_keyed(&p, &d, &mut o, &mut r, now(), Some(&key));
    let spec = d.servers.get_mut("a.eu").unwrap().install.as_mut().unwrap();
    let before = spec.fingerprint.clone();
    spec.request["customizations"]["httpHeaders"]["Authorization"] = "Bearer rotated".into();
    testkit::refingerprint(spec);
    assert_eq!(
        spec.fingerprint, before,
        "header values are outside the fingerprint"
    );
    for i in [input(), keyed] {
        let p = plan_ok(&d, &o, &r, &i);
        assert!(
            !p.servers["a.eu"]
                .actions
                .iter()
                .any(|a| a.reinstall().is_some()),
            "{:?}",
            p.servers["a.eu"].actions
        );
    }
}
