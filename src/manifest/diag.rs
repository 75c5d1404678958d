//! Diagnostics of the manifest room: every error and warning `load` finds, each with a stable
//! code, file:line:column, a message saying what is wrong and a hint saying how to fix it.
//!
//! Owns: the code table ([`Code`]), one diagnostic ([`Diag`]) and the collection `load` returns
//! ([`Diagnostics`]), all renderable by miette. Must not touch: YAML or validation rules.
//! Codes are stable: tests and users grep for them; never renumber, only add.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode};

macro_rules! codes {
    ($( $variant:ident = $id:literal, $slug:literal, $hint:literal; )*) => {
        /// Every diagnostic code `load` can emit. `E` = error (blocks), `W` = warning.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $( $variant, )* }

        impl Code {
            /// All codes, in table order (docs/manifest.md lists each of them).
            pub const ALL: &'static [Code] = &[$( Code::$variant, )*];

            /// The short id, e.g. `E0301`.
            pub fn id(self) -> &'static str {
                match self { $( Code::$variant => $id, )* }
            }

            /// The stable slug, e.g. `hostname-invalid`.
            pub fn slug(self) -> &'static str {
                match self { $( Code::$variant => $slug, )* }
            }

            /// The default hint, used when a rule has nothing more specific to say.
            pub fn default_hint(self) -> &'static str {
                match self { $( Code::$variant => $hint, )* }
            }
        }
    };
}

