//! `ovhform import`'s pure half: the live servers, as observed, written out as manifests that
//! describe them exactly — so that `plan` over them adopts each server and changes nothing.
//!
//! Owns: choosing the files (a `ServerGroup` per OS shared by several servers, the servers'
//! own boot and settings beside it, an iPXE script in its own file) and their text, with
//! placeholders for what the API cannot return. Must not touch: I/O (the CLI reads the account
//! and writes the files), planning, validation (the CLI loads the result back through
//! `manifest::load` before it says anything was imported).
//!
//! Everything here comes from the API and is hostile: names become file names only when they
//! are service names, kernels only when they are plain words, and every value is written as a
//! JSON string (a valid YAML double-quoted scalar), so no value can end a line, open a comment
//! or add a key. A value that cannot be written faithfully is left out and said so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::model::{BootType, Observed, ObservedServer};

/// The manifests of an import, and what it could not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Import {
    /// Relative paths (under the output directory) and their contents, in writing order.
    pub files: Vec<(PathBuf, String)>,
    /// Groups made: name, OS, member count.
    pub groups: Vec<(String, String, usize)>,
    /// Servers imported.
    pub servers: usize,
    /// Servers not imported, with why.
    pub skipped: Vec<(String, String)>,
    /// What was left out of an imported server (a boot or setting that cannot be written).
    pub omitted: Vec<(String, String)>,
}

const HEADER: &str = "# Written by `ovhform import` from the live server. As written, `ovhform plan` adopts\n\
# the server (records a baseline) and changes nothing on it.\n";

const PLACEHOLDERS: &str =
    "    # The API does not return what the server was installed with. What a future reinstall
    # should use goes here; adding it after adoption changes the install spec, so the next
    # plan proposes a reinstall (which still needs an explicit approval):
    # customizations:
    #   hostname: web-01
    #   sshKey: \"ssh-ed25519 AAAA… ops@example\"
    #   postInstallationScript: {file: ../scripts/bootstrap.sh}
    # storage:                      # the partitioning as installed cannot be read either
    #   diskGroupId: 1
    #   partitioning: {layout: [{mountPoint: /, fileSystem: ext4, size: 0}]}
";

/// The manifests describing `servers` (names of `observed.servers`) as they run.
pub fn manifests(observed: &Observed, servers: &[String]) -> Import {
    let mut out = Import::default();
    let mut by_os: BTreeMap<&str, Vec<&ObservedServer>> = BTreeMap::new();
    for name in servers {
        let Some(s) = observed.servers.get(name) else {
            out.skipped
                .push((name.clone(), "not in the account".to_string()));
            continue;
        };
        if let Some(problem) = crate::manifest::load::service_name_problem(&s.name) {
            out.skipped.push((
                crate::escape::line(&s.name).into_owned(),
                format!("the API's name is not a service name ({problem})"),
            ));
            continue;
        }
        if let Some(a) = s.anomalies.first() {
            out.skipped.push((s.name.clone(), a.clone()));
            continue;
        }
        if !crate::observe::is_template_name(&s.os) {
            out.skipped
                .push((s.name.clone(), "its OS is not a template name".to_string()));
            continue;
        }
        by_os.entry(s.os.as_str()).or_default().push(s);
    }
    for (os, members) in &by_os {
        let grouped = members.len() >= 2;
        let group = group_name(os);
        if grouped {
            out.groups
                .push((group.clone(), os.to_string(), members.len()));
            out.files.push((
                PathBuf::from(format!("groups/{group}.yaml")),
                group_text(&group, os, members),
            ));
        }
        let mut text = String::new();
        for (i, s) in members.iter().enumerate() {
            if i > 0 {
                text.push_str("---\n");
            }
            let (doc, script) = server_text(s, (!grouped).then_some(*os), &mut out.omitted);
            text.push_str(&doc);
            if let Some(script) = script {
                out.files
                    .push((PathBuf::from(format!("ipxe/{}.ipxe", s.name)), script));
            }
            out.servers += 1;
        }
        let file = if grouped {
            format!("servers/{group}.yaml")
        } else {
            format!("servers/{}.yaml", members[0].name)
        };
        out.files.push((PathBuf::from(file), text));
    }
    out
}

/// `debian12_64` → `debian12-64`: a group per OS, named after it.
fn group_name(os: &str) -> String {
    os.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// A value as a YAML double-quoted scalar: JSON's escaping is a subset of YAML's.
fn q(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_string())
}

fn group_text(group: &str, os: &str, members: &[&ObservedServer]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by `ovhform import`: the {} servers that run {os}. Each member's own\n\
         # manifest (servers/{group}.yaml) holds what differs per server: boot and settings.\n\
         apiVersion: ovhform/v1\nkind: ServerGroup\nmetadata:\n  name: {group}\nspec:\n  members:",
        members.len()
    );
    for m in members {
        let _ = writeln!(t, "    - {}", m.name);
    }
    let _ = write!(
        t,
        "  template:\n    install:\n      os: {}\n{}    policy:\n      reinstall: manual\n",
        q(os),
        PLACEHOLDERS
            .replace("\n    ", "\n      ")
            .replacen("    #", "      #", 1)
    );
    t
}

