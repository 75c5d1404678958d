//! Why a pipeline run failed, typed to the CLI edge: every variant keeps its source error (the
//! API's status, path and query id live there) and says what to do about it (`help`).

use std::fmt;

use crate::observe::ObserveError;
use crate::ovh;
use crate::plan::LintError;
use crate::state::StateError;

/// Which part of the fleet pass failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetStep {
    /// Listing the servers that carry ovhform's record tag (those whose manifest may be gone).
    TaggedServers,
    /// Reading the servers of the plan (the expanded listing, or its fallbacks).
    Servers { count: usize },
}

impl fmt::Display for FleetStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetStep::TaggedServers => f.write_str("list the servers ovhform manages (IAM tags)"),
            FleetStep::Servers { count } => write!(f, "observe the {count} servers of the plan"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The record store could not be read.
    #[error(transparent)]
    State(#[from] StateError),

    #[error("cannot {step}")]
    Observe {
        step: FleetStep,
        #[source]
        source: ObserveError,
    },

    #[error("cannot read the details of the {servers} servers the plan may change")]
    Detail {
        servers: usize,
        #[source]
        source: ObserveError,
    },

    #[error("cannot read the installation templates {}", names.join(", "))]
    Templates {
        names: Vec<String>,
        #[source]
        source: ObserveError,
    },

    /// The planner produced a plan that breaks its own invariants: a bug, never shown as a plan.
    #[error(
        "internal error: the plan failed {} of its consistency checks, so it is not shown:\n{}",
        problems.len(),
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Lint { problems: Vec<LintError> },
}

impl PipelineError {
    /// The API error underneath, if any (for callers that react to a status).
    pub fn api_error(&self) -> Option<&ovh::Error> {
        match self {
            PipelineError::Observe { source, .. }
            | PipelineError::Detail { source, .. }
            | PipelineError::Templates { source, .. } => match source {
                ObserveError::Api(e) => Some(e),
            },
            PipelineError::State(_) | PipelineError::Lint { .. } => None,
        }
    }
}

impl miette::Diagnostic for PipelineError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            PipelineError::State(e) => miette::Diagnostic::code(e),
            PipelineError::Observe { .. } => Some(Box::new("ovhform::pipeline::observe")),
            PipelineError::Detail { .. } => Some(Box::new("ovhform::pipeline::detail")),
            PipelineError::Templates { .. } => Some(Box::new("ovhform::pipeline::templates")),
            PipelineError::Lint { .. } => Some(Box::new("ovhform::pipeline::lint")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            PipelineError::State(e) => miette::Diagnostic::help(e),
            PipelineError::Observe { source, .. }
            | PipelineError::Detail { source, .. }
            | PipelineError::Templates { source, .. } => Some(Box::new(observe_help(source))),
            PipelineError::Lint { .. } => Some(Box::new(
                "please report this as a bug, with the manifests and the output of `ovhform plan -vv`",
            )),
        }
    }
}

/// What to do about a failed read, by what failed.
fn observe_help(e: &ObserveError) -> &'static str {
    let ObserveError::Api(e) = e;
    match e {
        ovh::Error::Api(a) => match a.status {
            401 | 403 => {
                "check the credentials (flags, OVH_* variables or ovh.conf; see docs/operations.md \
                 \"Credentials\") and that the consumer key or service account may GET \
                 /dedicated/server/*"
            }
            429 => "the API is throttling this key: wait a minute, or lower --requests-per-minute",
            500..=599 => {
                "the OVHcloud API failed; plan again later, and give OVH support the \
                 X-Ovh-QueryId above if it persists"
            }
            _ => {
                "the API refused the request; the error above names the path, status and \
                 X-Ovh-QueryId"
            }
        },
        ovh::Error::Transport { .. } | ovh::Error::Timeout { .. } => {
            "check --endpoint (or OVH_ENDPOINT) and the network; --timeout and --retries set \
             how patient each request is"
        }
        ovh::Error::OAuth2 { .. } => {
            "check the service account's client id and secret (OVH_CLIENT_ID, OVH_CLIENT_SECRET)"
        }
        ovh::Error::Config { .. } => "fix the configuration named above",
        ovh::Error::TooLarge { .. } => {
            "check --endpoint (or OVH_ENDPOINT) and any proxy in between: the OVHcloud API does \
             not send answers this large"
        }
        ovh::Error::Decode { .. } => {
            "the API answered something ovhform does not understand; please report it with the \
             X-Ovh-QueryId above"
        }
        ovh::Error::Build(_) | ovh::Error::Legacy(_) | ovh::Error::UnsafePath { .. } => {
            "please report this as a bug"
        }
    }
}

#[cfg(test)]
mod tests {
    use miette::Diagnostic;

    use super::*;

    #[test]
    fn help_follows_the_cause() {
        let e = PipelineError::Observe {
            step: FleetStep::Servers { count: 3 },
            source: ObserveError::Api(ovh::Error::Timeout {
                method: "GET".into(),
                path: "/dedicated/server".into(),
                timeout: std::time::Duration::from_secs(5),
            }),
        };
        assert_eq!(e.to_string(), "cannot observe the 3 servers of the plan");
        assert!(e.help().unwrap().to_string().contains("--endpoint"));
        assert!(e.api_error().is_some());
        let lint = PipelineError::Lint { problems: vec![] };
        assert!(lint.help().unwrap().to_string().contains("bug"));
    }
}
