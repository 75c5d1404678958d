//! The daemon's desired state across manifest edits: the last valid state of the servers an
//! invalid edit affects is kept, the others follow the manifests.
//!
//! Owns: [`Manifests`] (the last good state per server), what "affected" means (a server
//! whose manifest file, or a group's file it belongs to, has an error), the fallback when the
//! files cannot even be told apart (keep everything). Must not touch: rendering diagnostics
//! (the caller logs [`LoadOutcome::Invalid`]'s summary), planning.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::manifest::{self, Diagnostics};
use crate::model::Desired;

/// What one load gave.
#[derive(Debug)]
pub enum LoadOutcome {
    /// Every manifest is valid.
    Valid,
    /// Some are not: `files` have errors; `kept` servers use their last valid state.
    Invalid {
        summary: String,
        rendered: String,
        files: Vec<PathBuf>,
        kept: BTreeSet<String>,
    },
}

/// The manifests path and the last valid desired state. A valid load is shared with the pass
/// that plans it (one copy of a 1,000-server desired state, not two).
pub struct Manifests {
    path: PathBuf,
    last_good: Option<Arc<Desired>>,
}

impl Manifests {
    pub fn new(path: impl Into<PathBuf>) -> Manifests {
        Manifests {
            path: path.into(),
            last_good: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the manifests. `None` only when they are invalid and no earlier load was valid
    /// (nothing to fall back on: the pass plans nothing).
    pub fn load(&mut self) -> (Option<Arc<Desired>>, LoadOutcome) {
        match manifest::load(std::slice::from_ref(&self.path)) {
            Ok(loaded) => {
                let desired = Arc::new(loaded.desired);
                self.last_good = Some(desired.clone());
                (Some(desired), LoadOutcome::Valid)
            }
            Err(diags) => {
                let (desired, outcome) = self.fallback(&diags);
                (desired, outcome)
            }
        }
    }

    /// The valid files alone, with the servers of the broken files (as last seen valid) put
    /// back; or the whole last valid state when the valid files do not load alone.
    fn fallback(&mut self, diags: &Diagnostics) -> (Option<Arc<Desired>>, LoadOutcome) {
        let broken: BTreeSet<PathBuf> = diags.errors().filter_map(|d| d.file.clone()).collect();
        let summary = diags.summary();
        let rendered = diags.render(false);
        let Some(last) = self.last_good.clone() else {
            return (
                None,
                LoadOutcome::Invalid {
                    summary,
                    rendered,
                    files: broken.into_iter().collect(),
                    kept: BTreeSet::new(),
                },
            );
        };
        let everything = |summary, rendered, broken: BTreeSet<PathBuf>| {
            let kept = last.servers.keys().cloned().collect();
            (
                Some(last.clone()),
                LoadOutcome::Invalid {
                    summary,
                    rendered,
                    files: broken.into_iter().collect(),
                    kept,
                },
            )
        };
        if broken.is_empty() {
            // An error not tied to a file (e.g. the directory vanished): keep it all.
            return everything(summary, rendered, broken);
        }
        let mut early = Vec::new();
        let files: Vec<PathBuf> =
            manifest::source::discover(std::slice::from_ref(&self.path), &mut early)
                .into_iter()
                .filter(|f| !broken.contains(f))
                .collect();
        let partial = match manifest::load(&files) {
            Ok(loaded) => loaded.desired,
            Err(_) => return everything(summary, rendered, broken),
        };
        // A server is affected when its own document, or a group it was in, came from a
        // broken file: it keeps its last valid spec whole (never half old, half new).
        let group_broken = |g: &str| {
            last.groups
                .get(g)
                .is_some_and(|grp| broken.contains(&grp.origin.file))
        };
        let mut desired = partial;
        let mut kept = BTreeSet::new();
        for (name, server) in &last.servers {
            let affected = broken.contains(&server.origin.file)
                || server.groups.iter().any(|g| group_broken(g));
            if affected {
                desired.servers.insert(name.clone(), server.clone());
                kept.insert(name.clone());
            }
        }
        for (name, group) in &last.groups {
            if broken.contains(&group.origin.file) {
                desired.groups.insert(name.clone(), group.clone());
            }
        }
        for (name, window) in &last.windows {
            desired
                .windows
                .entry(name.clone())
                .or_insert_with(|| window.clone());
        }
        (
            Some(Arc::new(desired)),
            LoadOutcome::Invalid {
                summary,
                rendered,
                files: broken.into_iter().collect(),
                kept,
            },
        )
    }
}
