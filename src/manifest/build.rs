//! From a validated raw server spec to the plain desired state: values resolved (files read
//! relative to their manifest, environment read, scripts base64-encoded), the exact
//! `dedicated.server.Reinstall` body built, its secret and credential paths listed, its
//! fingerprint taken (by `public.rs`).
//!
//! Owns: value resolution and content checks (SSH key, iPXE script, base64, URL), the request
//! body and which of its paths are secrets or credentials. Must not touch: YAML,
//! cross-document rules, the public form and fingerprint (`public.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::diag::Code;
use super::node::Loc;
use super::raw::{
    BootModeKind, DriftKind, FileSystem, RawInstall, RawServerSpec, RebootKind, ReinstallKind,
    Sink, Sp, ValueSource,
};
use crate::model::{
    BootLease, BootMode, BootSpec, DriftAction, DriftPolicy, InstallSpec, Policy, RebootPolicy,
    ReinstallPolicy, Settings,
};

/// Largest manifest or referenced file ovhform reads: far above any real script or manifest,
/// small enough that a hostile file fails fast instead of eating memory.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Linux `ELOOP`: too many levels of symbolic links.
const ELOOP: i32 = 40;

/// Why a file could not be read, mapped to a diagnostic code by the caller.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: no such file")]
    Missing { path: PathBuf },
    #[error("{path}: symbolic link loop")]
    SymlinkLoop { path: PathBuf },
    /// No size in it: the file may be a secret (`sensitive`, a script), whose length is not
    /// shown.
    #[error("{path}: more than the 10 MiB limit")]
    TooLarge { path: PathBuf },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
}

