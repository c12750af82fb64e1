//! The subcommands' front ends.

pub mod doctor;
pub mod exec;