codes! {
    // --- files and YAML ---------------------------------------------------------------------
    FileUnreadable = "E0101", "file-unreadable", "check that the path exists and is readable";
    FileTooLarge = "E0102", "file-too-large", "manifests and the files they reference must be at most 10 MiB; split the file";
    NotUtf8 = "E0103", "not-utf8", "save the file as UTF-8";
    SymlinkLoop = "E0104", "symlink-loop", "a symbolic link points (directly or not) to itself or to a directory above it; remove or fix the link";
    YamlSyntax = "E0105", "yaml-syntax", "fix the YAML syntax at this position (indentation, quotes, brackets)";
    YamlBudget = "E0106", "yaml-budget", "the document expands beyond safe limits (alias bomb, extreme nesting); write the values out instead of nesting aliases";
    NoManifests = "E0107", "no-manifests", "pass a .yaml/.yml file or a directory that contains some";
    NotAFile = "E0108", "not-a-file", "only regular files can be read (not devices, sockets or FIFOs)";
    // --- document structure -----------------------------------------------------------------
    NotAMapping = "E0201", "document-not-mapping", "a manifest document is a mapping with apiVersion, kind, metadata and spec";
    ApiVersion = "E0202", "api-version", "set `apiVersion: ovhform/v1`";
    UnknownKind = "E0203", "unknown-kind", "use one of the kinds Server, ServerGroup, MaintenanceWindow";
    UnknownField = "E0204", "unknown-field", "remove the field or fix its spelling (names are camelCase as in the OVHcloud API)";
    WrongType = "E0205", "wrong-type", "give a value of the expected type";
    MissingField = "E0206", "missing-field", "add the required field";
    InvalidEnum = "E0207", "invalid-value", "use one of the allowed values";
    DuplicateKey = "E0208", "duplicate-key", "a key may appear only once in a mapping; remove one of them";
    OutOfRange = "E0209", "out-of-range", "give a number within the allowed range";
    // --- names and values -------------------------------------------------------------------
    HostnameInvalid = "E0301", "hostname-invalid", "a hostname label has at most 63 characters, starts with a letter, ends with a letter or digit and holds only letters, digits and hyphens (RFC 1035 2.3.1)";
    HostnameTooLong = "E0302", "hostname-too-long", "a hostname has at most 255 characters";
    SshKeyInvalid = "E0303", "ssh-key-invalid", "give one OpenSSH public key line: `ssh-ed25519 AAAA… comment` (ssh-rsa, ssh-ed25519 or ecdsa-sha2-*)";
    ServiceNameInvalid = "E0304", "service-name-invalid", "use the OVHcloud service name of the server, e.g. ns3012345.ip-51-68-1.eu (lowercase letters, digits, dots, hyphens)";
    DuplicateServer = "E0305", "duplicate-server", "each server may have only one Server manifest; merge the two documents";
    FileMissing = "E0306", "file-missing", "the path is relative to the manifest that names it; check it exists";
    EnvUnset = "E0307", "env-unset", "export the environment variable before running ovhform";
    Base64Invalid = "E0308", "base64-invalid", "`base64:` takes standard base64 (A-Z a-z 0-9 + /, padded with =); or write the plain text and let ovhform encode it";
    SizeInvalid = "E0309", "size-invalid", "give a size as an integer number of MiB or with a binary unit, e.g. 512MiB, 20GiB, 2TiB";
    ValueSourceInvalid = "E0310", "value-source-invalid", "write a string, or exactly one of {file: PATH}, {file: PATH, sensitive: true}, {env: NAME}, {base64: DATA}";
    ImageChecksum = "E0311", "image-checksum", "give imageCheckSum and imageCheckSumType together; the checksum is hex of the length its type implies";
    UrlInvalid = "E0312", "url-invalid", "give an absolute http:// or https:// URL";
    DuplicateName = "E0313", "duplicate-name", "names of ServerGroups and MaintenanceWindows must be unique; rename or merge one";
    CustomizationInvalid = "E0314", "customization-invalid", "check the value against the OVHcloud reinstall customization rules";
    SecretInline = "E0315", "secret-inline", "httpHeaders values are credentials: give each as {env: NAME} or {file: PATH, sensitive: true}, so it stays out of git and of every output";
    // --- storage ----------------------------------------------------------------------------
    StorageMultipleConfigs = "E0401", "storage-multiple-configs", "the API installs on one disk group: give `storage` and `hardwareRaid` as single mappings; keep other disk groups with keepDiskGroups";
    MountpointPrefix = "E0402", "mountpoint-prefix", "a mount point starts with `/` or is `swap`";
    MountpointTrailingSlash = "E0403", "mountpoint-trailing-slash", "remove the trailing `/` (only the root mount point is `/`)";
    MountpointInvalid = "E0404", "mountpoint-invalid", "a mount point has at most 256 characters of [A-Za-z0-9/._-], in canonical form (no `//`, `/./`, `/../`)";
    MountpointForbidden = "E0405", "mountpoint-forbidden", "this directory cannot be a partition; choose another mount point";
    MountpointDuplicate = "E0406", "mountpoint-duplicate", "each mount point may appear once in the layout";
    RootMissing = "E0407", "root-missing", "add a partition with `mountPoint: /`";
    MultipleFill = "E0408", "multiple-fill", "only one partition may have `size: 0` (fill the rest); give the others a size";
    SwapRaid = "E0409", "swap-raid", "swap only accepts `raidLevel: 1` (there is one swap per disk, no real RAID); remove raidLevel or set 1";
    SwapMismatch = "E0410", "swap-mismatch", "a swap partition has `mountPoint: swap` and `fileSystem: swap`, both or neither, and a size other than 0";
    SoftRaidLevel = "E0411", "soft-raid-level", "software RAID levels are 0, 1, 5, 6, 7 and 10";
    RaidFsIncompatible = "E0412", "raid-fs-incompatible", "btrfs/ext3/ext4/xfs take RAID 0/1/5/6/10; zfs takes 0/1/5/6/7; ntfs and swap take 1";
    HardwareRaidLevel = "E0413", "hw-raid-level", "hardware RAID levels are 0, 1, 5, 6, 10, 50 and 60";
    HardwareRaidDisksArrays = "E0414", "hw-raid-disks-arrays", "the number of disks must be a multiple of the number of arrays";
    LvNameInvalid = "E0415", "lv-name-invalid", "an LVM logical volume name has 1 to 16 letters or digits and is not a reserved name";
    ZpoolNameInvalid = "E0416", "zpool-name-invalid", "a zpool name starts with a letter, holds only letters, digits, `_`, `:` and `.`, has at most 239 characters and is not reserved (mirror, raidz, draid, spare, log)";
    ZfsLvm = "E0417", "zfs-lvm", "ZFS cannot go on LVM: `extras.lv` only with btrfs/ext4/xfs, `extras.zp` only with zfs";
    KeepOsDiskGroup = "E0418", "keep-os-disk-group", "the disk group the OS goes on is always erased; remove it from keepDiskGroups or install on another diskGroupId";
    KeepDuplicate = "E0419", "keep-duplicate", "list each disk group once in keepDiskGroups";
    NoCustomPartitioning = "E0420", "no-custom-partitioning", "ufs and vmfs file systems cannot be used in a custom layout";
    LayoutEmpty = "E0421", "layout-empty", "give at least one partition, or remove `layout` to use the OS default scheme";
    DuplicateVolumeName = "E0422", "duplicate-volume-name", "each LV and zpool name may appear once in the layout";
    HardwareRaidPartitioningDisks = "E0423", "hw-raid-partitioning-disks", "with hardware RAID the disks appear as one virtual disk: remove partitioning.disks or set it to 1";
    // --- boot -------------------------------------------------------------------------------
    IpxeScriptMissing = "E0501", "ipxe-script-missing", "`mode: ipxe` needs `ipxeScript` (inline text or {file: PATH})";
    IpxeShebang = "E0502", "ipxe-shebang", "an iPXE script starts with the line `#!ipxe`";
    BootFieldMismatch = "E0503", "boot-field-mismatch", "ipxeScript goes with mode ipxe, rescue with mode rescue, network with mode network, bootId with mode bootId";
    BootFieldMissing = "E0504", "boot-field-missing", "`mode: network` needs `network: KERNEL`; `mode: bootId` needs `bootId: N`";
    BootLeaseInvalid = "E0505", "boot-lease-invalid", "give `for:` a duration such as `2h` (more than 0, at most 30 days) or `until:` a time with its offset such as `2026-12-01T10:00:00Z`, not both, and only with a temporary boot (rescue, network, ipxe, bootId): a disk boot needs no lease";
    // --- groups, windows, policy ------------------------------------------------------------
    UnknownWindow = "E0601", "unknown-maintenance-window", "define a MaintenanceWindow with this name or fix the reference";
    UnknownMember = "E0602", "unknown-group-member", "add a Server manifest for this service name, or give the group a template";
    GroupEmpty = "E0603", "group-without-members", "give the group `members:` or a `selector:`";
    MultipleTemplates = "E0604", "multiple-templates", "a server may belong to at most one ServerGroup that has a template";
    CronInvalid = "E0605", "cron-invalid", "give a 5-field cron expression, e.g. `0 2 * * 1-5` (minute hour day-of-month month day-of-week)";
    DurationInvalid = "E0606", "duration-invalid", "give a duration such as `2h`, `90m` or `1h 30m` (more than 0, at most 7 days)";
    TimeZoneInvalid = "E0607", "timezone-invalid", "give an IANA time zone name such as `Europe/Paris` or `UTC`";
    CronNeverFires = "E0608", "cron-never-fires", "a window that never opens blocks every reinstall it guards: pick days every chosen month has (no 30th in February, no 31st in April, June, September or November) or `L` for the last day of the month";
    TagSelectorInvalid = "E0609", "tag-selector-invalid", "a `matchTags` selector needs a `template` (its servers have no Server manifest), at least one tag, and no `matchLabels` beside it (a selector matches manifests or live tags, not both)";
    SelectorEmpty = "W0601", "selector-matches-nothing", "no Server manifest carries these labels; fix the selector or the labels";
}

