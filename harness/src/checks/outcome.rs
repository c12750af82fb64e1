//! What a check can conclude, and what keeps it from concluding.

use crate::observe::ObserveError;
use crate::profile::ProfileError;
use crate::runtime::config::ConfigError;
use crate::runtime::exec::ExecError;
use crate::sandbox::SandboxError;

/// What the plugin did, judged against the check's clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Pass(String),
    /// The plugin did not do what the clause asks.
    Deviation(String),
}

/// Why a check reached no finding. Only `Harness` is the harness's fault;
/// none of them is a verdict on the plugin.
#[derive(Debug)]
pub enum Unjudged {
    /// The check does not apply to this plugin or profile.
    NotApplicable(String),
    /// Something the check builds on failed; the check named by `by`
    /// judges that.
    Blocked { by: &'static str, why: String },
    /// The harness itself could not carry the check out.
    Harness(CaseError),
}

/// A check's outcome: `?` turns harness errors into [`Unjudged::Harness`].
pub type Judged = Result<Finding, Unjudged>;

pub(super) fn pass(msg: impl Into<String>) -> Judged {
    Ok(Finding::Pass(msg.into()))
}

pub(super) fn deviation(msg: impl Into<String>) -> Judged {
    Ok(Finding::Deviation(msg.into()))
}

pub(super) fn not_applicable(why: impl Into<String>) -> Judged {
    Err(Unjudged::NotApplicable(why.into()))
}

pub(super) fn blocked(by: &'static str, why: impl Into<String>) -> Judged {
    Err(Unjudged::Blocked {
        by,
        why: why.into(),
    })
}

/// The harness could not carry a check out (not the plugin's fault).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    #[error("the profile's config does not load")]
    Config(#[source] ConfigError),
    #[error("cannot start {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a parallel call panicked")]
    Panicked,
    /// What the harness's own runtime must do did not happen.
    #[error("the harness's runtime went wrong: {0}")]
    Unexpected(String),
    #[error("cleaning up after the check")]
    CleanUp(#[source] Box<CaseError>),
}

macro_rules! harness_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Unjudged {
            fn from(e: $t) -> Unjudged {
                Unjudged::Harness(e.into())
            }
        }
    )*};
}

harness_errors!(
    CaseError,
    SandboxError,
    ExecError,
    ObserveError,
    ProfileError
);
