//! What a consumer key must be allowed to call for ovhform to work, and how its access rules
//! (`GET /auth/currentCredential`, REFERENCE §6.3) compare with that: the exact routes the
//! client sends (`routes.rs`), split into the reads `plan` needs and the writes `apply` and
//! `run` add, and a pure comparison that says which needed calls the rules leave out and which
//! rules grant more than ovhform uses.
//!
//! Owns: that route table and the rule matching. Must not touch: HTTP (the caller reads the
//! credential), rendering (rule paths come from the API: the caller escapes them).
//!
//! Rule paths are globs whose `*` matches any run of characters, `/` included
//! (`/dedicated/server/*` grants every route below a server, GO `AddRecursiveRules`).

use std::collections::BTreeSet;

use super::InstallApi;

/// What the key is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Purpose {
    /// `ovhform plan` only (a CI key): reads.
    Plan,
    /// `ovhform apply` and `ovhform run`: reads and writes.
    Apply,
}

/// Which command needs a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// `plan` (and therefore `apply` and `run`).
    Read,
    /// `apply` and `run` only.
    Write,
    /// `apply` and `run` with `--install-api reinstall`.
    WriteReinstall,
    /// `apply` and `run` with `--install-api legacy`.
    WriteLegacy,
    /// Sent without a signature (catalogue, time) or by `doctor` itself: no rule is needed, a
    /// rule granting it is not broader than ovhform's use.
    Free,
}

/// `{…}` in a path is one segment whose value varies (a service name, an id, an IAM URN).
const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/dedicated/server", Need::Read),
    ("GET", "/dedicated/server/{serviceName}", Need::Read),
    ("GET", "/dedicated/server/{serviceName}/boot", Need::Read),
    (
        "GET",
        "/dedicated/server/{serviceName}/boot/{bootId}",
        Need::Read,
    ),
    (
        "GET",
        "/dedicated/server/{serviceName}/install/status",
        Need::Read,
    ),
    (
        "GET",
        "/dedicated/server/{serviceName}/install/compatibleTemplates",
        Need::Read,
    ),
    (
        "GET",
        "/dedicated/server/{serviceName}/specifications/hardware",
        Need::Read,
    ),
    ("GET", "/dedicated/server/{serviceName}/task", Need::Read),
    (
        "GET",
        "/dedicated/server/{serviceName}/task/{taskId}",
        Need::Read,
    ),
    ("PUT", "/dedicated/server/{serviceName}", Need::Write),
    (
        "POST",
        "/dedicated/server/{serviceName}/reboot",
        Need::Write,
    ),
    (
        "POST",
        "/dedicated/server/{serviceName}/reinstall",
        Need::WriteReinstall,
    ),
    (
        "POST",
        "/dedicated/server/{serviceName}/install/start",
        Need::WriteLegacy,
    ),
    // The record tags' mirror (apply); v2 paths keep their `/v2` prefix in rules
    // (REFERENCE §7: [unverified] for a legacy consumer key).
    ("PUT", "/v2/iam/resource/{resourceURN}", Need::Write),
    ("GET", "/dedicated/installationTemplate", Need::Free),
    (
        "GET",
        "/dedicated/installationTemplate/{templateName}",
        Need::Free,
    ),
    ("GET", "/auth/time", Need::Free),
    ("GET", "/auth/currentCredential", Need::Free),
];

/// The smallest rule set that grants what `purpose` needs, in the form to paste into
/// `POST /auth/credential` or the createToken page. `GET /dedicated/server/*` rather than each
/// read route: it is the granularity keys are made with, and reads change nothing.
pub fn minimal_rules(purpose: Purpose, install_api: InstallApi) -> Vec<AccessRule> {
    let mut out = vec![
        AccessRule::new("GET", "/dedicated/server"),
        AccessRule::new("GET", "/dedicated/server/*"),
    ];
    if purpose == Purpose::Apply {
        out.push(AccessRule::new("PUT", "/dedicated/server/*"));
        out.push(AccessRule::new("POST", "/dedicated/server/*/reboot"));
        out.push(match install_api {
            InstallApi::Reinstall => AccessRule::new("POST", "/dedicated/server/*/reinstall"),
            InstallApi::Legacy => AccessRule::new("POST", "/dedicated/server/*/install/start"),
        });
        out.push(AccessRule::new("PUT", "/v2/iam/resource/*"));
    }
    out
}

/// One access rule of a consumer key (`auth.AccessRule`): an HTTP method and a path glob.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AccessRule {
    pub method: String,
    pub path: String,
}

impl AccessRule {
    pub fn new(method: &str, path: &str) -> AccessRule {
        AccessRule {
            method: method.to_string(),
            path: path.to_string(),
        }
    }
}