/// One server's manifest document, and its iPXE script when it boots one.
fn server_text(
    s: &ObservedServer,
    os: Option<&str>,
    omitted: &mut Vec<(String, String)>,
) -> (String, Option<String>) {
    let mut t = String::from(HEADER);
    let _ = writeln!(
        t,
        "apiVersion: ovhform/v1\nkind: Server\nmetadata:\n  name: {}\nspec:",
        s.name
    );
    if let Some(os) = os {
        let _ = write!(t, "  install:\n    os: {}\n{PLACEHOLDERS}", q(os));
    }
    let mut script = None;
    match boot_text(s) {
        Ok((text, ipxe)) => {
            t.push_str(&text);
            script = ipxe;
        }
        Err(why) => omitted.push((s.name.clone(), why)),
    }
    t.push_str("  settings:\n");
    if let Some(p) = s.efi_bootloader_path.as_deref().filter(|p| !p.is_empty()) {
        let _ = writeln!(t, "    efiBootloaderPath: {}", q(p));
    }
    let _ = writeln!(t, "    monitoring: {}", s.monitoring);
    let _ = writeln!(t, "    noIntervention: {}", s.no_intervention);
    if let Some(m) = s.rescue_mail.as_deref().filter(|m| !m.is_empty()) {
        if m.contains('@') {
            let _ = writeln!(t, "    rescueMail: {}", q(m));
        } else {
            omitted.push((
                s.name.clone(),
                "rescueMail: the live value is not an e-mail address".into(),
            ));
        }
    }
    if let Some(k) = s.rescue_ssh_key.as_deref().filter(|k| !k.is_empty()) {
        if crate::manifest::build::ssh_key_problem(k).is_ok() {
            let _ = writeln!(t, "    rescueSshKey: {}", q(k));
        } else {
            omitted.push((
                s.name.clone(),
                "rescueSshKey: the live value is not a valid SSH public key".into(),
            ));
        }
    }
    if let Some(r) = s.root_device.as_deref().filter(|r| !r.is_empty()) {
        let _ = writeln!(t, "    rootDevice: {}", q(r));
    }
    if os.is_some() {
        t.push_str("  policy:\n    reinstall: manual\n");
    }
    (t, script)
}

/// The `boot:` block (by kernel name, never a region-specific id) and the iPXE script's text,
/// or why the server's boot cannot be written.
fn boot_text(s: &ObservedServer) -> Result<(String, Option<String>), String> {
    if let Some(script) = &s.boot_script {
        if !script.starts_with("#!ipxe") {
            return Err(
                "boot: the live iPXE script does not start with `#!ipxe`, which a manifest requires"
                    .into(),
            );
        }
        let text = format!(
            "  boot:\n    mode: ipxe\n    ipxeScript: {{file: ../ipxe/{}.ipxe}}\n",
            s.name
        );
        return Ok((text, Some(script.clone())));
    }
    let Some(b) = &s.boot else {
        return match s.boot_id {
            Some(1) => Ok(("  boot:\n    mode: disk\n".into(), None)),
            _ => Err("boot: the current boot could not be resolved to a kernel".into()),
        };
    };
    let plain = |k: &str| {
        !k.is_empty()
            && k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match b.boot_type {
        BootType::Harddisk => Ok(("  boot:\n    mode: disk\n".into(), None)),
        BootType::Rescue if plain(&b.kernel) => Ok((
            format!(
                "  boot:\n    # In rescue now: a lease (`for: 2h`) would return it to disk by itself.\n    mode: rescue\n    rescue: {}\n",
                b.kernel
            ),
            None,
        )),
        BootType::Network if plain(&b.kernel) => Ok((
            format!("  boot:\n    mode: network\n    network: {}\n", b.kernel),
            None,
        )),
        _ => Err(format!(
            "boot: a {:?} boot has no manifest mode by kernel name",
            b.boot_type
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Netboot;
    use crate::plan::testkit;

    fn fleet() -> Observed {
        let mut o = Observed::default();
        for (name, os) in [
            ("ns1.eu", "debian12_64"),
            ("ns2.eu", "debian12_64"),
            ("ns3.eu", "alma9_64"),
        ] {
            let mut s = testkit::observed_server(name, os);
            s.detail = None;
            o.servers.insert(name.into(), s);
        }
        o
    }

    #[test]
    fn servers_sharing_an_os_form_a_group_and_the_others_stand_alone() {
        let o = fleet();
        let names: Vec<String> = o.servers.keys().cloned().collect();
        let i = manifests(&o, &names);
        let paths: Vec<String> = i
            .files
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "servers/ns3.eu.yaml",
                "groups/debian12-64.yaml",
                "servers/debian12-64.yaml"
            ]
        );
        assert_eq!(i.groups, [("debian12-64".into(), "debian12_64".into(), 2)]);
        assert_eq!(i.servers, 3);
    }

    #[test]
    fn hostile_values_cannot_break_out_of_their_scalar() {
        let mut o = fleet();
        let s = o.servers.get_mut("ns3.eu").unwrap();
        s.efi_bootloader_path = Some("\\efi\"\n  evil: true\n# x".into());
        s.boot = Some(Netboot {
            id: 9,
            boot_type: BootType::Rescue,
            kernel: "rescue\nmode: disk".into(),
            description: String::new(),
        });
        s.name = "NS3.eu/../../etc".into();
        let i = manifests(&o, &["ns3.eu".to_string()]);
        assert_eq!(i.servers, 0, "a name that is not a service name is skipped");
        let s = o.servers.get_mut("ns3.eu").unwrap();
        s.name = "ns3.eu".into();
        let i = manifests(&o, &["ns3.eu".to_string()]);
        let text = &i.files[0].1;
        assert!(
            text.contains("efiBootloaderPath: \"\\\\efi\\\"\\n  evil: true\\n# x\""),
            "{text}"
        );
        assert!(!text.contains("\n  evil"), "{text}");
        assert!(!text.contains("rescue: rescue"), "{text}");
        assert_eq!(i.omitted.len(), 1, "{:?}", i.omitted);
    }
}
