//! `ovhform import`: write manifests for the servers of a live account, so that an existing
//! fleet comes under ovhform by adoption — `plan` over the result adopts every server and
//! changes nothing.
//!
//! Owns: the command's flags, reading the account (one listing and the boots' kernels, within
//! the client's request budget), writing the files (never over existing ones without
//! `--force`), and checking the result loads as valid manifests. Must not touch: what the
//! manifests say (`import.rs`, pure), planning, the state store: import records nothing — the
//! first `apply` adopts.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};

use crate::cli::api::ApiArgs;
use crate::cli::render::escape;
use crate::cli::runtime;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["servers", "all"])))]
pub struct Args {
    /// Import these servers (service names); repeatable.
    #[arg(long = "servers", value_name = "SERVER", num_args = 1..)]
    pub servers: Vec<String>,
    /// Import every server of the account.
    #[arg(long)]
    pub all: bool,
    /// Directory to write the manifests into (created if needed).
    #[arg(long, value_name = "DIR", default_value = "manifests")]
    pub out: PathBuf,
    /// Overwrite files that already exist there.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(args: Args) -> miette::Result<ExitCode> {
    let client = args
        .api
        .client()
        .into_diagnostic()
        .wrap_err("cannot set up the OVHcloud API client")?;
    let meter = crate::ovh::Meter::new();
    let metered = client.metered(&meter);
    let rt = runtime()?;
    eprintln!("reading the account's servers…");
    let observed = rt.block_on(async {
        let only: Option<BTreeSet<String>> =
            (!args.all).then(|| args.servers.iter().cloned().collect());
        let listing = metered.servers(only.as_ref()).await?;
        let names: BTreeSet<String> = listing
            .servers
            .keys()
            .chain(listing.refused.keys())
            .cloned()
            .collect();
        eprintln!("{} servers listed; resolving their boots…", names.len());
        crate::observe::observe_fleet_from(&metered, &names, Some(listing)).await
    });
    let observed = observed
        .into_diagnostic()
        .wrap_err("cannot read the account's servers")?;
    let names: Vec<String> = if args.all {
        observed.servers.keys().cloned().collect()
    } else {
        args.servers.clone()
    };
    let import = crate::import::manifests(&observed, &names);
    if import.servers == 0 {
        for (name, why) in &import.skipped {
            eprintln!("{}", escape::line(&format!("skipped {name}: {why}")));
        }
        return Err(miette!(
            help = "check the service names (`--servers`) or the credentials' access rules",
            "nothing to import"
        ));
    }

    let existing: Vec<String> = import
        .files
        .iter()
        .map(|(p, _)| args.out.join(p))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(miette!(
            help = "import into an empty directory (`--out DIR`), or pass --force to overwrite",
            "{} of the files to write already exist: {}",
            existing.len(),
            existing.join(", ")
        ));
    }
    for (path, text) in &import.files {
        let path = args.out.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    }
    // The files must say what they were meant to: load them back. A failure here is a bug of
    // import, reported as such rather than left for the first plan to find.
    if let Err(diags) = crate::manifest::load(std::slice::from_ref(&args.out)) {
        let shown: Vec<String> = diags.iter().take(5).map(|d| d.to_string()).collect();
        return Err(miette!(
            help = "this is a bug of `ovhform import`; please report it with the lines above",
            "the imported manifests in {} do not validate:\n{}",
            args.out.display(),
            shown.join("\n")
        ));
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Imported {} servers into {} ({} API calls):",
        import.servers,
        args.out.display(),
        meter.total()
    );
    for (group, os, n) in &import.groups {
        let _ = writeln!(
            out,
            "  groups/{group}.yaml   ServerGroup {group}: {n} servers on {os}"
        );
    }
    let alone = import.servers - import.groups.iter().map(|g| g.2).sum::<usize>();
    if alone > 0 {
        let _ = writeln!(
            out,
            "  servers/*.yaml        {alone} servers on an OS of their own"
        );
    }
    for (name, what) in &import.omitted {
        let _ = writeln!(
            out,
            "{}",
            escape::line(&format!("  left out of {name}: {what}"))
        );
    }
    for (name, why) in &import.skipped {
        let _ = writeln!(
            out,
            "{}",
            escape::line(&format!("  not imported: {name}: {why}"))
        );
    }
    let _ = writeln!(
        out,
        "The API does not return what a server was installed with (customizations such as\n\
         hostname, SSH key and scripts; the partitioning): each manifest has commented\n\
         placeholders for them. Next: `ovhform plan --manifests {}` adopts every server and\n\
         changes nothing; `ovhform apply` then records them.",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
