//! The subcommands' front ends.

pub mod doctor;
pub mod exec;
pub mod run;
pub mod validate;
pub mod vectors;