impl Code {
    pub fn is_warning(self) -> bool {
        self.id().starts_with('W')
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id(), self.slug())
    }
}

/// A source file's text as miette wants it, shared by every diagnostic that points into it.
pub type Source = Arc<NamedSource<Arc<str>>>;

/// One error or warning.
#[derive(Clone)]
pub struct Diag {
    pub code: Code,
    pub message: String,
    pub hint: String,
    /// `None` only for problems with no file at all (e.g. no path given exists).
    pub file: Option<PathBuf>,
    /// 1-based; 0 when unknown (e.g. a file that could not be read).
    pub line: u32,
    pub column: u32,
    pub(crate) span: Option<(usize, usize)>,
    pub(crate) label: Option<String>,
    pub(crate) source: Option<Source>,
}

impl Diag {
    pub fn new(code: Code, message: impl Into<String>) -> Diag {
        Diag {
            code,
            message: message.into(),
            hint: code.default_hint().to_owned(),
            file: None,
            line: 0,
            column: 0,
            span: None,
            label: None,
            source: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diag {
        self.hint = hint.into();
        self
    }

    /// Drop the source snippet (for diagnostics about a value that must never be printed);
    /// the location stays in the message.
    pub fn hide_source(&mut self) {
        self.span = None;
        self.label = None;
        self.source = None;
    }

    pub fn severity(&self) -> Severity {
        if self.code.is_warning() {
            Severity::Warning
        } else {
            Severity::Error
        }
    }

    pub fn is_error(&self) -> bool {
        !self.code.is_warning()
    }

    /// `file:line:column`, or what is known of it.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), 0) => f.display().to_string(),
            (Some(f), l) => format!("{}:{}:{}", f.display(), l, self.column),
            (None, _) => "<no file>".to_owned(),
        }
    }