impl std::fmt::Display for AccessRule {
    /// Raw: the path may come from the API; renderers escape it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// How a key's rules compare with what ovhform calls for a purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Needed calls no rule grants, as `METHOD /path/{param}` (for the servers given, when a
    /// rule names servers one by one).
    pub missing: Vec<String>,
    /// Needed by `apply`/`run` but not by `plan` and not granted (only for [`Purpose::Plan`]:
    /// what the key could not do if it were used to apply). Informational.
    pub missing_for_apply: Vec<String>,
    /// Rules that grant calls ovhform never makes for this purpose.
    pub broader: Vec<AccessRule>,
}

/// A value no rule path contains: where a path varies. Only a rule's `*` matches it.
const ANY: char = '\u{0}';

/// Whether `glob` (`*` = any run of characters) matches `subject`. A `*` in `subject` must be
/// written as [`ANY`]: it is matched only by a `*` of the glob, so `glob_matches(a, b*)` says
/// whether `a` matches every path `b*` matches.
fn glob_matches(glob: &str, subject: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let s: Vec<char> = subject.chars().collect();
    // Iterative matcher with one backtrack point (the classic wildcard algorithm).
    let (mut gi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if gi < g.len() && g[gi] == '*' {
            star = Some((gi, si));
            gi += 1;
        } else if gi < g.len() && g[gi] == s[si] && s[si] != ANY {
            gi += 1;
            si += 1;
        } else if let Some((sg, ss)) = star {
            gi = sg + 1;
            si = ss + 1;
            star = Some((sg, ss + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

/// A route template with each `{param}` replaced: by `value(param)` when given, else [`ANY`].
fn instantiate(template: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(param) => value(param).unwrap_or_else(|| ANY.to_string()),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

fn needed(need: Need, purpose: Purpose, install_api: InstallApi) -> bool {
    match need {
        Need::Read => true,
        Need::Write => purpose == Purpose::Apply,
        Need::WriteReinstall => purpose == Purpose::Apply && install_api == InstallApi::Reinstall,
        Need::WriteLegacy => purpose == Purpose::Apply && install_api == InstallApi::Legacy,
        Need::Free => false,
    }
}

/// Compares `rules` with what ovhform calls for `purpose`.
///
/// `servers`: the service names the manifests name. Empty: a needed call must be granted for
/// any server (a rule like `/dedicated/server/*`); given: for each of them, so that keys whose
/// rules name servers one by one (`/dedicated/server/ns1.…/*`) are judged on the fleet they
/// serve. Method names compare case-insensitively.
pub fn assess(
    rules: &[AccessRule],
    purpose: Purpose,
    install_api: InstallApi,
    servers: &BTreeSet<String>,
) -> Assessment {
    let grants = |method: &str, subject: &str| {
        rules
            .iter()
            .any(|r| r.method.eq_ignore_ascii_case(method) && glob_matches(&r.path, subject))
    };
    let covered = |method: &str, template: &str| -> bool {
        let any = instantiate(template, &|_| None);
        if grants(method, &any) {
            return true;
        }
        if servers.is_empty() || !template.contains('{') {
            return false;
        }
        servers.iter().all(|sn| {
            let subject = instantiate(template, &|param| match param {
                "serviceName" => Some(sn.clone()),
                // The region part of a URN varies by endpoint.
                "resourceURN" => Some(format!("urn:v1:{ANY}:resource:dedicatedServer:{sn}")),
                _ => None,
            });
            grants(method, &subject)
        })
    };
    let mut out = Assessment::default();
    for (method, template, need) in ROUTES {
        if needed(*need, purpose, install_api) {
            if !covered(method, template) {
                out.missing.push(format!("{method} {template}"));
            }
        } else if purpose == Purpose::Plan
            && needed(*need, Purpose::Apply, install_api)
            && !covered(method, template)
        {
            out.missing_for_apply.push(format!("{method} {template}"));
        }
    }
    // A rule is within ovhform's use when every call it grants is one ovhform makes for this
    // purpose — at the granularity of [`minimal_rules`] for reads — or needs no rule.
    let mut within: Vec<AccessRule> = minimal_rules(purpose, install_api);
    within.extend(
        ROUTES
            .iter()
            .filter(|(_, _, need)| *need == Need::Free)
            .map(|(m, t, _)| AccessRule::new(m, &instantiate(t, &|_| Some("*".into())))),
    );
    for rule in rules {
        let as_subject: String = rule
            .path
            .chars()
            .map(|c| if c == '*' { ANY } else { c })
            .collect();
        let inside = within.iter().any(|w| {
            w.method.eq_ignore_ascii_case(&rule.method) && glob_matches(&w.path, &as_subject)
        });
        if !inside && !out.broader.contains(rule) {
            out.broader.push(rule.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[(&str, &str)]) -> Vec<AccessRule> {
        list.iter().map(|(m, p)| AccessRule::new(m, p)).collect()
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    #[test]
    fn globs_match_any_run_including_slashes() {
        assert!(glob_matches(
            "/dedicated/server/*",
            "/dedicated/server/ns1/boot/7"
        ));
        assert!(!glob_matches("/dedicated/server/*", "/dedicated/server"));
        assert!(glob_matches("/*", "/dedicated/server"));
        assert!(glob_matches(
            "/dedicated/server/*/reboot",
            "/dedicated/server/ns1/reboot"
        ));
        assert!(!glob_matches(
            "/dedicated/server/*/reboot",
            "/dedicated/server/ns1/reinstall"
        ));
        // A varying segment is matched only by a `*`.
        let any_server = format!("/dedicated/server/{ANY}/boot");
        assert!(glob_matches("/dedicated/server/*", &any_server));
        assert!(!glob_matches("/dedicated/server/ns1/*", &any_server));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("", "/x"));
    }

    #[test]
    fn the_minimal_rules_are_exactly_enough() {
        for purpose in [Purpose::Plan, Purpose::Apply] {
            for api in [InstallApi::Reinstall, InstallApi::Legacy] {
                let a = assess(&minimal_rules(purpose, api), purpose, api, &none());
                assert!(
                    a.missing.is_empty() && a.broader.is_empty(),
                    "{purpose:?} {api:?}: {a:?}"
                );
            }
        }
    }

    #[test]
    fn a_plan_key_lacks_the_writes_of_apply() {
        let plan_key = minimal_rules(Purpose::Plan, InstallApi::Reinstall);
        let a = assess(&plan_key, Purpose::Apply, InstallApi::Reinstall, &none());
        assert_eq!(
            a.missing,
            [
                "PUT /dedicated/server/{serviceName}",
                "POST /dedicated/server/{serviceName}/reboot",
                "POST /dedicated/server/{serviceName}/reinstall",
                "PUT /v2/iam/resource/{resourceURN}",
            ]
        );
        assert!(a.broader.is_empty());
        // For a plan, the same key is complete; what it could not apply is said apart.
        let a = assess(&plan_key, Purpose::Plan, InstallApi::Reinstall, &none());
        assert!(a.missing.is_empty());
        assert_eq!(a.missing_for_apply.len(), 4);
    }

    #[test]
    fn broader_rules_are_named() {
        let key = rules(&[
            ("GET", "/*"),
            ("POST", "/*"),
            ("PUT", "/*"),
            ("DELETE", "/*"),
        ]);
        let a = assess(&key, Purpose::Apply, InstallApi::Reinstall, &none());
        assert!(a.missing.is_empty(), "{a:?}");
        assert_eq!(a.broader, key);
        // An apply key is broader than a plan needs, rule by write rule.
        let apply_key = minimal_rules(Purpose::Apply, InstallApi::Reinstall);
        let a = assess(&apply_key, Purpose::Plan, InstallApi::Reinstall, &none());
        assert!(a.missing.is_empty());
        assert_eq!(a.broader, apply_key[2..]);
        // Catalogue and time reads need no rule but granting them is not broader.
        let key = rules(&[
            ("GET", "/dedicated/server"),
            ("get", "/dedicated/server/*"),
            ("GET", "/dedicated/installationTemplate/*"),
            ("GET", "/auth/currentCredential"),
        ]);
        let a = assess(&key, Purpose::Plan, InstallApi::Reinstall, &none());
        assert_eq!(
            a,
            Assessment {
                missing_for_apply: a.missing_for_apply.clone(),
                ..Default::default()
            }
        );
        // A write rule narrower than a server's whole tree is within use.
        let key = rules(&[("POST", "/dedicated/server/ns1/reboot")]);
        assert!(
            assess(&key, Purpose::Apply, InstallApi::Reinstall, &none())
                .broader
                .is_empty()
        );
        let key = rules(&[("POST", "/dedicated/server/*")]);
        assert_eq!(
            assess(&key, Purpose::Apply, InstallApi::Reinstall, &none()).broader,
            key
        );
    }

    #[test]
    fn per_server_rules_are_judged_on_the_fleet() {
        let key = rules(&[
            ("GET", "/dedicated/server"),
            ("GET", "/dedicated/server/ns1/*"),
            ("GET", "/dedicated/server/ns1"),
            ("GET", "/dedicated/server/ns2/*"),
            ("GET", "/dedicated/server/ns2"),
        ]);
        let fleet: BTreeSet<String> = ["ns1".to_string(), "ns2".to_string()].into();
        let a = assess(&key, Purpose::Plan, InstallApi::Reinstall, &fleet);
        assert!(a.missing.is_empty() && a.broader.is_empty(), "{a:?}");
        // Without the fleet (or with a server the rules leave out) the reads are missing.
        let a = assess(&key, Purpose::Plan, InstallApi::Reinstall, &none());
        assert_eq!(a.missing.len(), 8, "{a:?}");
        let more: BTreeSet<String> = ["ns1".to_string(), "ns3".to_string()].into();
        let a = assess(&key, Purpose::Plan, InstallApi::Reinstall, &more);
        assert!(
            a.missing
                .contains(&"GET /dedicated/server/{serviceName}/task".to_string())
        );
        assert!(!a.missing.contains(&"GET /dedicated/server".to_string()));
    }
}
