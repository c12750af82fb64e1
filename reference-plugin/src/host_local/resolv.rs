//! `resolvConf`: a resolv.conf file read into the result's `dns`.

use std::path::Path;

use crate::protocol::{CniError, Dns};

pub fn read(path: &Path) -> Result<Dns, CniError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CniError::config(format!(
            "ipam.resolvConf: cannot read {}: {e}",
            path.display()
        ))
    })?;
    Ok(parse(&text))
}

/// `nameserver` appends, `domain` sets (the last wins), `search` and
/// `options` append every field; `#` and `;` start comments.
pub fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => dns.nameservers.extend(fields.next().map(str::to_string)),
            Some("domain") => dns.domain = fields.next().map(str::to_string).or(dns.domain.take()),
            Some("search") => dns.search.extend(fields.map(str::to_string)),
            Some("options") => dns.options.extend(fields.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_usual_keys() {
        let dns = super::parse(
            "# comment\nnameserver 10.0.0.1\nnameserver 2001:db8::1\ndomain a.example\n; x\ndomain b.example\nsearch x.example y.example\noptions ndots:2 edns0\n",
        );
        assert_eq!(dns.nameservers, ["10.0.0.1", "2001:db8::1"]);
        assert_eq!(dns.domain.as_deref(), Some("b.example"));
        assert_eq!(dns.search, ["x.example", "y.example"]);
        assert_eq!(dns.options, ["ndots:2", "edns0"]);
    }
}
