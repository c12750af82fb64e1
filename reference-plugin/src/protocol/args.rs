//! `CNI_ARGS`: `K=V` pairs separated by `;`.
//!
//! Unlike the Go library, unknown keys are ignored without `IgnoreUnknown`
//! (the spec asks plugins to ignore what they do not understand) and a value
//! may contain `=`. A pair without `=` is still an error naming `CNI_ARGS`.

use super::error::CniError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

impl CniArgs {
    pub fn parse(raw: &str) -> Result<CniArgs, CniError> {
        let mut pairs = Vec::new();
        for pair in raw.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                CniError::env(format!("CNI_ARGS holds a pair without '=': {pair:?}"))
            })?;
            pairs.push((k.to_string(), v.to_string()));
        }
        Ok(CniArgs { pairs })
    }

    /// The last value given for `key` (keys are case-sensitive, as upstream).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubernetes_style_args() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=a=b;IP=10.0.0.5;").unwrap();
        assert_eq!(a.get("IP"), Some("10.0.0.5"));
        assert_eq!(a.get("K8S_POD_NAME"), Some("a=b"));
        assert_eq!(a.get("ip"), None);
    }

    #[test]
    fn pair_without_equals_is_an_env_error() {
        let err = CniArgs::parse("IP").unwrap_err();
        assert_eq!(err.code, crate::protocol::error::code::INVALID_ENV);
        assert!(err.msg.contains("CNI_ARGS"));
    }
}
