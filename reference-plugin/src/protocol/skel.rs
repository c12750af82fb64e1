//! The plugin side of the exec protocol: read the environment and stdin,
//! validate, dispatch to a [`Plugin`], and print exactly one JSON document.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::CniArgs;
use super::env::{Command, Environment};
use super::error::{CniError, code};
use super::netconf::NetConf;
use super::result::CniResult;
use super::version::Version;

/// Everything one invocation carries, validated.
#[derive(Debug, Clone)]
pub struct Request {
    pub env: Environment,
    pub args: CniArgs,
    pub conf: NetConf,
}

/// What a plugin implements. The protocol layer has already checked that the
/// verb exists in the configuration's version.
pub trait Plugin {
    fn add(&self, req: &Request) -> Result<CniResult, CniError>;
    fn del(&self, req: &Request) -> Result<(), CniError>;
    fn check(&self, req: &Request) -> Result<(), CniError>;
    fn status(&self, req: &Request) -> Result<(), CniError>;
    fn gc(&self, req: &Request) -> Result<(), CniError>;
}

/// Runs one invocation against the process environment and standard streams.
pub fn run(plugin: &impl Plugin) -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin).map(|_| stdin);
    let (output, ok) = match handle(plugin, Environment::from_process(), read) {
        Ok(Some(v)) => (Some(v), true),
        Ok(None) => (None, true),
        Err(e) => {
            let e = e.in_its_version();
            eprintln!("{}", e);
            (
                Some(serde_json::to_value(&e).expect("errors serialise")),
                false,
            )
        }
    };
    if let Some(v) = output {
        let mut out = std::io::stdout().lock();
        // Nothing useful can be done if stdout is gone; the exit code still tells.
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The protocol without the process: returns the JSON to print on success
/// (`None` for verbs that print nothing), or the error object.
pub fn handle(
    plugin: &impl Plugin,
    env: Result<Environment, CniError>,
    stdin: std::io::Result<Vec<u8>>,
) -> Result<Option<Value>, CniError> {
    // Errors found before the config is read still answer in its version
    // when it names one we speak; only then is stdin decoded for it.
    let env = env.map_err(|mut e| {
        let stdin = stdin.as_deref().ok();
        e.cni_version = stdin.and_then(declared_version).map(|v| v.to_string());
        e
    })?;
    let stdin =
        stdin.map_err(|e| CniError::new(code::IO_FAILURE, format!("reading stdin: {e}")))?;
    if env.command == Command::Version {
        return Ok(Some(version_answer(&stdin)));
    }
    let conf = NetConf::parse(stdin)?;
    let version = conf.version;
    let stamp = |mut e: CniError| {
        e.cni_version.get_or_insert_with(|| version.to_string());
        e
    };
    let verb_allowed = match env.command {
        Command::Check => version.has_check(),
        Command::Status | Command::Gc => version.has_gc_and_status(),
        _ => true,
    };
    if !verb_allowed {
        return Err(stamp(CniError::incompatible(format!(
            "cniVersion {version} does not allow {}",
            env.command.as_str()
        ))));
    }
    let args = CniArgs::parse(&env.args).map_err(stamp)?;
    let req = Request { env, args, conf };
    let out = match req.env.command {
        Command::Add => plugin.add(&req).and_then(|r| r.encode(version)).map(Some),
        Command::Del => plugin.del(&req).map(|_| None),
        Command::Check => plugin.check(&req).map(|_| None),
        Command::Status => plugin.status(&req).map(|_| None),
        Command::Gc => plugin.gc(&req).map(|_| None),
        Command::Version => unreachable!("answered above"),
    };
    out.map_err(stamp)
}

/// The version a config on stdin declares, if it is JSON and one we speak
/// (absent means 0.1.0).
fn declared_version(stdin: &[u8]) -> Option<Version> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    match v.as_object()?.get("cniVersion") {
        None => Some(Version::V0_1_0),
        Some(s) => Version::parse(s.as_str()?),
    }
}

/// VERSION echoes the input `cniVersion` when it is one we speak (1.0.0+
/// says so); stdin may be empty or absent, as older runtimes send nothing.
fn version_answer(stdin: &[u8]) -> Value {
    let asked = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().and_then(Version::parse))
        .unwrap_or(Version::LATEST);
    let all: Vec<&str> = Version::ALL.iter().map(|v| v.as_str()).collect();
    json!({"cniVersion": asked.as_str(), "supportedVersions": all})
}
