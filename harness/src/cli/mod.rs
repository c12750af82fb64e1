//! The subcommands' front ends.

/// `println!` that survives a closed stdout (`cni-conformance list | head`):
/// what is left is lost, the work and its clean-up go on.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod doctor;
pub mod exec;
pub mod run;
pub mod validate;
pub mod vectors;
