//! `--credentials-dir DIR`: where credentials an installation creates are kept, when asked.
//!
//! Owns: preparing the directory (created 0700; an existing one must not be open to group or
//! others) and writing one credential as a file (0600, atomically). Must not touch: where
//! credentials come from, and any terminal: a credential is never printed, logged or put in
//! an event.
//!
//! Where they would come from: OVHcloud returns the accesses an installation created (a
//! panel's or the OS's user and password) from `POST /dedicated/server/{serviceName}/
//! authenticationSecret` (`dedicated.server.Access[]`), a route that takes only OAuth2
//! authorization-code credentials; neither the reinstall task nor `install/status` carries
//! them. ovhform's client and simulator do not call that route yet, so nothing is written
//! until they do (docs/apply.md "Credentials"): no credential is ever invented.

use std::path::{Path, PathBuf};

use crate::escape;
use crate::state::{self, StateError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CredentialsError {
    #[error("--credentials-dir {}: not a directory", path.display())]
    #[diagnostic(
        code(ovhform::apply::credentials_not_dir),
        help("point --credentials-dir at a directory (it is created when missing)")
    )]
    NotADirectory { path: PathBuf },

    #[error("cannot create --credentials-dir {}: {source}", path.display())]
    #[diagnostic(code(ovhform::apply::credentials_create))]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("--credentials-dir {} is readable by other users (mode {mode:o})", path.display())]
    #[diagnostic(
        code(ovhform::apply::credentials_open),
        help("credentials must stay private: `chmod 700` the directory, or use a new one")
    )]
    TooOpen { path: PathBuf, mode: u32 },

    #[error("cannot write a credential of {server}: {source}")]
    #[diagnostic(code(ovhform::apply::credentials_write))]
    Write {
        server: String,
        #[source]
        source: StateError,
    },
}

/// A prepared credentials directory.
#[derive(Debug)]
pub struct CredentialsDir {
    path: PathBuf,
}

impl CredentialsDir {
    /// Creates the directory (0700) if missing; refuses one that is not a directory or that
    /// group or others can enter — before anything is applied, not after an install.
    pub fn prepare(path: &Path) -> Result<CredentialsDir, CredentialsError> {
        if path.exists() && !path.is_dir() {
            return Err(CredentialsError::NotADirectory {
                path: path.to_path_buf(),
            });
        }
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(path).map_err(|source| CredentialsError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|source| CredentialsError::Create {
                    path: path.to_path_buf(),
                    source,
                })?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(CredentialsError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        Ok(CredentialsDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one credential of `server` as `<server>.<name>` (0600, atomically). Both parts
    /// are reduced to `[A-Za-z0-9._-]`, so an API-provided name cannot leave the directory.
    pub fn write(
        &self,
        server: &str,
        name: &str,
        secret: &[u8],
    ) -> Result<PathBuf, CredentialsError> {
        let file = self
            .path
            .join(format!("{}.{}", file_part(server), file_part(name)));
        state::write_atomic(&file, secret).map_err(|source| CredentialsError::Write {
            server: escape::line(server).into_owned(),
            source,
        })?;
        Ok(file)
    }

    /// What the run did with the directory, said at the end.
    pub fn status_line(&self) -> String {
        format!(
            "credentials directory {}: nothing written: the installs ovhform starts return no \
             credentials through the API surface it uses (see docs/apply.md \"Credentials\")",
            escape::line(&self.path.display().to_string())
        )
    }
}

/// A name safe as (part of) a file name: no separator, no leading dot, never empty.
fn file_part(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_directory_is_private_and_files_are_0600() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("creds/nested");
        let c = CredentialsDir::prepare(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        // A hostile name stays inside the directory.
        let f = c.write("../../etc/passwd", "ssh\n", b"test value").unwrap();
        assert_eq!(f.parent(), Some(dir.as_path()));
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read(&f).unwrap(), b"test value");

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            CredentialsDir::prepare(&open),
            Err(CredentialsError::TooOpen { .. })
        ));
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(
            CredentialsDir::prepare(&file),
            Err(CredentialsError::NotADirectory { .. })
        ));
    }

    #[test]
    fn file_parts_cannot_escape() {
        assert_eq!(file_part(".."), "_..");
        assert_eq!(file_part(""), "_");
        assert_eq!(file_part("a/b c"), "a_b_c");
    }
}
