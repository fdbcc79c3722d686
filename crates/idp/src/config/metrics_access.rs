//! Who may read `/metrics`.
//!
//! The series name applications and count sign-in failures by reason, which is reconnaissance
//! for an attacker, so they are not public: a scrape is allowed from an address in
//! `[server] metrics_allow` (default: loopback only) or with `Authorization: Bearer` and the
//! `metrics_token`. The address is the one sign-in throttling uses (the socket peer, or the
//! last `X-Forwarded-For` hop when `trust_forwarded_for` is on).

use std::net::IpAddr;

use subtle::ConstantTimeEq;

/// One allowed network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address (a network of one).
    pub fn parse(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|e| format!("{text:?} is not an address or network: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix must be 0-{max}"))?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is inside. An IPv4-mapped IPv6 peer counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a.get(..full) != b.get(..full) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(full), b.get(full)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// The checked access rule.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsAccess {
    allow: Vec<Network>,
    token: Option<String>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("allow", &self.allow)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl MetricsAccess {
    /// The rule from the allowed networks and the optional token.
    pub fn new(allow: Vec<Network>, token: Option<String>) -> Self {
        MetricsAccess {
            allow,
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Whether a scrape from `addr` presenting `bearer` (the `Authorization: Bearer` value,
    /// if any) may read the metrics.
    pub fn allows(&self, addr: &str, bearer: Option<&str>) -> bool {
        if let Ok(ip) = addr.parse::<IpAddr>()
            && self.allow.iter().any(|n| n.contains(ip))
        {
            return true;
        }
        let Some(want) = &self.token else {
            return false;
        };
        bearer.is_some_and(|got| bool::from(got.trim().as_bytes().ct_eq(want.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| Network::parse(n).unwrap()).collect()
    }

    #[test]
    fn networks_match_by_prefix() {
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        let odd = Network::parse("192.168.4.0/22").unwrap();
        assert!(odd.contains("192.168.7.255".parse().unwrap()));
        assert!(!odd.contains("192.168.8.0".parse().unwrap()));
        assert!(
            Network::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            Network::parse("127.0.0.0/8")
                .unwrap()
                .contains("::ffff:127.0.0.9".parse().unwrap())
        );
        assert!(
            !Network::parse("::1")
                .unwrap()
                .contains("127.0.0.1".parse().unwrap())
        );
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nonsense").is_err());
    }

    #[test]
    fn a_scrape_needs_an_allowed_address_or_the_token() {
        let access = MetricsAccess::new(nets(&["127.0.0.0/8"]), Some("s3cret".into()));
        assert!(access.allows("127.0.0.1", None));
        assert!(!access.allows("203.0.113.9", None));
        assert!(!access.allows("unknown", None));
        assert!(access.allows("203.0.113.9", Some("s3cret")));
        assert!(!access.allows("203.0.113.9", Some("s3cres")));
        // No token configured: a bearer value opens nothing.
        let closed = MetricsAccess::new(vec![], None);
        assert!(!closed.allows("127.0.0.1", Some("s3cret")));
    }
}
