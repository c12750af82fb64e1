//! `cni-conformance`: runs the conformance checks against CNI plugins.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cni_conformance::expectations::Expectations;
use cni_conformance::report::Mode;
use cni_conformance::schema::Kind;
use cni_conformance::spec::{Verb, Version};
use cni_conformance::suite::RunOptions;
use cni_conformance::{sandbox, spy, userns};

#[derive(Parser)]
#[command(version, about = "Conformance suite and test harness for CNI plugins")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Judge a runtime's side of the contract: it runs scenarios whose
    /// network lists are spies, and the calls they record are judged.
    Runtime {
        /// podman, buildah, containerd, self (this harness's runtime), or
        /// command (with --driver-file).
        #[arg(long)]
        driver: String,
        /// A driver file (TOML of shell templates; harness/drivers/README.md).
        #[arg(long)]
        driver_file: Option<PathBuf>,
        /// Break the self runtime on purpose (repeatable), to see its check trip.
        #[arg(long, value_enum)]
        fault: Vec<cni_conformance::runtimes::Fault>,
        /// Where ptp, host-local and loopback are (':'-separated).
        #[arg(long, default_value = "/usr/lib/cni:/opt/cni/bin")]
        cni_path: String,
        #[arg(long, value_enum, default_value_t = cli::run::Format::Human)]
        format: cli::run::Format,
        #[arg(long)]
        output: Option<PathBuf>,
        /// Save each scenario's actions and recorded calls here as JSON.
        #[arg(long)]
        calls: Option<PathBuf>,
    },
    /// Merge JSON reports (plugins, runtimes) into one, in any format:
    /// `report --format html --output matrix.html a.json b.json`.
    Report {
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = cli::run::Format::Html)]
        format: cli::run::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Run one case of a replay bundle again in a fresh sandbox (exit 1
    /// while it deviates, 0 once fixed).
    Replay {
        folder: PathBuf,
        /// Another build of the plugin to try.
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// Shell completions or man pages, for packaging.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
    /// Run the conformance checks (the default). Without --plugin, the
    /// reference plugins that sit beside this binary.
    Run(RunArgs),
    /// List every check: ID, level, versions, clause.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run one verb in a throwaway sandbox and show what changed.
    Exec {
        #[arg(value_enum, ignore_case = true)]
        verb: Verb,
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
        #[arg(long, value_enum)]
        kind: Kind,
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

/// What `run` takes; also the defaults of a bare `cni-conformance`.
#[derive(Parser)]
struct RunArgs {
    /// A plugin binary to judge; repeat for several.
    #[arg(long)]
    plugin: Vec<PathBuf>,
    /// A built-in profile (one per file of harness/profiles/; `doctor`
    /// lists them) or a TOML file; default: the built-in profile named
    /// like the plugin.
    #[arg(long)]
    profile: Option<String>,
    /// Folders with delegates (IPAM, a preceding plugin), ':'-separated;
    /// the plugin's own folder comes first.
    #[arg(long)]
    cni_path: Option<String>,
    /// Only these versions, comma-separated.
    #[arg(long, value_delimiter = ',')]
    versions: Option<Vec<Version>>,
    /// Only checks whose ID contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Seconds each plugin call may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Bytes of each call's stdout and of its stderr the harness reads
    /// (its first and last half when there is more); output past it is
    /// reported and a result cut so is not read.
    #[arg(long, default_value_t = cni_conformance::runtime::capture::DEFAULT_LIMIT)]
    output_limit: usize,
    /// Kill points per verb that fault.kill-at-every-step covers: a number
    /// (spread evenly over the steps, the same every run) or `all`.
    #[arg(long, default_value = "12", value_parser = kill_points)]
    kill_points: KillPoints,
    /// Checks run in parallel, each in its own sandbox (default: three per
    /// core, as a case mostly waits: for plugin processes, and for the
    /// kernel to move each into a cgroup of its own).
    #[arg(long, default_value_t = 3 * std::thread::available_parallelism().map_or(1, |n| n.get()))]
    jobs: usize,
    #[arg(long, value_enum, default_value_t = cli::run::Format::Human)]
    format: cli::run::Format,
    /// Write the report here instead of stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Deviations you know about (TOML, `[[expect]]` id, versions, expect
    /// = "fail" | "warn", reason, link): they are `xfail`; one that now
    /// passes is `xpass` and fails the run.
    #[arg(long)]
    expectations: Option<PathBuf>,
    /// SHOULD deviations fail the run too.
    #[arg(long)]
    strict: bool,
    /// A certification run: every implemented check at every advertised
    /// version, no expectations, no filter; SHOULD deviations fail it.
    #[arg(long, conflicts_with_all = ["expectations", "filter", "versions", "strict"])]
    certify: bool,
    /// Print where the run's time went (set-up, plugins, snapshots,
    /// tear-down, judging); every JSON result carries its own split.
    #[arg(long)]
    timings: bool,
    /// Write a replay folder per fail and warn here (`replay FOLDER`).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Rerun exactly the failed cases of this JSON report (its plugins,
    /// unless --plugin names others).
    #[arg(long, conflicts_with = "certify")]
    rerun_failed: Option<PathBuf>,
}

fn main() -> ExitCode {
    if spy::invoked_as_spy() {
        return spy::main();
    }
    let cli = Cli::parse();
    // Pure data: no namespaces needed.
    match &cli.command {
        Some(Cmd::Validate {
            kind,
            version,
            file,
        }) => {
            return exit_code(cli::validate::validate(*kind, version.as_deref(), file));
        }
        Some(Cmd::List { json }) => return exit_code(cli::run::list(*json)),
        Some(Cmd::Generate { what }) => return exit_code(generate(what)),
        Some(Cmd::Report {
            reports,
            format,
            output,
        }) => return exit_code(cli::merge::merge(reports, *format, output.clone())),
        _ => {}
    }
    // Before any thread exists: an unprivileged user namespace needs that.
    let privilege = match userns::ensure_root() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cni-conformance: {e}");
            return ExitCode::from(2);
        }
    };
    // Sandbox folders bounded in size, and mounts that cannot outlive us.
    if let Err(e) = sandbox::own_mount_namespace() {
        eprintln!(
            "cni-conformance: no mount namespace of its own ({e}): sandbox folders are not bounded in size"
        );
    }
    clean_up_on_signals();
    clean_up_on_panic();
    exit_code(run(cli, privilege))
}

#[derive(Subcommand)]
enum Generate {
    /// Completions for a shell, on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Man pages (the command and each subcommand) into a folder.
    Man { dir: PathBuf },
}

fn generate(what: &Generate) -> Result<bool> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    match what {
        Generate::Completions { shell } => {
            clap_complete::generate(*shell, &mut cmd, "cni-conformance", &mut std::io::stdout());
        }
        Generate::Man { dir } => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)?;
        }
    }
    Ok(true)
}

