//! Scenarios: a network list of spies and a sequence of actions that make
//! a runtime exercise its side of the contract. Each scenario has a list
//! and a spy log of its own; what it leaves is [`Played`], the material
//! the `runtime.*` checks judge.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::driver::{Ability, Action, Driver};
use super::stage::{Done, Stage, StageError};
use crate::spy::{self, Call};

/// The spies of a list, in order; `ipam` is the IPAM spy under `A`.
pub const POSITIONS: [&str; 3] = ["A", "B", "C"];

/// What one scenario did and recorded.
#[derive(Debug, Clone)]
pub struct Played {
    pub scenario: &'static str,
    pub network: String,
    /// The list as the runtime first read it.
    pub list: Value,
    /// The list as rewritten while a container was up (`config-change`).
    pub rewritten: Option<Value>,
    /// When it was rewritten (the spies' clock).
    pub rewritten_ns: Option<u64>,
    /// Each action and what the runtime did; `None` when the driver
    /// cannot do it.
    pub acts: Vec<(Action, Option<Done>)>,
    /// Every finished spy call, in order of their answers.
    pub calls: Vec<Call>,
    /// Calls that began and never answered: (spy, verb, pid).
    pub unanswered: Vec<(String, String, u32)>,
}

impl Played {
    /// Calls the runtime made itself (not the IPAM spy's, which its
    /// plugin makes), in order of their start.
    pub fn runtime_calls(&self) -> Vec<&Call> {
        let mut calls: Vec<&Call> = self
            .calls
            .iter()
            .filter(|c| POSITIONS.contains(&c.name.as_str()))
            .collect();
        calls.sort_by_key(|c| c.start_ns);
        calls
    }

    pub fn did(&self, word: &str) -> Option<&Done> {
        self.acts
            .iter()
            .find(|(a, _)| a.word() == word)
            .and_then(|(_, d)| d.as_ref())
    }
}

/// The scenarios, in the order they are played.
pub const SCENARIOS: [&str; 9] = [
    "lifecycle",
    "failing-add",
    "disable-check",
    "restart",
    "versions",
    "concurrent",
    "config-change",
    "gc",
    "disable-gc",
];

/// The unknown field every spy carries; runtimes must pass it unchanged.
pub fn unknown_field(position: &str) -> Value {
    json!({"position": position, "nested": [1, {"deep": null, "text": "ü\u{1}"}], "n": 1.5})
}

struct ListSpec<'a> {
    scenario: &'a str,
    subnet: String,
    log: PathBuf,
    /// Spies delegate to ptp and host-local, so containers get a real
    /// interface.
    delegate: bool,
    /// `spyScript` per position.
    scripts: [Value; 3],
    extra: Value,
}

fn list(spec: &ListSpec) -> Value {
    let log = spec.log.display().to_string();
    let plugins: Vec<Value> = POSITIONS
        .iter()
        .enumerate()
        .map(|(i, pos)| {
            let mut p = json!({
                "type": spy::NAME,
                "spyName": pos,
                "spyLog": log,
                "spyNonce": true,
                "spyScript": spec.scripts[i],
                "x-conformance": unknown_field(pos),
            });
            match *pos {
                "A" => {
                    p["capabilities"] = json!({"portMappings": true});
                    if spec.delegate {
                        p["spyDelegate"] = json!("ptp");
                        p["ipam"] = json!({
                            "type": spy::NAME,
                            "spyName": "ipam",
                            "spyLog": log,
                            "spyDelegate": "host-local",
                            "subnet": spec.subnet,
                        });
                    }
                }
                // Declared, never asked for: it must not appear.
                "C" => p["capabilities"] = json!({"bandwidth": true}),
                _ => {}
            }
            p
        })
        .collect();
    let mut list = json!({
        "cniVersion": "1.0.0",
        "name": format!("cnic-{}", spec.scenario),
        "plugins": plugins,
    });
    if let Some(extra) = spec.extra.as_object() {
        for (k, v) in extra {
            list[k] = v.clone();
        }
    }
    list
}

/// Plays every scenario; a harness failure stops the run.
pub fn play_all(driver: &dyn Driver, stage: &Stage) -> Result<Vec<Played>, StageError> {
    SCENARIOS
        .iter()
        .enumerate()
        .map(|(i, s)| play(driver, stage, s, i))
        .collect()
}