    /// Sort key: file, position, code (so output is deterministic whatever the load order).
    fn key(&self) -> (Option<&Path>, u32, u32, Code, &str) {
        (
            self.file.as_deref(),
            self.line,
            self.column,
            self.code,
            &self.message,
        )
    }
}

impl fmt::Debug for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} [{}] {}",
            self.location(),
            self.severity_word(),
            self.code,
            self.message
        )
    }
}

impl Diag {
    fn severity_word(&self) -> &'static str {
        if self.is_error() { "error" } else { "warning" }
    }
}

impl fmt::Display for Diag {
    /// With a source snippet, miette prints file:line:column in the snippet's header; without
    /// one (unreadable file, non-UTF-8), the message carries the location itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote manifest values and file names: escaped for the terminal.
        let message = crate::escape::line(&self.message);
        if self.span.is_some() && self.source.is_some() {
            write!(f, "{message}")
        } else {
            write!(f, "{}: {message}", crate::escape::line(&self.location()))
        }
    }
}

/// A label span that always lies inside the source (miette cannot render one that does not):
/// at least one byte when the text has any, never past its end.
pub fn clamp_span(text: &str, offset: usize, len: usize) -> (usize, usize) {
    if text.is_empty() {
        return (0, 0);
    }
    let mut off = offset.min(text.len() - 1);
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let mut end = (off + len.max(1)).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    (off, end - off)
}

/// Line and column (1-based; the column in characters) of a byte offset, counting only LF as
/// a line break — as editors, miette's snippets and CI annotations do. The YAML parser also
/// breaks lines at a lone CR: its line numbers can point below a file's last line.
pub fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Byte offset of a 1-based line and character column in `text` (for locations that come
/// without a byte offset).
pub fn offset_of(text: &str, line: u32, column: u32) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1) as usize)
                .map(|(b, _)| b)
                .unwrap_or(l.len());
            return off + col;
        }
        off += l.len();
    }
    text.len()
}

impl std::error::Error for Diag {}