impl ReadError {
    /// The message without the path, for diagnostics already located at that file.
    pub fn reason(&self) -> String {
        match self {
            ReadError::Missing { .. } => "no such file".to_owned(),
            ReadError::SymlinkLoop { .. } => "symbolic link loop".to_owned(),
            ReadError::TooLarge { .. } => "more than the 10 MiB limit".to_owned(),
            ReadError::NotAFile { .. } => "not a regular file".to_owned(),
            ReadError::Io { message, .. } => message.clone(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            ReadError::Missing { .. } => Code::FileMissing,
            ReadError::SymlinkLoop { .. } => Code::SymlinkLoop,
            ReadError::TooLarge { .. } => Code::FileTooLarge,
            ReadError::NotAFile { .. } => Code::NotAFile,
            ReadError::Io { .. } => Code::FileUnreadable,
        }
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> ReadError {
    let path = path.to_path_buf();
    if e.raw_os_error() == Some(ELOOP) {
        ReadError::SymlinkLoop { path }
    } else if e.kind() == std::io::ErrorKind::NotFound {
        ReadError::Missing { path }
    } else {
        ReadError::Io {
            path,
            message: e.to_string(),
        }
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`], never blocking on FIFOs or devices and
/// never reading more than the cap (the file may grow while we read).
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let f = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_error(path, &e))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

/// How a resolved value is used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// A text field; files are trimmed of trailing newlines (an editor's final newline is not
    /// part of an SSH key or a header).
    Text,
    /// A script the API wants base64-encoded.
    Script,
    /// An iPXE script, sent byte-exact.
    Exact,
}

struct Resolved {
    value: String,
    secret: bool,
}

/// Resolves value references; caches files so that 10,000 servers sharing one script read it
/// once.
pub struct Resolver {
    cache: HashMap<PathBuf, Result<Arc<Vec<u8>>, ReadError>>,
}

impl Resolver {
    pub fn new() -> Resolver {
        Resolver {
            cache: HashMap::new(),
        }
    }

    fn read(&mut self, path: &Path) -> Result<Arc<Vec<u8>>, ReadError> {
        if let Some(r) = self.cache.get(path) {
            return r.clone();
        }
        let r = read_capped(path).map(Arc::new);
        self.cache.insert(path.to_path_buf(), r.clone());
        r
    }

    fn resolve(
        &mut self,
        v: &Sp<ValueSource>,
        how: Use,
        allow_secret: bool,
        sink: &mut Sink,
    ) -> Option<Resolved> {
        let (bytes, secret, from_file) = match &v.value {
            ValueSource::Inline(s) => (s.clone().into_bytes(), false, false),
            ValueSource::Env(name) => {
                if !allow_secret {
                    sink.error_hint(
                        Code::ValueSourceInvalid,
                        name.loc,
                        "`{env: …}` is only allowed in install customizations",
                        "secrets are tracked only in the reinstall request; write the value or use {file: PATH}",
                    );
                    return None;
                }
                match std::env::var_os(&name.value) {
                    Some(val) => match val.into_string() {
                        Ok(s) => (s.into_bytes(), true, false),
                        Err(_) => {
                            sink.error(
                                Code::NotUtf8,
                                name.loc,
                                format!("environment variable {} is not UTF-8", name.value),
                            );
                            return None;
                        }
                    },
                    None => {
                        sink.error(
                            Code::EnvUnset,
                            name.loc,
                            format!("environment variable {} is not set", name.value),
                        );
                        return None;
                    }
                }
            }
            ValueSource::File { path, sensitive } => {
                if *sensitive && !allow_secret {
                    sink.error(
                        Code::ValueSourceInvalid,
                        path.loc,
                        "`sensitive` files are only allowed in install customizations",
                    );
                    return None;
                }
                let full = relative_to(sink, path.loc, &path.value);
                match self.read(&full) {
                    Ok(b) => (b.as_ref().clone(), *sensitive, true),
                    Err(e) => {
                        let msg = match &e {
                            ReadError::Missing { .. } => format!(
                                "file `{}` not found (resolved to {})",
                                path.value,
                                full.display()
                            ),
                            other => other.to_string(),
                        };
                        sink.error(e.code(), path.loc, msg);
                        return None;
                    }
                }
            }
            ValueSource::Base64(data) => {
                // Line breaks are common in pasted base64; they carry no data.
                let compact: String = data
                    .value
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                match STANDARD.decode(compact.as_bytes()) {
                    Ok(b) => (b, false, false),
                    Err(e) => {
                        sink.error(
                            Code::Base64Invalid,
                            data.loc,
                            format!("not valid base64: {e}"),
                        );
                        return None;
                    }
                }
            }
        };
        let value = match how {
            Use::Script => STANDARD.encode(&bytes),
            Use::Text | Use::Exact => match String::from_utf8(bytes) {
                Ok(mut s) => {
                    if how == Use::Text && from_file {
                        let keep = s.trim_end_matches(['\n', '\r']).len();
                        s.truncate(keep);
                    }
                    s
                }
                Err(_) => {
                    sink.error(Code::NotUtf8, v.loc, "this value must be UTF-8 text");
                    return None;
                }
            },
        };
        Some(Resolved { value, secret })
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new()
    }
}

/// A path written in a manifest, resolved against the directory of that manifest.
fn relative_to(sink: &Sink, loc: Loc, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let base = sink
        .files
        .get(loc.file as usize)
        .and_then(|f| f.path.parent())
        .unwrap_or(Path::new(""));
    base.join(p)
}

/// OpenSSH public key syntax: `TYPE BASE64 [COMMENT]`, where the base64 blob decodes and
/// starts with the same key type (as `ssh-keygen -l` would check).
pub fn ssh_key_problem(key: &str) -> Result<(), String> {
    let key = key.trim();
    // A private key given by mistake must be refused without quoting any of it.
    if key.contains("PRIVATE KEY") {
        return Err(
            "this is a PRIVATE key: give the public key (the .pub file), and remove the private \
             key from the manifests"
                .to_owned(),
        );
    }
    if key.contains('\n') {
        return Err("give one key, not several lines".to_owned());
    }
    let mut parts = key.split_whitespace();
    let (Some(kind), Some(body)) = (parts.next(), parts.next()) else {
        return Err("an SSH public key is `TYPE BASE64 [COMMENT]`".to_owned());
    };
    let known = kind == "ssh-rsa" || kind == "ssh-ed25519" || kind.starts_with("ecdsa-sha2-nistp");
    if !known {
        // Quote a short prefix at most: the value may come from a file nobody meant to print.
        let shown: String = kind.chars().take(20).collect();
        let more = if kind.chars().count() > 20 { "…" } else { "" };
        return Err(format!(
            "key type `{shown}{more}` is not ssh-rsa, ssh-ed25519 or ecdsa-sha2-*"
        ));
    }
    let blob = STANDARD
        .decode(body)
        .map_err(|e| format!("the key body is not valid base64: {e}"))?;
    let inner = blob
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|n| blob.get(4..4 + n));
    match inner {
        Some(t) if t == kind.as_bytes() => Ok(()),
        Some(t) => Err(format!(
            "the key body is a `{}` key, not `{kind}`",
            String::from_utf8_lossy(t)
        )),
        None => Err("the key body is truncated".to_owned()),
    }
}

/// The canonical JSON lives with the fingerprint it feeds; re-exported for existing callers.
pub use super::public::canonical_json;

/// JSON pointer escaping of one key (RFC 6901).
fn pointer_key(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Everything `build` produces for one server.
pub struct Built {
    pub install: Option<InstallSpec>,
    pub boot: Option<BootSpec>,
    pub settings: Settings,
    pub policy: Policy,
}

pub fn server(spec: &RawServerSpec, resolver: &mut Resolver, sink: &mut Sink) -> Built {
    let install = spec
        .install
        .as_ref()
        .and_then(|i| install(i, resolver, sink));
    let boot = spec.boot.as_ref().and_then(|b| {
        let mode = match b.mode.as_ref()?.value {
            BootModeKind::Disk => BootMode::Disk,
            BootModeKind::Rescue => BootMode::Rescue {
                kernel: b
                    .rescue
                    .as_ref()
                    .map(|r| r.value.clone())
                    .unwrap_or_else(|| "rescue-customer".to_owned()),
            },
            BootModeKind::Network => BootMode::Network {
                kernel: b.network.as_ref()?.value.clone(),
            },
            BootModeKind::BootId => BootMode::BootId {
                id: b.boot_id.as_ref()?.value,
            },
            BootModeKind::Ipxe => {
                let src = b.ipxe_script.as_ref()?;
                let script = resolver.resolve(src, Use::Exact, false, sink)?.value;
                if !script.starts_with("#!ipxe") {
                    let first = script
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(40)
                        .collect::<String>();
                    sink.error(
                        Code::IpxeShebang,
                        src.loc,
                        format!("the iPXE script starts with `{first}`, not `#!ipxe`"),
                    );
                    return None;
                }
                BootMode::Ipxe { script }
            }
        };
        let reboot = match b.reboot.as_ref().map(|r| r.value) {
            None | Some(RebootKind::Never) => RebootPolicy::Never,
            Some(RebootKind::OnChange) => RebootPolicy::OnChange,
        };
        // Validation reported a bad lease; an unparsable one is dropped with its error.
        let lease = match (&b.lease_for, &b.lease_until) {
            (Some(f), _) => Some(BootLease::For {
                secs: super::validate::lease_secs(&f.value).ok()?,
            }),
            (None, Some(u)) => Some(BootLease::Until {
                at: super::validate::lease_until(&u.value).ok()?,
            }),
            (None, None) => None,
        };
        Some(BootSpec {
            mode,
            reboot,
            lease,
        })
    });
    let settings = spec
        .settings
        .as_ref()
        .map(|s| Settings {
            efi_bootloader_path: s.efi_bootloader_path.as_ref().map(|v| v.value.clone()),
            monitoring: s.monitoring.as_ref().map(|v| v.value),
            no_intervention: s.no_intervention.as_ref().map(|v| v.value),
            rescue_mail: s.rescue_mail.as_ref().map(|v| v.value.clone()),
            rescue_ssh_key: s.rescue_ssh_key.as_ref().map(|v| v.value.clone()),
            root_device: s.root_device.as_ref().map(|v| v.value.clone()),
        })
        .unwrap_or_default();
    let policy = spec
        .policy
        .as_ref()
        .map(|p| {
            let d = |k: &Option<Sp<DriftKind>>| match k.as_ref().map(|k| k.value) {
                None | Some(DriftKind::Warn) => DriftAction::Warn,
                Some(DriftKind::Ignore) => DriftAction::Ignore,
                Some(DriftKind::Correct) => DriftAction::Correct,
            };
            let drift = p
                .drift
                .as_ref()
                .map(|dr| DriftPolicy {
                    boot: d(&dr.boot),
                    settings: d(&dr.settings),
                    install: d(&dr.install),
                })
                .unwrap_or_default();
            Policy {
                reinstall: match p.reinstall.as_ref().map(|r| r.value) {
                    None | Some(ReinstallKind::Manual) => ReinstallPolicy::Manual,
                    Some(ReinstallKind::Auto) => ReinstallPolicy::Auto,
                    Some(ReinstallKind::Never) => ReinstallPolicy::Never,
                },
                drift,
                maintenance_window: p.maintenance_window.as_ref().map(|w| w.value.clone()),
                suspend: p.suspend.as_ref().map(|s| s.value).unwrap_or(false),
            }
        })
        .unwrap_or_default();
    Built {
        install,
        boot,
        settings,
        policy,
    }
}

