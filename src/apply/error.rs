//! Errors of the apply room: what stopped one server's actions. One enum, with the server
//! and the step in every variant, carried typed to the CLI edge (miette renders it).

use crate::ovh;
use crate::state::StateError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    #[error("{server}: {step} failed: {source}")]
    #[diagnostic(
        code(ovhform::apply::api),
        help(
            "the server's other actions were not run; re-run `ovhform plan` to see where it stands"
        )
    )]
    Api {
        server: String,
        step: &'static str,
        #[source]
        source: ovh::Error,
    },

    #[error("{server}: {step}: the state store failed: {source}")]
    #[diagnostic(
        code(ovhform::apply::state),
        help("nothing more is done to this server until its record can be written")
    )]
    State {
        server: String,
        step: &'static str,
        #[source]
        source: StateError,
    },

    #[error("{server}: the reinstall task {task} ended {status}{detail}")]
    #[diagnostic(
        code(ovhform::apply::install_failed),
        help(
            "the server is degraded (its disks may be erased); a new reinstall needs an explicit \
             --allow-wipe after you checked why it failed"
        )
    )]
    InstallFailed {
        server: String,
        task: u64,
        status: String,
        /// The failing step, its error and the task's comment, with whose side it is.
        detail: String,
    },

    #[error("{server}: task {task} ({function}) ended {status}")]
    #[diagnostic(code(ovhform::apply::task_failed))]
    TaskFailed {
        server: String,
        task: u64,
        function: String,
        status: String,
    },

    #[error("{server}: stopped waiting for task {task} after {waited}: it may still be running")]
    #[diagnostic(
        code(ovhform::apply::timeout),
        help(
            "not a failure: the task goes on at OVHcloud. The next `ovhform apply` re-attaches to \
             it (its intent is kept in the journal); raise --timeout to wait longer"
        )
    )]
    StoppedWaiting {
        server: String,
        task: u64,
        waited: String,
    },

    #[error("{server}: {message}")]
    #[diagnostic(code(ovhform::apply::refused))]
    Refused { server: String, message: String },

    #[error("{server}: an intent cannot be resolved: {reason}")]
    #[diagnostic(
        code(ovhform::apply::unresolved),
        help(
            "nothing is POSTed for this server until a person resolves its intent (see docs/apply.md, \"Unresolved intents\")"
        )
    )]
    Unresolved { server: String, reason: String },
}

impl ApplyError {
    pub fn server(&self) -> &str {
        match self {
            ApplyError::Api { server, .. }
            | ApplyError::State { server, .. }
            | ApplyError::InstallFailed { server, .. }
            | ApplyError::TaskFailed { server, .. }
            | ApplyError::StoppedWaiting { server, .. }
            | ApplyError::Refused { server, .. }
            | ApplyError::Unresolved { server, .. } => server,
        }
    }
}