impl Diagnostic for Diag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn severity(&self) -> Option<Severity> {
        Some(Diag::severity(self))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(crate::escape::line(&self.hint).into_owned()))
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_deref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (offset, len) = self.span?;
        self.source.as_ref()?;
        let label = self.label.as_deref().map_or_else(
            || self.code.slug().replace('-', " "),
            |l| crate::escape::line(l).into_owned(),
        );
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some(label),
            offset,
            len,
        ))))
    }
}

/// Everything `load` found: errors (which make it fail) and warnings (which do not).
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diag>,
    /// Some checks did not run because of an error found before them (see
    /// [`Diagnostics::checks_skipped`]).
    stopped_early: bool,
}

impl Diagnostics {
    pub fn new(mut items: Vec<Diag>) -> Diagnostics {
        items.sort_by(|a, b| a.key().cmp(&b.key()));
        // A group template is checked once per member; one report per place is enough.
        items.dedup_by(|a, b| a.key() == b.key());
        // A file holding an inline credential gets no snippets at all: the context lines of
        // any neighbouring diagnostic could print it.
        let tainted: BTreeSet<PathBuf> = items
            .iter()
            .filter(|d| d.code == Code::SecretInline)
            .filter_map(|d| d.file.clone())
            .collect();
        for d in &mut items {
            if d.file.as_ref().is_some_and(|f| tainted.contains(f)) {
                d.hide_source();
            }
        }
        Diagnostics {
            items,
            stopped_early: false,
        }
    }

    /// Marks that some checks were skipped because of the errors reported.
    pub fn stopped_early(mut self, stopped: bool) -> Diagnostics {
        self.stopped_early = stopped;
        self
    }

    /// Whether fixing the reported errors may reveal more: a file that could not be parsed is
    /// not checked further, nor a document whose kind or metadata is wrong, nor a server's
    /// values (files, environment) while its spec breaks a rule. `load` checks everything
    /// else it can, across every file.
    pub fn checks_skipped(&self) -> bool {
        self.stopped_early && self.error_count() > 0
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Diag> {
        self.items.iter()
    }
    pub fn errors(&self) -> impl Iterator<Item = &Diag> {
        self.items.iter().filter(|d| d.is_error())
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Diag> {
        self.items.iter().filter(|d| !d.is_error())
    }
    pub fn error_count(&self) -> usize {
        self.errors().count()
    }
    pub fn warning_count(&self) -> usize {
        self.len() - self.error_count()
    }
    pub fn into_vec(self) -> Vec<Diag> {
        self.items
    }

    /// One line: `3 errors, 1 warning in 2 files`.
    pub fn summary(&self) -> String {
        let files: std::collections::BTreeSet<_> =
            self.items.iter().filter_map(|d| d.file.as_ref()).collect();
        let e = self.error_count();
        let w = self.warning_count();
        format!(
            "{e} error{}, {w} warning{} in {} file{}",
            if e == 1 { "" } else { "s" },
            if w == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        )
    }

    /// Every diagnostic rendered by miette's graphical handler. `color: false` gives plain
    /// text (stable for snapshots and logs).
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        for d in &self.items {
            // Rendering into a String cannot fail; an fmt error would only truncate output.
            let _ = handler.render_report(&mut out, d);
        }
        out
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diag;
    type IntoIter = std::slice::Iter<'a, Diag>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid manifests: {}", self.summary())
    }
}

impl std::error::Error for Diagnostics {}

impl Diagnostic for Diagnostics {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("manifest-invalid"))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.items.iter().map(|d| d as &dyn Diagnostic)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut ids = std::collections::BTreeSet::new();
        let mut slugs = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(ids.insert(c.id()), "duplicate id {}", c.id());
            assert!(slugs.insert(c.slug()), "duplicate slug {}", c.slug());
            assert_eq!(c.id().len(), 5);
            assert!(c.id().starts_with('E') || c.id().starts_with('W'));
            assert!(!c.default_hint().is_empty());
        }
    }
}
