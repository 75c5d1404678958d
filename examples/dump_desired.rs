//! Prints the desired state `ovhform::manifest::load` builds from a manifest tree, as JSON
//! (`cargo run --example dump_desired -- manifests/`). Handy for the simulator fleet and docs.
fn main() {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let paths = if paths.is_empty() {
        vec!["manifests".into()]
    } else {
        paths
    };
    match ovhform::manifest::load(&paths) {
        Ok(l) => println!(
            "{}",
            serde_json::to_string_pretty(&l.desired).unwrap_or_default()
        ),
        Err(d) => {
            eprint!("{}", d.render(false));
            std::process::exit(1);
        }
    }
}
