//! Address ranges and range sets: validation and the allocation order.
//!
//! Addresses are handled as `u128` so IPv4 and IPv6 share one arithmetic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// A validated range inside one subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNetwork,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: Option<IpAddr>,
}

/// The ranges one address is drawn from: disjoint, one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

/// A range as written in the configuration, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeSpec {
    pub subnet: String,
    #[serde(default)]
    pub range_start: Option<String>,
    #[serde(default)]
    pub range_end: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
}

pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

fn parse_ip(s: &str, what: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("{what} {s:?} is not an IP address"))
}

impl RangeSpec {
    /// Validates and fills the defaults the way upstream does: start is the
    /// subnet's first host, end its last (IPv4 broadcast excluded), gateway
    /// the first host.
    pub fn validate(&self) -> Result<Range, String> {
        let subnet: IpNetwork = self
            .subnet
            .parse()
            .map_err(|_| format!("subnet {:?} is not a CIDR", self.subnet))?;
        let v4 = subnet.is_ipv4();
        if subnet.ip() != subnet.network() {
            return Err(format!(
                "subnet {} has host bits set; the network address is {}",
                self.subnet,
                subnet.network()
            ));
        }
        let host_bits = if v4 { 32 } else { 128 } - subnet.prefix() as u32;
        if host_bits < 2 {
            return Err(format!("subnet {subnet} is too small to allocate from"));
        }
        let net = to_u128(subnet.network());
        // All host bits set; a shift by 128 (`::/0`) would overflow.
        let last = net | (u128::MAX >> (128 - host_bits));
        let within = |ip: IpAddr, what: &str| -> Result<IpAddr, String> {
            if subnet.contains(ip) {
                Ok(ip)
            } else {
                Err(format!("{what} {ip} is not in subnet {subnet}"))
            }
        };
        let start = match &self.range_start {
            Some(s) => within(parse_ip(s, "rangeStart")?, "rangeStart")?,
            None => from_u128(net + 1, v4),
        };
        let end = match &self.range_end {
            Some(s) => within(parse_ip(s, "rangeEnd")?, "rangeEnd")?,
            None => from_u128(if v4 { last - 1 } else { last }, v4),
        };
        if to_u128(start) > to_u128(end) {
            return Err(format!("rangeStart {start} is after rangeEnd {end}"));
        }
        let gateway = match &self.gateway {
            Some(g) => Some(parse_ip(g, "gateway")?),
            None => Some(from_u128(net + 1, v4)),
        };
        if gateway.is_some_and(|g| g.is_ipv4() != v4) {
            return Err(format!(
                "gateway {} is not of the subnet's family",
                gateway.unwrap()
            ));
        }
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }
}

impl Range {
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.subnet.is_ipv4()
            && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(ip))
    }

    /// Whether `ip` may be handed out: in range, not the gateway, and (IPv4)
    /// not the network or broadcast address even when rangeStart/rangeEnd
    /// name them explicitly (upstream would hand those out).
    pub fn is_assignable(&self, ip: IpAddr) -> bool {
        self.contains(ip) && Some(ip) != self.gateway && !self.is_network_or_broadcast(ip)
    }

    fn is_network_or_broadcast(&self, ip: IpAddr) -> bool {
        match self.subnet {
            IpNetwork::V4(n) => ip == IpAddr::V4(n.network()) || ip == IpAddr::V4(n.broadcast()),
            IpNetwork::V6(_) => false,
        }
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.subnet.is_ipv4() == other.subnet.is_ipv4()
            && to_u128(self.start) <= to_u128(other.end)
            && to_u128(other.start) <= to_u128(self.end)
    }
}

impl RangeSet {
    pub fn validate(specs: &[RangeSpec]) -> Result<RangeSet, String> {
        if specs.is_empty() {
            return Err("the range set is empty".into());
        }
        let ranges = specs
            .iter()
            .map(RangeSpec::validate)
            .collect::<Result<Vec<_>, _>>()?;
        let v4 = ranges[0].subnet.is_ipv4();
        if ranges.iter().any(|r| r.subnet.is_ipv4() != v4) {
            return Err("mixed address families".into());
        }
        for (i, a) in ranges.iter().enumerate() {
            if let Some(b) = ranges[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(format!("subnets {} and {} overlap", a.subnet, b.subnet));
            }
        }
        Ok(RangeSet(ranges))
    }