/// 0 for success, 1 for a negative verdict, 2 when the harness could not
/// do its job.
fn exit_code(outcome: Result<bool>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            let text = e.chain().fold(String::new(), |acc, cause| {
                let part = cause.to_string();
                match acc.is_empty() {
                    true => part,
                    false if acc.contains(&part) => acc,
                    false => format!("{acc}: {part}"),
                }
            });
            eprintln!("cni-conformance: {text}");
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

/// A panic (a bug: the release build aborts on one, running no
/// destructor) removes every live sandbox first, as a signal does.
fn clean_up_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        if !sandbox::clean_all_live_within(std::time::Duration::from_secs(10)) {
            eprintln!("cni-conformance: the clean-up after the panic did not finish in 10 s");
        }
    }));
}

/// `--kill-points`: a number, or `all` (`None`).
#[derive(Debug, Clone, Copy)]
struct KillPoints(Option<usize>);

fn kill_points(s: &str) -> Result<KillPoints, String> {
    match s {
        "all" => Ok(KillPoints(None)),
        n => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 2)
            .map(|n| KillPoints(Some(n)))
            .ok_or_else(|| format!("{s:?}: give a number of at least 2, or `all`")),
    }
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
            verb,
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
        Some(Cmd::List { .. }) | Some(Cmd::Report { .. }) | Some(Cmd::Generate { .. }) => {
            unreachable!("handled before namespaces")
        }
        Some(Cmd::Run(args)) => run_suite(args),
        Some(Cmd::Replay { folder, plugin }) => {
            let spy = spy_dir()?;
            cli::replay::replay(&folder, plugin, spy.path())
        }
        Some(Cmd::Runtime {
            driver,
            driver_file,
            fault,
            cni_path,
            format,
            output,
            calls,
        }) => cli::runtime::driver(&driver, driver_file.as_deref(), &fault).and_then(|d| {
            let dirs: Vec<PathBuf> = std::env::split_paths(&cni_path).collect();
            cli::runtime::run(d.as_ref(), &dirs, format, output, calls.as_deref())
        }),
        None => run_suite(RunArgs::parse_from(["run"])),
    }
}

