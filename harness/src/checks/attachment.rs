//! Attachments: one container, two networks.

use super::outcome::{Judged, deviation, pass};
use super::{Check, Cx, Level, row, spec};
use crate::profile::PluginKind;
use crate::runtime::NetworkConfig;
use crate::snapshot::Parts;
use crate::spec::Version;

#[rustfmt::skip]
pub(super) fn checks() -> Vec<Check> {
    vec![
        row("attachment.two-in-one-container", Level::Must, spec("add", "ADD-018"), "Two attachments of one container (eth0, eth1; two networks) both ADD, and DEL of one leaves the other.", two_in_one_container).since(Version::V0_3_0),
    ]
}

fn two_in_one_container(cx: &Cx) -> Judged {
    let w = cx.world()?;
    // The second network: another name and subnet, same profile.
    let mut fill = w.fill.clone();
    fill.subnet = "10.87.0.0/24".parse().expect("a valid subnet");
    let doc = cx.profile.network(cx.version, "conformance-b", &fill);
    let net_b =
        NetworkConfig::parse(doc.to_string().as_bytes()).map_err(super::CaseError::Config)?;
    let a = w.add(&w.attachment(0, "c1", "eth0"))?;
    let b = w.add_to(&net_b, &w.attachment(0, "c1", "eth1"))?;
    if !a.succeeded() || !b.succeeded() {
        let say = |ok: bool| if ok { "succeeded" } else { "failed" };
        return deviation(format!(
            "ADD eth0 {}, ADD eth1 {}",
            say(a.succeeded()),
            say(b.succeeded())
        ));
    }
    b.del()?;
    if cx.kind() == PluginKind::Interface && w.kernel(0, Parts::LINKS)?.link("eth0").is_none() {
        return deviation("DEL of eth1 removed eth0");
    }
    if cx.version.has_check() && !a.check()?.succeeded() {
        return deviation("CHECK of eth0 fails after DEL of eth1");
    }
    pass("both attachments came and went independently")
}
