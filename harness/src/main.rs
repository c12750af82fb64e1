//! `cni-conformance`: runs the conformance checks against CNI plugins.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cni_conformance::version_probe::{self, Level};

#[derive(Parser)]
#[command(version, about = "Conformance suite and test harness for CNI plugins")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the checks (the default). Without --plugin, the reference
    /// plugins that sit beside this binary.
    Run {
        /// A plugin binary to judge; repeat for several.
        #[arg(long)]
        plugin: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cni-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    let plugins = match cli.command {
        Some(Cmd::Run { plugin }) if !plugin.is_empty() => plugin,
        _ => {
            let here = std::env::current_exe().context("locating this binary")?;
            let dir = here.parent().context("binary has no folder")?;
            vec![dir.join("macvlan"), dir.join("host-local")]
        }
    };
    let (mut passed, mut failed, mut warned) = (0, 0, 0);
    for plugin in &plugins {
        anyhow::ensure!(plugin.is_file(), "no plugin at {}", plugin.display());
        println!("{}", plugin.display());
        for v in version_probe::probe(plugin)? {
            let level = match v.level {
                Level::Must => "MUST",
                Level::Should => "SHOULD",
            };
            let status = if v.passed {
                "pass"
            } else if v.level == Level::Must {
                "FAIL"
            } else {
                "warn"
            };
            println!("  {status:4} {:28} {level:6} {}", v.id, v.message);
            match (v.passed, v.level) {
                (true, _) => passed += 1,
                (false, Level::Must) => failed += 1,
                (false, Level::Should) => warned += 1,
            }
        }
    }
    if warned > 0 {
        println!("{warned} SHOULD-level warnings");
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}
