//! Attachments: one container, two interfaces (on one network, and on two).

use super::context::World;
use super::outcome::{Judged, Unjudged, deviation, pass};
use super::{Check, Cx, row};
use crate::profile::PluginKind;
use crate::runtime::NetworkConfig;
use crate::snapshot::Parts;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("attachment.two-in-one-container", "ADD-018", "Two attachments of one container (eth0 and eth1, on one network and on two) both ADD, and DEL of one leaves the other.", two_in_one_container),
    ]
}

/// Two attachments of container 0 (`c1`): `eth0` on the world's network
/// and `eth1` on `net`. Both ADD; DEL of `eth1` leaves `eth0` in place and
/// CHECKable.
fn two_attachments(
    cx: &Cx,
    w: &World,
    net: &NetworkConfig,
    what: &str,
) -> Result<Option<String>, Unjudged> {
    let a = w.add(&w.attachment(0, "c1", w.ifname()))?;
    let b = w.add_to(net, &w.attachment(0, "c1", "eth1"))?;
    cx.own_failure(&a.run)?;
    cx.own_failure(&b.run)?;
    if !a.succeeded() || !b.succeeded() {
        let say = |ok: bool| if ok { "succeeded" } else { "failed" };
        return Ok(Some(format!(
            "{what}: ADD eth0 {}, ADD eth1 {}",
            say(a.succeeded()),
            say(b.succeeded())
        )));
    }
    b.del()?;
    if cx.kind() == PluginKind::Interface && w.kernel(0, Parts::LINKS)?.link(w.ifname()).is_none() {
        return Ok(Some(format!("{what}: DEL of eth1 removed {}", w.ifname())));
    }
    if cx.version.has_check() {
        let check = a.check()?;
        cx.own_failure(&check)?;
        if !check.succeeded() {
            return Ok(Some(format!(
                "{what}: CHECK of eth0 fails after DEL of eth1"
            )));
        }
    }
    Ok(None)
}

fn two_in_one_container(cx: &Cx) -> Judged {
    if cx.profile.one_attachment {
        return Err(Unjudged::NotApplicable(
            "the profile allows one attachment at a time".into(),
        ));
    }
    // One network, two interface names (the attachment's key is the
    // network, the container and the interface name).
    let w = cx.world()?;
    w.creates_its_interface()?;
    let same = w.net.clone();
    if let Some(problem) = two_attachments(cx, &w, &same, "one network")? {
        return deviation(problem);
    }
    // Two networks: another name, subnet and (for profiles that name one)
    // per-network resource, same profile.
    let w = cx.world()?;
    let mut fill = w.fill.clone();
    fill.subnet = "10.87.0.0/24".parse().expect("a valid subnet");
    fill.net = "1".into();
    let doc = cx.profile.network(cx.version, "conformance-b", &fill);
    let other =
        NetworkConfig::parse(doc.to_string().as_bytes()).map_err(super::CaseError::Config)?;
    if let Some(problem) = two_attachments(cx, &w, &other, "two networks")? {
        return deviation(problem);
    }
    pass("both pairs of attachments came and went independently (one network, and two)")
}
