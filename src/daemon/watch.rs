//! The manifest watcher: file-system events under the manifests path become
//! [`Reason::Manifests`] triggers (debounced by [`super::trigger`], not here).
//!
//! Owns: what is watched — the manifests tree (recursively, through its symlink if it is one)
//! and its parent directory for the path itself being replaced (git-sync swaps a symlink
//! atomically; `mv new manifests` replaces a directory) — and which events count (writes,
//! creations, removals, renames; not reads, not hidden files or editor backups). Must not
//! touch: loading manifests, deciding when a pass runs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::{EventKind, RecursiveMode, Watcher as _};

use super::trigger::{Reason, TriggerSender};

/// A live watch; dropping it stops watching.
pub struct ManifestWatch {
    watcher: Mutex<notify::RecommendedWatcher>,
    path: PathBuf,
    /// The directory the recursive watch is on (the symlink's target when `path` is one).
    target: Mutex<Option<PathBuf>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", path.display())]
pub struct WatchError {
    pub path: PathBuf,
    #[source]
    pub source: notify::Error,
}

impl ManifestWatch {
    /// Watches `path` (a directory, a file, or a symlink to either) and its parent.
    pub fn start(path: &Path, triggers: TriggerSender) -> Result<Arc<ManifestWatch>, WatchError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let parent = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let own = path.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(event) = res else {
                // An overflowed or failed watch may have missed a change: a pass re-reads all.
                triggers.send(Reason::Manifests { events: 1 });
                return;
            };
            if counts(&event, &own, &parent) {
                triggers.send(Reason::Manifests { events: 1 });
            }
        })
        .map_err(|source| WatchError {
            path: path.clone(),
            source,
        })?;
        let watch = Arc::new(ManifestWatch {
            watcher: Mutex::new(watcher),
            path: path.clone(),
            target: Mutex::new(None),
        });
        if let Some(parent) = path.parent() {
            watch
                .lock()
                .watch(parent, RecursiveMode::NonRecursive)
                .map_err(|source| WatchError {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
        watch.refresh()?;
        Ok(watch)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, notify::RecommendedWatcher> {
        self.watcher.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-resolves the path and moves the recursive watch when it now leads elsewhere (a
    /// swapped symlink, a replaced directory). Called before every pass.
    pub fn refresh(&self) -> Result<(), WatchError> {
        let resolved = std::fs::canonicalize(&self.path).ok();
        let mut target = self.target.lock().unwrap_or_else(PoisonError::into_inner);
        // inotify watches an inode: a directory replaced under the same name needs a new
        // watch even when its canonical path is the same.
        if let Some(old) = target.take() {
            let _ = self.lock().unwatch(&old);
        }
        if let Some(new) = resolved {
            self.lock()
                .watch(&new, RecursiveMode::Recursive)
                .map_err(|source| WatchError {
                    path: new.clone(),
                    source,
                })?;
            *target = Some(new);
        }
        Ok(())
    }
}

/// Whether an event may change what the manifests say.
fn counts(event: &notify::Event, own: &Path, parent: &Path) -> bool {
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    event.paths.iter().any(|p| {
        // In the parent directory only the manifests path itself matters.
        if p.parent() == Some(parent) && p != own {
            return false;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let hidden = name.starts_with('.') && p != own;
        !hidden && !name.ends_with('~')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind};

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_changes_to_manifests_count() {
        let own = Path::new("/repo/manifests");
        let parent = Path::new("/repo");
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(counts(
            &event(modify, "/repo/manifests/a.yaml"),
            own,
            parent
        ));
        assert!(counts(
            &event(EventKind::Create(CreateKind::Any), "/repo/manifests"),
            own,
            parent
        ));
        assert!(!counts(&event(modify, "/repo/README.md"), own, parent));
        assert!(!counts(
            &event(EventKind::Access(AccessKind::Any), "/repo/manifests/a.yaml"),
            own,
            parent
        ));
        assert!(!counts(
            &event(modify, "/repo/manifests/.a.yaml.swp"),
            own,
            parent
        ));
        assert!(!counts(
            &event(modify, "/repo/manifests/a.yaml~"),
            own,
            parent
        ));
    }
}
