//! The subcommands' front ends.

pub mod doctor;
pub mod exec;
pub mod validate;
pub mod vectors;
