//! Proof that the suite reads nothing outside the repository. Run through `scripts/isolated.sh`
//! (as `scripts/test.sh` does), the repository's parent directory shows only the repository and
//! the toolchain paths the script mounted back (`OVHFORM_ISOLATED_KEEP`), so a test that reads
//! a sibling folder fails there. Run any other way, this test says that it checked nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

#[test]
fn only_the_repository_is_visible_when_isolated() {
    let repo = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).expect("repository path");
    if std::env::var("OVHFORM_ISOLATED").as_deref() != Ok("1") {
        eprintln!(
            "not running isolated: files beside {} are visible to the tests; run them through \
             scripts/isolated.sh (scripts/test.sh does) to prove none is read",
            repo.display()
        );
        return;
    }
    let parent = repo.parent().expect("the repository has a parent");
    let keep = std::env::var("OVHFORM_ISOLATED_KEEP").unwrap_or_default();
    let visible: Vec<PathBuf> = std::iter::once(repo.clone())
        .chain(keep.split(':').filter(|k| !k.is_empty()).map(PathBuf::from))
        .collect();

    // Every directory on the way from the parent to a visible path lists the next step only.
    let mut expected: BTreeMap<PathBuf, BTreeSet<OsString>> = BTreeMap::new();
    for path in &visible {
        let rel = path
            .strip_prefix(parent)
            .unwrap_or_else(|_| panic!("{} is not under {}", path.display(), parent.display()));
        let mut dir = parent.to_path_buf();
        for step in rel.components() {
            expected
                .entry(dir.clone())
                .or_default()
                .insert(step.as_os_str().to_owned());
            dir.push(step);
        }
    }
    // The parent must be the script's fresh tmpfs (not the host directory).
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let covered = mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let sep = f.iter().position(|x| *x == "-");
        f.get(4).is_some_and(|m| std::path::Path::new(m) == parent)
            && sep.is_some_and(|i| {
                f.get(i + 1) == Some(&"tmpfs") && f.get(i + 2) == Some(&"ovhform-isolated")
            })
    });
    assert!(
        covered,
        "{} is not covered by the isolation tmpfs",
        parent.display()
    );
    use std::os::unix::fs::MetadataExt;
    let tmpfs = std::fs::metadata(parent).expect("parent").dev();
    for (dir, names) in &expected {
        // Entries other tests create meanwhile in the tmpfs (their temp dirs, when the
        // repository lies in the temp directory) are the namespace's own, not the host's: only
        // an entry of another file system (a host directory mounted in) would be a leak.
        let seen: BTreeSet<OsString> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry"))
            .filter(|e| {
                names.contains(&e.file_name())
                    || e.metadata().map(|m| m.dev() != tmpfs).unwrap_or(true)
            })
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            &seen,
            names,
            "{} shows more than the repository and the kept toolchain paths {keep:?}",
            dir.display()
        );
    }
    assert!(
        repo.join("Cargo.toml").is_file(),
        "the repository itself is visible"
    );
}