fn install(i: &RawInstall, resolver: &mut Resolver, sink: &mut Sink) -> Option<InstallSpec> {
    let before = sink.error_count();
    let mut secret_paths = BTreeSet::new();
    let mut credential_paths = BTreeSet::new();
    let mut request = Map::new();
    let os = i.os.as_ref()?;
    request.insert("operatingSystem".into(), json!(os.value));

    if let Some(c) = &i.customizations {
        let mut cm = Map::new();
        let mut put =
            |cm: &mut Map<String, Value>, key: &str, v: Option<Resolved>, always_secret: bool| {
                if let Some(r) = v {
                    if r.secret || always_secret {
                        secret_paths.insert(format!("/customizations/{key}"));
                    }
                    cm.insert(key.into(), Value::String(r.value));
                }
            };
        if let Some(h) = &c.hostname {
            cm.insert("hostname".into(), json!(h.value));
        }
        if let Some(k) = &c.ssh_key {
            let r = resolver.resolve(k, Use::Text, true, sink);
            if let Some(r) = &r
                && let Err(msg) = ssh_key_problem(&r.value)
            {
                // The details quote the key; a secret key gets the rule, not its content.
                let msg = if r.secret {
                    "the secret value is not a valid SSH public key".to_owned()
                } else {
                    msg
                };
                sink.error(Code::SshKeyInvalid, k.loc, msg);
            }
            put(&mut cm, "sshKey", r, false);
        }
        if let Some(s) = &c.post_installation_script {
            let r = resolver.resolve(s, Use::Script, true, sink);
            put(&mut cm, "postInstallationScript", r, true);
        }
        if let Some(e) = &c.post_installation_script_extension {
            cm.insert(
                "postInstallationScriptExtension".into(),
                json!(e.value.as_str()),
            );
        }
        if let Some(l) = &c.language {
            cm.insert("language".into(), json!(l.value.as_str()));
        }
        if let Some(u) = &c.config_drive_user_data {
            let r = resolver.resolve(u, Use::Script, true, sink);
            put(&mut cm, "configDriveUserData", r, true);
        }
        if let Some(p) = &c.efi_bootloader_path {
            cm.insert("efiBootloaderPath".into(), json!(p.value));
        }
        if let Some(u) = &c.image_url {
            let r = resolver.resolve(u, Use::Text, true, sink);
            if let Some(r) = &r
                && !(r.value.starts_with("https://") || r.value.starts_with("http://"))
            {
                let shown = if r.secret {
                    "(secret value)".to_owned()
                } else {
                    format!("`{}`", r.value)
                };
                sink.error(
                    Code::UrlInvalid,
                    u.loc,
                    format!("imageURL {shown} is not an http(s) URL"),
                );
            }
            put(&mut cm, "imageURL", r, false);
        }
        if let Some(t) = &c.image_type {
            cm.insert("imageType".into(), json!(t.value.as_str()));
        }
        if let Some(s) = &c.image_checksum {
            cm.insert("imageCheckSum".into(), json!(s.value.trim()));
        }
        if let Some(t) = &c.image_checksum_type {
            cm.insert("imageCheckSumType".into(), json!(t.value.as_str()));
        }
        if let Some(b) = &c.enable_lacp_bonding {
            cm.insert("enableLacpBonding".into(), json!(b.value));
        }
        if let Some(v) = &c.version {
            cm.insert("version".into(), json!(v.value));
        }
        for (key, map, always_secret) in [
            ("httpHeaders", &c.http_headers, true),
            ("configDriveMetadata", &c.config_drive_metadata, false),
            ("nutanixConfiguration", &c.nutanix_configuration, false),
        ] {
            let Some(map) = map else { continue };
            let mut m = Map::new();
            for (k, v) in &map.0 {
                if let Some(r) = resolver.resolve(v, Use::Text, true, sink) {
                    let path = format!("/customizations/{key}/{}", pointer_key(&k.value));
                    if key == "httpHeaders" {
                        credential_paths.insert(path.clone());
                    }
                    if r.secret || always_secret {
                        secret_paths.insert(path);
                    }
                    m.insert(k.value.clone(), Value::String(r.value));
                }
            }
            cm.insert(key.into(), Value::Object(m));
        }
        if !cm.is_empty() {
            request.insert("customizations".into(), Value::Object(cm));
        }
    }

    let mut os_disk_group = None;
    let mut keep_disk_groups = BTreeSet::new();
    if let Some(st) = &i.storage {
        let st = &st.0;
        let mut storage = Vec::new();
        let mut os_entry = Map::new();
        if let Some(d) = &st.disk_group_id {
            os_entry.insert("diskGroupId".into(), json!(d.value));
            os_disk_group = Some(d.value).filter(|&d| d != 0);
        }
        if let Some(hw) = &st.hardware_raid {
            let hw = &hw.0;
            let mut h = Map::new();
            // raidLevel defaults to 1 in the API; sent explicitly so the body says what it does.
            h.insert(
                "raidLevel".into(),
                json!(hw.raid_level.as_ref().map(|l| l.value).unwrap_or(1)),
            );
            for (k, v) in [
                ("arrays", &hw.arrays),
                ("disks", &hw.disks),
                ("spares", &hw.spares),
            ] {
                if let Some(v) = v {
                    h.insert(k.into(), json!(v.value));
                }
            }
            os_entry.insert("hardwareRaid".into(), json!([Value::Object(h)]));
        }
        if let Some(p) = &st.partitioning {
            let mut pm = Map::new();
            if let Some(d) = &p.disks {
                pm.insert("disks".into(), json!(d.value));
            }
            if let Some(s) = &p.scheme_name {
                pm.insert("schemeName".into(), json!(s.value));
            }
            if let Some(layout) = &p.layout {
                let parts: Vec<Value> = layout
                    .value
                    .iter()
                    .map(|part| {
                        let mut m = Map::new();
                        m.insert("mountPoint".into(), json!(part.mount_point.value));
                        m.insert("fileSystem".into(), json!(part.file_system.value.as_str()));
                        // Omitted raidLevel means 1 to the API, so 0 must be explicit; we
                        // always send it. Same for size (0 = fill).
                        m.insert(
                            "raidLevel".into(),
                            json!(part.raid_level.as_ref().map(|l| l.value).unwrap_or(1)),
                        );
                        m.insert(
                            "size".into(),
                            json!(part.size.as_ref().map(|s| s.value.0).unwrap_or(0)),
                        );
                        if let Some(ex) = &part.extras {
                            let mut e = Map::new();
                            if let Some(lv) = &ex.lv {
                                e.insert("lv".into(), json!({"name": lv.name.value}));
                            }
                            if let Some(zp) = &ex.zp {
                                e.insert("zp".into(), json!({"name": zp.name.value}));
                            }
                            m.insert("extras".into(), Value::Object(e));
                        }
                        debug_assert!(
                            part.file_system.value != FileSystem::Swap
                                || part.mount_point.value == "swap"
                        );
                        Value::Object(m)
                    })
                    .collect();
                pm.insert("layout".into(), Value::Array(parts));
            }
            os_entry.insert("partitioning".into(), Value::Object(pm));
        }
        if !os_entry.is_empty() {
            storage.push(Value::Object(os_entry));
        }
        if let Some(keep) = &st.keep_disk_groups {
            keep_disk_groups = keep.value.iter().map(|k| k.value).collect();
            // Sorted: the order the user listed them in is not part of what is sent.
            for k in &keep_disk_groups {
                storage.push(json!({"diskGroupId": k, "erase": false}));
            }
        }
        if !storage.is_empty() {
            request.insert("storage".into(), Value::Array(storage));
        }
    }

    if sink.error_count() > before {
        return None;
    }
    let request = Value::Object(request);
    let fingerprint = super::public::fingerprint(&request, &secret_paths);
    Some(InstallSpec {
        os: os.value.clone(),
        request,
        fingerprint,
        algorithm: super::public::FINGERPRINT_ALGORITHM,
        generation: i.generation.as_ref().map(|g| g.value).unwrap_or(0),
        os_disk_group,
        keep_disk_groups,
        secret_paths,
        credential_paths,
    })
}

