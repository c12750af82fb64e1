//! Who holds a reservation: the content of an address file.
//!
//! Upstream writes `<container id>\r\n<ifname>` (no trailing newline); files
//! from before 2018 hold the bare container ID. Content is compared after
//! trimming surrounding whitespace, as upstream does.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Attachment {
        id: String,
        ifname: String,
    },
    /// An old file with only the container ID: it belongs to every ifname.
    Legacy {
        id: String,
    },
    /// Empty or whitespace: a write torn by a crash. Nobody owns it.
    Torn,
}

impl Owner {
    pub fn parse(content: &[u8]) -> Owner {
        let text = String::from_utf8_lossy(content);
        let text = text.trim();
        if text.is_empty() {
            return Owner::Torn;
        }
        match text.split_once("\r\n") {
            Some((id, ifname)) => Owner::Attachment {
                id: id.trim().into(),
                ifname: ifname.trim().into(),
            },
            None => Owner::Legacy { id: text.into() },
        }
    }

    /// The exact bytes upstream writes.
    pub fn file_content(id: &str, ifname: &str) -> Vec<u8> {
        format!("{}\r\n{}", id.trim(), ifname).into_bytes()
    }

    pub fn content(&self) -> Vec<u8> {
        match self {
            Owner::Attachment { id, ifname } => Self::file_content(id, ifname),
            Owner::Legacy { id } => id.as_bytes().to_vec(),
            Owner::Torn => Vec::new(),
        }
    }

    pub fn is_attachment(&self, cid: &str, name: &str) -> bool {
        matches!(self, Owner::Attachment { id, ifname } if id == cid && ifname == name)
    }

    pub fn is_legacy_of(&self, cid: &str) -> bool {
        matches!(self, Owner::Legacy { id } if id == cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_formats() {
        assert_eq!(Owner::file_content("c1", "eth0"), b"c1\r\neth0");
        assert!(Owner::parse(b"c1\r\neth0").is_attachment("c1", "eth0"));
        assert!(Owner::parse(b"  c1\r\neth0\n").is_attachment("c1", "eth0"));
        assert!(Owner::parse(b"c1").is_legacy_of("c1"));
        assert_eq!(Owner::parse(b""), Owner::Torn);
        assert_eq!(Owner::parse(b" \n"), Owner::Torn);
    }
}
