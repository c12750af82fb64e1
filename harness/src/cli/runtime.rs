//! `cni-conformance runtime`: a runtime's side of the contract, judged
//! through spies.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cni_conformance::report::{Mode, Provenance};
use cni_conformance::runtimes::{self, CommandDriver, Driver, Fault, OwnDriver};

use super::run::Format;

/// Which runtime: a built-in name, `self`, or `command` with a file.
pub(crate) fn driver(name: &str, file: Option<&Path>, faults: &[Fault]) -> Result<Box<dyn Driver>> {
    if !faults.is_empty() && name != "self" {
        bail!("--fault breaks only the `self` runtime");
    }
    Ok(match (name, file) {
        ("self", None) => Box::new(OwnDriver::new(faults.to_vec())),
        ("command", Some(f)) => Box::new(CommandDriver::load(f)?),
        ("command", None) => bail!("--driver command needs --driver-file FILE"),
        (_, Some(_)) => bail!("--driver-file goes with --driver command"),
        (n, None) => Box::new(CommandDriver::built_in(n).with_context(|| {
            format!("--driver {n}: not one of podman, buildah, containerd, self, command")
        })?),
    })
}

/// Plays the scenarios, writes the report; true when no MUST rule failed.
pub(crate) fn run(
    driver: &dyn Driver,
    plugin_dirs: &[PathBuf],
    format: Format,
    output: Option<PathBuf>,
    calls: Option<&Path>,
) -> Result<bool> {
    let missing = driver.missing();
    if !missing.is_empty() {
        bail!(
            "{} needs {} (not on PATH)",
            driver.name(),
            missing.join(", ")
        );
    }
    let harness = std::env::current_exe().context("locating this binary")?;
    let provenance = Provenance::now(&[], std::env::args().skip(1).collect(), Mode::Normal);
    let reports = vec![runtimes::judge(driver, &harness, plugin_dirs, calls)];
    super::run::write_report(&reports, &provenance, format, output)?;
    super::run::verdict(&reports, Mode::Normal)
}
