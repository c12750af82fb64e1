//! The in-memory view of a store: address → owner content, sorted by
//! address. A sorted vector rather than a hash map because it is loaded and
//! written whole on every invocation, and 60,000 entries must cost
//! milliseconds, not tens of them.

use std::net::IpAddr;

use super::owner::Owner;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    /// Sorted by address; content is normalised (`Owner::content`).
    entries: Vec<(IpAddr, Box<[u8]>)>,
}

impl Reservations {
    /// From entries already sorted by address (the index keeps them so).
    pub fn from_sorted(entries: Vec<(IpAddr, Box<[u8]>)>) -> Option<Reservations> {
        entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0)
            .then_some(Reservations { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.entries.binary_search_by(|(a, _)| a.cmp(&ip)).is_ok()
    }

    pub fn insert(&mut self, ip: IpAddr, owner: &Owner) {
        let content = owner.content().into_boxed_slice();
        match self.entries.binary_search_by(|(a, _)| a.cmp(&ip)) {
            Ok(i) => self.entries[i].1 = content,
            Err(i) => self.entries.insert(i, (ip, content)),
        }
    }

    pub fn remove(&mut self, ip: IpAddr) {
        if let Ok(i) = self.entries.binary_search_by(|(a, _)| a.cmp(&ip)) {
            self.entries.remove(i);
        }
    }

    /// Addresses whose content is exactly `content`.
    pub fn with_content(&self, content: &[u8]) -> Vec<IpAddr> {
        self.entries
            .iter()
            .filter(|(_, c)| &**c == content)
            .map(|(ip, _)| *ip)
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, Owner)> + '_ {
        self.entries.iter().map(|(ip, c)| (*ip, Owner::parse(c)))
    }

    pub fn raw(&self) -> &[(IpAddr, Box<[u8]>)] {
        &self.entries
    }
}