/// A plugin binary as `--plugin` names it: an absolute path (plugins run
/// from another working folder), to an executable file.
fn plugin_binary(path: PathBuf) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let abs = std::path::absolute(&path)
        .with_context(|| format!("--plugin {}: cannot make the path absolute", path.display()))?;
    let meta = std::fs::metadata(&abs)
        .with_context(|| format!("--plugin {}: cannot read it", path.display()))?;
    anyhow::ensure!(meta.is_file(), "--plugin {}: not a file", path.display());
    anyhow::ensure!(
        meta.permissions().mode() & 0o111 != 0,
        "--plugin {}: not executable (chmod +x {})",
        path.display(),
        path.display()
    );
    Ok(abs)
}

/// The spy plugin, linked into a folder that lives as long as the run.
fn spy_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("cni-conformance-spy-")
        .tempdir()?;
    sandbox::remove_on_signal(dir.path());
    spy::install(dir.path(), &std::env::current_exe()?)?;
    Ok(dir)
}

fn run_suite(args: RunArgs) -> Result<bool> {
    let RunArgs {
        plugin: plugins,
        profile,
        cni_path,
        versions,
        filter,
        timeout,
        output_limit,
        kill_points,
        jobs,
        format,
        output,
        expectations,
        strict,
        certify,
        bundle,
        rerun_failed,
        timings,
    } = args;
    cni_conformance::runtime::capture::set_limit(output_limit);
    let (plugins, only) = match &rerun_failed {
        Some(report) => {
            let (saved, failed) = cli::replay::failed_cases(report)?;
            anyhow::ensure!(
                !failed.is_empty(),
                "--rerun-failed {}: no failed case to rerun",
                report.display()
            );
            (
                if plugins.is_empty() { saved } else { plugins },
                Some(failed),
            )
        }
        None => (plugins, None),
    };
    let here = std::env::current_exe().context("locating this binary")?;
    let dir = here.parent().context("binary has no folder")?.to_path_buf();
    let plugins = if plugins.is_empty() {
        vec![dir.join("macvlan"), dir.join("host-local")]
    } else {
        plugins
    };
    let plugins = plugins
        .into_iter()
        .map(plugin_binary)
        .collect::<Result<Vec<_>>>()?;
    if let Some(f) = &filter {
        anyhow::ensure!(
            cni_conformance::checks::catalog()
                .iter()
                .any(|c| c.run().is_some() && c.id.contains(f.as_str())),
            "--filter: no implemented check's ID contains {f:?} (`cni-conformance list` shows them)"
        );
    }
    let mut delegates: Vec<PathBuf> = cni_path
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // The reference plugins serve as delegates (host-local) when nothing else does.
    delegates.push(dir);
    let spy = spy_dir()?;
    let opts = RunOptions {
        cni_path: delegates,
        profile,
        versions,
        filter,
        timeout: Duration::from_secs(timeout),
        jobs,
        spy_dir: Some(spy.path().to_path_buf()),
        only,
        kill_points: kill_points.0,
    };
    let known = |id: &str| {
        cni_conformance::checks::catalog()
            .iter()
            .any(|c| c.id == id && c.run().is_some())
    };
    let judging = cli::run::Judging {
        mode: match (certify, strict) {
            (true, _) => Mode::Certification,
            (false, true) => Mode::Strict,
            (false, false) => Mode::Normal,
        },
        expectations: expectations
            .map(|path| Expectations::load(&path, &known))
            .transpose()?,
        timings,
    };
    cli::run::run(&plugins, &opts, &judging, format, output, bundle.as_deref())
}
