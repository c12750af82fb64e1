//! `cni-conformance`: runs the conformance checks against CNI plugins.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cni_conformance::version_probe::{self, Level};
use cni_conformance::{sandbox, spy, userns};

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
    /// Run one verb in a throwaway sandbox and show what changed.
    Exec {
        /// ADD, DEL, CHECK, STATUS, GC or VERSION.
        verb: String,
        /// A network configuration or configuration list.
        #[arg(long)]
        config: PathBuf,
        /// Plugin folders, ':'-separated (default: beside this binary,
        /// /opt/cni/bin, /usr/lib/cni).
        #[arg(long)]
        cni_path: Option<String>,
        #[arg(long, default_value = "eth0")]
        ifname: String,
        #[arg(long, default_value = "cnitest")]
        container_id: String,
        /// Keep the sandbox (and skip the DEL that follows ADD) until Enter.
        #[arg(long)]
        keep: bool,
        /// Make the master a veth pair with a peer, even where dummy exists.
        #[arg(long)]
        peer: bool,
        /// Seconds each plugin may take before it is killed.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Validate a document against the schema for its kind and version
    /// (exit 0 valid, 1 invalid, 2 usage).
    Validate {
        /// config, conflist, result, ipam-result, error, version, gc or report.
        #[arg(long)]
        kind: String,
        /// The cniVersion to validate for (default: the document's own).
        #[arg(long)]
        version: Option<String>,
        /// The document; `-` for stdin.
        file: PathBuf,
    },
    /// Replay the vectors against a plugin and compare with the reference
    /// plugins' transcripts (informational).
    Vectors {
        /// The plugin binary (vectors for other plugin types are skipped);
        /// default: the reference plugins beside this binary.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The vectors folder, with reference transcripts in snapshots/
        /// (default: ./vectors).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check what this machine allows and what that means for a run.
    Doctor {
        /// Plugin folders, ':'-separated (default as for exec).
        #[arg(long)]
        cni_path: Option<String>,
    },
}

fn main() -> ExitCode {
    if spy::invoked_as_spy() {
        return spy::main();
    }
    let cli = Cli::parse();
    if let Some(Cmd::Validate {
        kind,
        version,
        file,
    }) = &cli.command
    {
        // Pure data: no namespaces needed.
        return exit_code(cli::validate::validate(kind, version.as_deref(), file));
    }
    // Before any thread exists: an unprivileged user namespace needs that.
    let privilege = match userns::ensure_root() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cni-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    clean_up_on_signals();
    exit_code(run(cli, privilege))
}

/// 0 for success, 1 for a negative verdict, 2 when the harness could not
/// do its job.
fn exit_code(outcome: Result<bool>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cni-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// SIGINT and SIGTERM remove every live sandbox before exiting; the
/// processes they keep would die with the harness anyway.
fn clean_up_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            sandbox::clean_all_live();
            std::process::exit(128 + sig);
        }
    });
}

fn dirs(arg: Option<String>) -> Vec<PathBuf> {
    match arg {
        Some(p) => std::env::split_paths(&p).collect(),
        None => cli::doctor::default_plugin_dirs(),
    }
}

fn run(cli: Cli, privilege: userns::Privilege) -> Result<bool> {
    match cli.command {
        Some(Cmd::Exec {
            verb,
            config,
            cni_path,
            ifname,
            container_id,
            keep,
            peer,
            timeout,
        }) => cli::exec::exec(cli::exec::ExecArgs {
            verb: verb.to_uppercase(),
            config,
            cni_path: dirs(cni_path),
            ifname,
            container_id,
            keep,
            peer,
            timeout: Duration::from_secs(timeout),
        }),
        Some(Cmd::Doctor { cni_path }) => cli::doctor::doctor(privilege, &dirs(cni_path)),
        Some(Cmd::Validate { .. }) => unreachable!("handled before namespaces"),
        Some(Cmd::Vectors { plugin, dir }) => {
            let here = std::env::current_exe().context("locating this binary")?;
            cli::vectors::vectors(plugin, dir, here.parent().context("binary has no folder")?)
        }
        Some(Cmd::Run { plugin }) if !plugin.is_empty() => probe(&plugin),
        _ => {
            let here = std::env::current_exe().context("locating this binary")?;
            let dir = here.parent().context("binary has no folder")?;
            probe(&[dir.join("macvlan"), dir.join("host-local")])
        }
    }
}

fn probe(plugins: &[PathBuf]) -> Result<bool> {
    let (mut passed, mut failed, mut warned) = (0, 0, 0);
    for plugin in plugins {
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
