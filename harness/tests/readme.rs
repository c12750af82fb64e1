//! Every command the README shows runs verbatim, as a reader runs it from
//! the checkout, and ends as the README says.
//!
//! - A ```` ```sh ```` block is a script: its commands run in order with
//!   `set -e`; a command ending in `# exits N` must exit with N.
//! - In a ```` ```text ```` block, each line starting with `$ ` is a
//!   command (the lines after it are what it printed); `# exits N` as above.
//! - The README's own test command (`ci/test.sh`) is the one command not
//!   run: it is what runs this test.
//!
//! Commands run in the checkout, seen through an overlay in a mount
//! namespace of their own, with `/opt` on tmpfs: whatever they write
//! (`walk.json`, `/opt/cni/bin`) leaves no trace.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One command (or script) and the exit status the README promises.
#[derive(Debug)]
struct Example {
    line: usize,
    script: String,
    exit: i32,
}

/// `# exits N` at the end of a command.
fn expected_exit(command: &str) -> (String, i32) {
    if let Some((cmd, n)) = command.rsplit_once("# exits ") {
        if let Ok(n) = n.trim().parse() {
            return (cmd.trim_end().to_string(), n);
        }
    }
    (command.to_string(), 0)
}

/// Whether `text` leaves a quote open (shell rules: `'...'` literal,
/// `"..."` with backslash escapes).
fn open_quote(text: &str) -> bool {
    let (mut single, mut double, mut escaped) = (false, false, false);
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
    }
    single || double
}

/// The commands of one `sh` block, each with its continuation lines,
/// open quotes, pipelines and here-documents.
fn sh_commands(block: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < block.len() {
        let mut cmd = block[i].to_string();
        i += 1;
        while i < block.len() {
            let line = cmd.lines().last().unwrap_or_default().trim_end();
            let goes_on = open_quote(&cmd)
                || line.ends_with('\\')
                || line.ends_with('|')
                || line.ends_with("&&");
            if !goes_on {
                break;
            }
            cmd.push('\n');
            cmd.push_str(block[i]);
            i += 1;
        }
        if let Some(tag) = cmd
            .split("<<'")
            .nth(1)
            .and_then(|t| t.split('\'').next())
            .map(str::to_string)
        {
            while i < block.len() {
                cmd.push('\n');
                cmd.push_str(block[i]);
                i += 1;
                if block[i - 1] == tag {
                    break;
                }
            }
        }
        let trimmed = cmd.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            out.push(cmd);
        }
    }
    out
}

fn examples(readme: &str) -> Vec<Example> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = start + lines[start..].iter().position(|l| *l == "```").unwrap();
        let block = &lines[start..end];
        match info {
            "sh" => {
                for cmd in sh_commands(block) {
                    let (script, exit) = expected_exit(&cmd);
                    out.push(Example {
                        line: start + 1,
                        script,
                        exit,
                    });
                }
            }
            "text" => {
                for (k, l) in block.iter().enumerate() {
                    if let Some(cmd) = l.strip_prefix("$ ") {
                        let (script, exit) = expected_exit(cmd);
                        out.push(Example {
                            line: start + k + 1,
                            script,
                            exit,
                        });
                    }
                }
            }
            _ => {}
        }
        i = end + 1;
    }
    out.retain(|e| !e.script.starts_with("ci/test.sh"));
    out
}

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_parser_finds_commands_and_their_exit_status() {
    let text = "```sh\nci/conformance.sh   # main\nfoo \\\n  --bar   # exits 1\ncat > p.toml <<'EOF'\nname = 1\nEOF\n# a comment\necho '{\"a\":\n 1}' |\n  wc -c\n```\n\n```text\n$ x y   # exits 2\nout\n$ z\n```\n";
    let got: Vec<(String, i32)> = examples(text)
        .into_iter()
        .map(|e| (e.script, e.exit))
        .collect();
    assert_eq!(
        got,
        [
            ("ci/conformance.sh   # main".to_string(), 0),
            ("foo \\\n  --bar".to_string(), 1),
            ("cat > p.toml <<'EOF'\nname = 1\nEOF".to_string(), 0),
            ("echo '{\"a\":\n 1}' |\n  wc -c".to_string(), 0),
            ("x y".to_string(), 2),
            ("z".to_string(), 0),
        ]
    );
}

#[test]
fn every_readme_command_works_as_written() {
    let root = checkout();
    // The README's commands use the release binaries and the static build;
    // build them here so they are the code under test.
    for build in [
        vec!["cargo", "build", "--release", "--workspace", "-q"],
        vec!["ci/build-plugins.sh"],
    ] {
        let status = Command::new(build[0])
            .args(&build[1..])
            .current_dir(&root)
            .status()
            .unwrap();
        assert!(status.success(), "{build:?} failed");
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let all = examples(&readme);
    assert!(all.len() >= 10, "only {} commands found", all.len());
    let scratch = tempfile::TempDir::new().unwrap();
    let (upper, work) = (scratch.path().join("upper"), scratch.path().join("work"));
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    // One shell runs them all in order (a later command may use an earlier
    // one's file), each checked for its exit status.
    let mut script = String::from("set -uo pipefail\n");
    for e in &all {
        let _ = write!(
            script,
            "( set -eo pipefail\n{}\n)\nrc=$?\nif [ $rc -ne {} ]; then echo \"README.md:{}: exit status $rc, the README says {}\" >&2; exit 1; fi\n",
            e.script, e.exit, e.line, e.exit
        );
    }
    let setup = format!(
        "set -e\n\
         mount -t overlay overlay -o lowerdir={r},upperdir={u},workdir={w} {r} 2>/dev/null \
           || mount -t overlay overlay -o lowerdir={r},upperdir={u},workdir={w},userxattr {r}\n\
         [ -d /opt ] && mount -t tmpfs tmpfs /opt\n\
         cd {r}\n\
         exec bash -c \"$1\"",
        r = root.display(),
        u = upper.display(),
        w = work.display()
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            &setup,
            "setup",
        ])
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
