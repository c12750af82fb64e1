//! Checks across calls, chains, containers and faults (issue 7), and the
//! assertions of the checklist not covered yet: listed so `list` shows them.

use super::{Check, Level, not_yet};

pub fn checks() -> Vec<Check> {
    let later = "lifecycle, ordering, concurrency and leak checks come with the next milestone";
    vec![
        not_yet(
            "leak.after-del",
            Level::Must,
            "SPEC.md#del",
            "Nothing an attachment created (link, address, route, neighbour, state file) remains after its DEL.",
            later,
        ),
        not_yet(
            "add.rollback",
            Level::Should,
            "SPEC.md#add (ADD-R9)",
            "A failed ADD leaves nothing behind even before the runtime's DEL.",
            later,
        ),
        not_yet(
            "add.twice-fails",
            Level::Should,
            "SPEC.md#add (ADD-R6)",
            "ADD twice for one attachment without DEL fails.",
            later,
        ),
        not_yet(
            "attachment.two-in-one-container",
            Level::Must,
            "SPEC.md#add (ADD-018)",
            "Two attachments in one container come and go independently.",
            later,
        ),
        not_yet(
            "chain.order",
            Level::Must,
            "SPEC.md#network-configuration-lists",
            "ADD runs in list order and DEL in reverse.",
            later,
        ),
        not_yet(
            "chain.prev-result",
            Level::Must,
            "SPEC.md#add (ADD-014, ADD-015)",
            "A plugin keeps the prevResult it received in its result.",
            later,
        ),
        not_yet(
            "chain.failing-middle",
            Level::Must,
            "SPEC.md#lifecycle",
            "When a middle plugin fails ADD, DEL reaches every plugin and nothing leaks.",
            later,
        ),
        not_yet(
            "concurrency.parallel-add",
            Level::Must,
            "SPEC.md#lifecycle (CON-001 to CON-003)",
            "Parallel ADDs in separate containers never share an address.",
            later,
        ),
        not_yet(
            "gc.releases-stale",
            Level::Should,
            "SPEC.md#gc (GC-001 to GC-007)",
            "GC releases what valid-attachments does not name, and only that.",
            later,
        ),
        not_yet(
            "status.answers",
            Level::Must,
            "SPEC.md#status (STA-001 to STA-004)",
            "STATUS succeeds when usable, else 50 or 51.",
            later,
        ),
        not_yet(
            "fault.kill-during-add",
            Level::Should,
            "SPEC.md#lifecycle",
            "A plugin killed during ADD, then DEL, leaves no link, reservation or corrupt store.",
            later,
        ),
        not_yet(
            "delegation.environment",
            Level::Must,
            "SPEC.md#delegated-plugins (DLG-001 to DLG-012)",
            "A delegating plugin runs its delegate from CNI_PATH with the same environment and config, for every verb.",
            "needs an IPAM stub in profiles; the spy makes it possible",
        ),
        not_yet(
            "version.legacy-only",
            Level::May,
            "SPEC.md#version (VER-008)",
            "A plugin without VERSION is treated as 0.1.0-only.",
            "informational; no plugin in reach behaves so",
        ),
        not_yet(
            "env.no-command",
            Level::May,
            "SPEC.md#parameters (ENV-010, ENV-011, ENV-014)",
            "Behaviour without CNI_COMMAND or CNI_PATH, or with unknown CNI_ARGS keys, is recorded.",
            "informational records, no verdict",
        ),
        not_yet(
            "del.changed-prev-result",
            Level::Must,
            "SPEC.md#del (DEL-009)",
            "DEL succeeds with a prevResult a later plugin changed.",
            later,
        ),
    ]
}
