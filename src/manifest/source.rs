//! Finding and reading manifest files: directory recursion in a deterministic order, symlink
//! loop detection, the size cap, UTF-8, and YAML parsing (in parallel: it is the hot path of a
//! 10,000-server fleet).
//!
//! Owns: the file system side of loading. Must not touch: manifest semantics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

use super::build::{ReadError, read_capped};
use super::diag::{Code, Diag};
use super::node::{self, Node};

/// Linux `ELOOP`.
const ELOOP: i32 = 40;

fn file_diag(code: Code, path: &Path, message: impl Into<String>) -> Diag {
    let mut d = Diag::new(code, message);
    d.file = Some(path.to_path_buf());
    d
}

/// Identity of a file, to load a file reached through several links once. (dev, inode) costs
/// nothing (the metadata is already there), unlike canonicalizing 10,000 paths.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(_path: &Path, meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(path: &Path, _meta: &std::fs::Metadata) -> FileId {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .hash(&mut h);
    (0, h.finish())
}

fn is_manifest(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Expands the command line paths into manifest files: files as given, directories searched
/// recursively for `.yaml`/`.yml` in byte order of names (so every machine loads in the same
/// order), hidden entries (`.git`, …) skipped. A file reached twice (through a link) counts once.
pub fn discover(paths: &[PathBuf], diags: &mut Vec<Diag>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                let before = out.len();
                walk(p, &mut vec![canon], &mut out, &mut seen, diags);
                if out.len() == before {
                    diags.push(file_diag(
                        Code::NoManifests,
                        p,
                        format!("no .yaml or .yml files under {}", p.display()),
                    ));
                }
            }
            Ok(m) => {
                if seen.insert(file_id(p, &m)) {
                    out.push(p.clone());
                }
            }
            Err(e) if e.raw_os_error() == Some(ELOOP) => {
                diags.push(file_diag(
                    Code::SymlinkLoop,
                    p,
                    format!("{}: symbolic link loop", p.display()),
                ));
            }
            Err(e) => {
                diags.push(file_diag(
                    Code::FileUnreadable,
                    p,
                    format!("{}: {e}", p.display()),
                ));
            }
        }
    }
    out
}

fn walk(
    dir: &Path,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<PathBuf>,
    seen: &mut std::collections::HashSet<FileId>,
    diags: &mut Vec<Diag>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            diags.push(file_diag(
                Code::FileUnreadable,
                dir,
                format!("{}: {e}", dir.display()),
            ));
            return;
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = dir.join(&name);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                let canon = match std::fs::canonicalize(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        diags.push(file_diag(
                            Code::FileUnreadable,
                            &path,
                            format!("{}: {e}", path.display()),
                        ));
                        continue;
                    }
                };
                if ancestors.contains(&canon) {
                    diags.push(file_diag(
                        Code::SymlinkLoop,
                        &path,
                        format!("{} links back to {}", path.display(), canon.display()),
                    ));
                    continue;
                }
                ancestors.push(canon);
                walk(&path, ancestors, out, seen, diags);
                ancestors.pop();
            }
            Ok(m) if is_manifest(&path) => {
                if seen.insert(file_id(&path, &m)) {
                    out.push(path);
                }
            }
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(ELOOP) => {
                diags.push(file_diag(
                    Code::SymlinkLoop,
                    &path,
                    format!("{}: symbolic link loop", path.display()),
                ));
            }
            Err(e) if is_manifest(&path) => {
                // A dangling link named like a manifest is a manifest the user lost.
                diags.push(file_diag(
                    Code::FileUnreadable,
                    &path,
                    format!("{}: {e}", path.display()),
                ));
            }
            Err(_) => {}
        }
    }
}

/// One manifest file, read and parsed.
pub struct Parsed {
    pub source: Option<super::diag::Source>,
    pub docs: Vec<Node>,
    pub diag: Option<Diag>,
}

pub fn parse_file(path: &Path, index: u32) -> Parsed {
    let bytes = match read_capped(path) {
        Ok(b) => b,
        Err(e) => {
            let code = match e {
                ReadError::Missing { .. } => Code::FileUnreadable,
                ref other => other.code(),
            };
            return Parsed {
                source: None,
                docs: Vec::new(),
                diag: Some(file_diag(code, path, e.reason())),
            };
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // The valid prefix is UTF-8 by definition, so this never falls back.
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or("");
            let (line, column) = super::diag::line_col(prefix, valid);
            let mut d = file_diag(
                Code::NotUtf8,
                path,
                format!("byte {valid} (0x{:02x}) is not valid UTF-8", bytes[valid]),
            );
            d.line = line;
            d.column = column;
            return Parsed {
                source: None,
                docs: Vec::new(),
                diag: Some(d),
            };
        }
    };
    let text: Arc<str> = Arc::from(text);
    let source =
        // Diagnostics quote this text on a terminal or in CI logs: control and bidi characters
        // are masked one `?` per byte, so the spans into it stay right.
        Arc::new(
            NamedSource::new(
                crate::escape::line(&path.display().to_string()),
                match crate::escape::mask_same_length(&text) {
                    std::borrow::Cow::Borrowed(_) => text.clone(),
                    std::borrow::Cow::Owned(masked) => Arc::from(masked),
                },
            )
            .with_language("yaml"),
        );
    match node::parse_documents(&text, index) {
        Ok(docs) => Parsed {
            source: Some(source),
            docs,
            diag: None,
        },
        Err(e) => {
            let code = if e.duplicate_key {
                Code::DuplicateKey
            } else if e.budget {
                Code::YamlBudget
            } else {
                Code::YamlSyntax
            };
            let mut d = file_diag(code, path, e.message);
            if e.loc.line > 0 {
                d.line = e.loc.line;
                d.column = e.loc.column;
                let off = if e.loc.offset == 0 && (e.loc.line, e.loc.column) != (1, 1) {
                    super::diag::offset_of(&text, e.loc.line, e.loc.column)
                } else {
                    e.loc.offset
                };
                let span = super::diag::clamp_span(&text, off, e.loc.len);
                let (line, column) = super::diag::line_col(&text, span.0);
                if line != d.line {
                    (d.line, d.column) = (line, column);
                }
                d.span = Some(span);
                d.source = Some(source.clone());
            }
            Parsed {
                source: Some(source),
                docs: Vec::new(),
                diag: Some(d),
            }
        }
    }
}

/// Parses all files, on as many threads as the machine has (parsing dominates load time).
pub fn parse_all(files: &[PathBuf]) -> Vec<Parsed> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(files.len() / 32 + 1);
    if threads <= 1 {
        return files
            .iter()
            .enumerate()
            .map(|(i, p)| parse_file(p, i as u32))
            .collect();
    }
    let mut slots: Vec<Option<Parsed>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..files.len())
                        .step_by(threads)
                        .map(|i| (i, parse_file(&files[i], i as u32)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A panicking parser thread would be a bug in a dependency; its files are then
            // reported as unreadable below instead of taking the whole run down.
            if let Ok(results) = h.join() {
                for (i, p) in results {
                    slots[i] = Some(p);
                }
            }
        }
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.unwrap_or_else(|| Parsed {
                source: None,
                docs: Vec::new(),
                diag: Some(file_diag(
                    Code::FileUnreadable,
                    &files[i],
                    "internal error while parsing this file",
                )),
            })
        })
        .collect()
}
