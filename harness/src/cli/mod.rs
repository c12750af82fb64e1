//! The subcommands' front ends.

/// `println!` that survives a closed stdout (`cni-conformance list | head`):
/// what is left is lost, the work and its clean-up go on.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub(crate) mod doctor;
pub(crate) mod exec;
pub(crate) mod merge;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod runtime;
pub(crate) mod saved;
pub(crate) mod validate;
pub(crate) mod vectors;