    pub fn is_ipv4(&self) -> bool {
        self.0[0].subnet.is_ipv4()
    }

    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }

    /// The range that may hand out `ip`, if any.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(ip))
    }

    /// Candidates in upstream's round-robin order: just after `last` when it
    /// lies in the set (wrapping through the ranges, `last` itself tried
    /// last), otherwise from the first range's start. Unassignable addresses
    /// (gateways, IPv4 network/broadcast) are skipped.
    pub fn candidates(&self, last: Option<IpAddr>) -> impl Iterator<Item = (&Range, IpAddr)> + '_ {
        let v4 = self.is_ipv4();
        let (first_range, first_addr) = match last.and_then(|l| {
            self.0
                .iter()
                .position(|r| r.contains(l))
                .map(|i| (i, to_u128(l)))
        }) {
            Some((i, l)) if l < to_u128(self.0[i].end) => (i, l + 1),
            Some((i, _)) => (
                (i + 1) % self.0.len(),
                to_u128(self.0[(i + 1) % self.0.len()].start),
            ),
            None => (0, to_u128(self.0[0].start)),
        };
        // Each range once, except the first visited, which is split: from
        // first_addr to its end now, its head at the very end.
        let n = self.0.len();
        let first = &self.0[first_range];
        let mut segments = vec![(first, first_addr, to_u128(first.end))];
        segments.extend((1..n).map(|step| {
            let r = &self.0[(first_range + step) % n];
            (r, to_u128(r.start), to_u128(r.end))
        }));
        if first_addr > to_u128(first.start) {
            segments.push((first, to_u128(first.start), first_addr - 1));
        }
        segments.into_iter().flat_map(move |(r, lo, hi)| {
            (lo..=hi)
                .map(move |a| (r, from_u128(a, v4)))
                .filter(|(r, ip)| r.is_assignable(*ip))
        })
    }

    /// How many addresses the set can hand out at most.
    pub fn capacity(&self) -> u128 {
        self.0
            .iter()
            .map(|r| {
                let excluded = [r.gateway, Some(r.subnet.network()), self.broadcast(r)]
                    .into_iter()
                    .flatten()
                    .filter(|ip| r.contains(*ip) && !r.is_assignable(*ip))
                    .collect::<std::collections::HashSet<_>>()
                    .len() as u128;
                // size - excluded without computing size: a range of the
                // whole IPv6 space from `::` holds 2^128 addresses.
                let span = to_u128(r.end) - to_u128(r.start);
                match excluded {
                    0 => span.saturating_add(1),
                    n => span - (n - 1),
                }
            })
            .fold(0, u128::saturating_add)
    }

    fn broadcast(&self, r: &Range) -> Option<IpAddr> {
        match r.subnet {
            IpNetwork::V4(n) => Some(IpAddr::V4(n.broadcast())),
            IpNetwork::V6(_) => None,
        }
    }

    /// `start-end[,start-end…]`, as upstream words exhaustion errors.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(subnet: &str) -> RangeSpec {
        RangeSpec {
            subnet: subnet.into(),
            ..RangeSpec::default()
        }
    }

    fn set(specs: &[RangeSpec]) -> RangeSet {
        RangeSet::validate(specs).unwrap()
    }

    fn ips(set: &RangeSet, last: Option<&str>) -> Vec<String> {
        set.candidates(last.map(|l| l.parse().unwrap()))
            .map(|(_, ip)| ip.to_string())
            .collect()
    }

    #[test]
    fn defaults_match_upstream() {
        let r = spec("10.1.2.0/24").validate().unwrap();
        assert_eq!(r.start.to_string(), "10.1.2.1");
        assert_eq!(r.end.to_string(), "10.1.2.254");
        assert_eq!(r.gateway.unwrap().to_string(), "10.1.2.1");
        let r6 = spec("2001:db8::/126").validate().unwrap();
        assert_eq!(r6.end.to_string(), "2001:db8::3");
    }

    #[test]
    fn the_whole_address_space_is_a_range() {
        // ::/0 has 128 host bits (computing its last address panicked).
        let r6 = spec("::/0").validate().unwrap();
        assert_eq!(r6.start.to_string(), "::1");
        assert_eq!(
            r6.end.to_string(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        let r4 = spec("0.0.0.0/0").validate().unwrap();
        assert_eq!(r4.end.to_string(), "255.255.255.254");
    }

    #[test]
    fn invalid_ranges_are_explained() {
        assert!(
            spec("10.1.2.5/24")
                .validate()
                .unwrap_err()
                .contains("host bits")
        );
        assert!(
            spec("10.1.2.0/31")
                .validate()
                .unwrap_err()
                .contains("too small")
        );
        assert!(
            spec("2001:db8::/127")
                .validate()
                .unwrap_err()
                .contains("too small")
        );
        let inverted = RangeSpec {
            range_start: Some("10.1.2.20".into()),
            range_end: Some("10.1.2.10".into()),
            ..spec("10.1.2.0/24")
        };
        assert!(inverted.validate().unwrap_err().contains("after rangeEnd"));
        let outside = RangeSpec {
            range_start: Some("10.9.9.9".into()),
            ..spec("10.1.2.0/24")
        };
        assert!(outside.validate().unwrap_err().contains("not in subnet"));
        assert!(RangeSet::validate(&[spec("10.1.0.0/16"), spec("10.1.2.0/24")]).is_err());
        assert_eq!(
            RangeSet::validate(&[spec("10.1.0.0/24"), spec("2001:db8::/64")]).unwrap_err(),
            "mixed address families"
        );
    }

    #[test]
    fn slash_30_hands_out_one_address_and_126_two() {
        assert_eq!(ips(&set(&[spec("10.81.0.0/30")]), None), ["10.81.0.2"]);
        assert_eq!(
            ips(&set(&[spec("fd00::/126")]), None),
            ["fd00::2", "fd00::3"]
        );
    }

    #[test]
    fn explicit_network_and_broadcast_are_never_handed_out() {
        let s = set(&[RangeSpec {
            range_start: Some("10.81.0.0".into()),
            range_end: Some("10.81.0.3".into()),
            ..spec("10.81.0.0/30")
        }]);
        assert_eq!(ips(&s, None), ["10.81.0.2"]);
        assert_eq!(s.capacity(), 1);
    }

    #[test]
    fn the_capacity_of_the_whole_ipv6_space_is_counted() {
        let s = set(&[RangeSpec {
            range_start: Some("::".into()),
            ..spec("::/0")
        }]);
        // 2^128 addresses but the gateway (an IPv6 network address named
        // as rangeStart is handed out).
        assert_eq!(s.capacity(), u128::MAX);
        // Each half from its first host, but its gateway: 2^127 - 2.
        assert_eq!(
            set(&[spec("::/1"), spec("8000::/1")]).capacity(),
            u128::MAX - 3
        );
    }

    #[test]
    fn round_robin_wraps_and_tries_last_reserved_last() {
        let s = set(&[spec("10.0.0.0/29")]); // .2 .. .6 assignable
        assert_eq!(
            ips(&s, Some("10.0.0.4")),
            ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        );
        assert_eq!(
            ips(&s, Some("10.0.0.6")),
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        // Out of the set: start from the beginning.
        assert_eq!(ips(&s, Some("192.168.0.1")).first().unwrap(), "10.0.0.2");
    }

    #[test]
    fn round_robin_moves_across_ranges() {
        let s = set(&[spec("10.0.0.0/30"), spec("10.0.1.0/30")]);
        assert_eq!(ips(&s, None), ["10.0.0.2", "10.0.1.2"]);
        assert_eq!(ips(&s, Some("10.0.0.2")), ["10.0.1.2", "10.0.0.2"]);
        assert_eq!(ips(&s, Some("10.0.1.2")), ["10.0.0.2", "10.0.1.2"]);
        assert_eq!(s.describe(), "10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2");
    }

    #[test]
    fn gateway_elsewhere_frees_the_first_host() {
        let s = set(&[RangeSpec {
            gateway: Some("10.0.0.6".into()),
            ..spec("10.0.0.0/29")
        }]);
        assert_eq!(
            ips(&s, None),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
        );
    }
}