/// Dotted field paths → where each value was written, for the planner's messages
/// (`spec.install.storage.partitioning.layout.0.size`).
pub fn field_origins(
    prefix: &str,
    node: &super::node::Node,
    files: &[super::raw::SourceFile],
    out: &mut BTreeMap<String, crate::model::Origin>,
) {
    let mut path = String::with_capacity(96);
    path.push_str(prefix);
    origins_into(&mut path, node, files, out);
}

fn origins_into(
    path: &mut String,
    node: &super::node::Node,
    files: &[super::raw::SourceFile],
    out: &mut BTreeMap<String, crate::model::Origin>,
) {
    use super::node::Value as V;
    use std::fmt::Write as _;
    let at = node.anchor();
    if let Some(f) = files.get(at.file as usize) {
        out.insert(
            path.clone(),
            crate::model::Origin {
                file: f.path.clone(),
                line: at.line,
                column: at.column,
            },
        );
    }
    let len = path.len();
    match &node.value {
        V::Map(entries) => {
            for (k, v) in entries {
                if let Some(k) = k.as_str() {
                    path.push('.');
                    path.push_str(k);
                    origins_into(path, v, files, out);
                    path.truncate(len);
                }
            }
        }
        V::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                // Writing into a String cannot fail.
                let _ = write!(path, ".{i}");
                origins_into(path, v, files, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNtXYuPwxcCK174vy6JaPpL0xp7VdERNtnmwx6DVvx0 ops@example";

    /// Regression (issue 12, secrets): a file over the cap was refused with its size, and a
    /// `{file: …, sensitive: true}` value or a script file is a secret whose length is not shown.
    #[test]
    fn regression_a_file_over_the_cap_is_refused_without_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.txt");
        let size = MAX_FILE_BYTES + 4_321;
        std::fs::File::create(&path).unwrap().set_len(size).unwrap();
        let e = read_capped(&path).unwrap_err();
        assert_eq!(e.code(), Code::FileTooLarge);
        for shown in [e.to_string(), e.reason()] {
            assert!(!shown.contains(&size.to_string()), "{shown}");
            assert!(shown.contains("10 MiB"), "{shown}");
        }
        assert!(!format!("{e:?}").contains(&size.to_string()));
    }

    #[test]
    fn ssh_keys() {
        assert_eq!(ssh_key_problem(ED), Ok(()));
        assert!(ssh_key_problem("ssh-dss AAAAB3NzaC1kc3M= x").is_err());
        assert!(ssh_key_problem("ssh-ed25519 not_base64!").is_err());
        // An RSA blob announced as ed25519.
        assert!(ssh_key_problem("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x").is_err());
        assert!(ssh_key_problem("ssh-ed25519").is_err());
        let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUTOPSECRET\n-----END OPENSSH PRIVATE KEY-----\n";
        let msg = ssh_key_problem(private).unwrap_err();
        assert!(
            msg.contains("PRIVATE") && !msg.contains("TOPSECRET"),
            "{msg}"
        );
        let long = format!("{} AAAA", "x".repeat(200));
        assert!(ssh_key_problem(&long).unwrap_err().len() < 100);
    }
}