fn play(
    driver: &dyn Driver,
    stage: &Stage,
    scenario: &'static str,
    index: usize,
) -> Result<Played, StageError> {
    let log = stage.work.join(format!("calls-{scenario}.jsonl"));
    let none = || json!([]);
    let slow = json!([{"verb": "ADD", "sleepMs": 300}, {"verb": "DEL", "sleepMs": 300}]);
    let mut spec = ListSpec {
        scenario,
        subnet: format!("10.77.{index}.0/24"),
        log: log.clone(),
        delegate: true,
        scripts: [none(), none(), none()],
        extra: json!({}),
    };
    match scenario {
        "failing-add" => spec.scripts[1] = json!([{"verb": "ADD", "code": 100}]),
        "disable-check" => spec.extra = json!({"disableCheck": true}),
        "versions" => {
            // Upstream delegates speak at most 1.0.0: the spies answer alone.
            spec.delegate = false;
            spec.extra = json!({"cniVersions": ["0.4.0", "1.0.0", "1.1.0"]});
        }
        "concurrent" => spec.scripts[0] = slow,
        // GC is 1.1.0's, which the upstream delegates do not speak.
        "gc" => {
            spec.delegate = false;
            spec.extra = json!({"cniVersion": "1.1.0"});
        }
        "disable-gc" => {
            spec.delegate = false;
            spec.extra = json!({"cniVersion": "1.1.0", "disableGC": true});
        }
        _ => {}
    }
    let list = list(&spec);
    stage.write_list(&list)?;
    let network = list["name"].as_str().unwrap_or_default().to_string();
    let mut played = Played {
        scenario,
        network: network.clone(),
        list,
        rewritten: None,
        rewritten_ns: None,
        acts: Vec::new(),
        calls: Vec::new(),
        unanswered: Vec::new(),
    };
    let name = |n: u32| format!("{scenario}-{n}");
    let run = |n: u32, publish: bool| Action::Run {
        name: name(n),
        network: network.clone(),
        publish,
    };
    let remove = |n: u32| Action::Remove {
        name: name(n),
        network: network.clone(),
    };
    let check = |n: u32| Action::Check {
        name: name(n),
        network: network.clone(),
    };
    let gc = Action::Gc {
        network: network.clone(),
    };
    let act = |played: &mut Played, a: Action| -> Result<(), StageError> {
        let able = match &a {
            Action::Check { .. } => driver.can(Ability::Check),
            Action::Restart => driver.can(Ability::Restart),
            Action::Gc { .. } => driver.can(Ability::Gc),
            _ => true,
        };
        let done = if able {
            Some(driver.act(stage, &a)?)
        } else {
            None
        };
        played.acts.push((a, done));
        Ok(())
    };
    match scenario {
        "lifecycle" | "disable-check" => {
            act(&mut played, run(1, scenario == "lifecycle"))?;
            act(&mut played, check(1))?;
            act(&mut played, remove(1))?;
        }
        "restart" => {
            act(&mut played, run(1, false))?;
            act(&mut played, Action::Restart)?;
            act(&mut played, check(1))?;
            act(&mut played, remove(1))?;
        }
        "failing-add" | "versions" => {
            act(&mut played, run(1, false))?;
            act(&mut played, remove(1))?;
        }
        "config-change" => {
            act(&mut played, run(1, false))?;
            let mut changed = played.list.clone();
            changed["plugins"][0]["x-conformance"] = json!({"position": "A", "changed": true});
            stage.write_list(&changed)?;
            played.rewritten = Some(changed);
            played.rewritten_ns = Some(spy::monotonic_ns());
            act(&mut played, remove(1))?;
        }
        "concurrent" => {
            // Two containers at once, then both removed at once.
            for pair in [[run(1, false), run(2, false)], [remove(1), remove(2)]] {
                let results: Vec<Result<Done, StageError>> = std::thread::scope(|s| {
                    let handles: Vec<_> = pair
                        .iter()
                        .map(|a| s.spawn(move || driver.act(stage, a)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(StageError::Io {
                                    what: "a driver thread".into(),
                                    source: std::io::Error::other("panicked"),
                                })
                            })
                        })
                        .collect()
                });
                for (a, r) in pair.into_iter().zip(results) {
                    played.acts.push((a, Some(r?)));
                }
            }
        }
        "gc" | "disable-gc" => {
            act(&mut played, run(1, false))?;
            act(&mut played, run(2, false))?;
            act(&mut played, remove(2))?;
            act(&mut played, gc)?;
            act(&mut played, remove(1))?;
        }
        other => unreachable!("scenario {other} has no actions"),
    }
    if log.exists() {
        played.calls = spy::read_calls(&log).map_err(|source| StageError::Io {
            what: log.display().to_string(),
            source,
        })?;
        played.unanswered = spy::record::unanswered(&log).map_err(|source| StageError::Io {
            what: log.display().to_string(),
            source,
        })?;
    }
    Ok(played)
}

/// Writes each scenario's actions (with what the runtime said) and calls
/// as `DIR/<scenario>.json`, for a reader to see what a verdict rests on.
pub fn save(played: &[Played], dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for p in played {
        let acts: Vec<Value> = p
            .acts
            .iter()
            .map(|(a, d)| {
                json!({
                    "action": format!("{a:?}"),
                    "ok": d.as_ref().map(|d| d.ok),
                    "output": d.as_ref().map(|d| d.output.clone()),
                })
            })
            .collect();
        let doc = json!({
            "scenario": p.scenario,
            "list": p.list,
            "rewritten": p.rewritten,
            "actions": acts,
            "calls": p.calls,
            "unanswered": p.unanswered,
        });
        let text = serde_json::to_string_pretty(&doc).expect("values serialise");
        std::fs::write(dir.join(format!("{}.json", p.scenario)), text)?;
    }
    Ok(())
}
