//! What one client controls, for the bounds anyone can make a server spend (logins started
//! and not finished here; sign-in attempts and parked requests at the IdP).

use std::net::IpAddr;

/// An IPv4 address, or an IPv6 /64 (one subnet is routinely handed to one customer, who can
/// then use 2^64 addresses: counting each on its own would let a single client rotate
/// through fresh keys for ever). Anything that is not an address is kept as it is.
pub fn network_of(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_owned(),
    }
}

/// How many [`network_of`] networks' worth the /64s of one IPv6 /48 get together, in every
/// bound that counts both (logins started here, sign-in attempts, reset requests, refused
/// requests and parked requests at the IdP): enough for a site's few real subnets, while
/// its 65,536 /64s buy no more than that.
pub const WIDE_NETWORK_FACTOR: u16 = 5;

/// The IPv6 /48 that a [`network_of`] /64 lies in, as the prefix every /64 in it shares
/// (`2001:db8:1:` of `2001:db8:1:2::/64`); `None` for anything else. A site is commonly
/// handed a /48, whose owner then controls 65,536 /64s: a second, looser bound counts them
/// together.
pub fn wide_network_of(network: &str) -> Option<&str> {
    if !network.ends_with("::/64") {
        return None;
    }
    let third = network.match_indices(':').nth(2)?.0;
    network.get(..=third)
}

#[cfg(test)]
mod tests {
    use super::{network_of, wide_network_of};

    #[test]
    fn an_ipv6_64_lies_in_its_48_and_nothing_else_has_one() {
        let wide = |a: &str| wide_network_of(&network_of(a)).map(str::to_owned);
        assert_eq!(wide("2001:db8:1:2:aa::1").as_deref(), Some("2001:db8:1:"));
        assert_eq!(wide("2001:db8:1:ffff::1"), wide("2001:db8:1:2::1"));
        // A prefix of segments, not of characters: 2001:db8:1a:: is another /48.
        assert_ne!(wide("2001:db8:1a::1"), wide("2001:db8:1::1"));
        assert!(!network_of("2001:db8:1a::1").starts_with("2001:db8:1:"));
        assert_eq!(wide("::1").as_deref(), Some("0:0:0:"));
        assert_eq!(wide("::ffff:192.0.2.7"), None);
        assert_eq!(wide("192.0.2.7"), None);
        assert_eq!(wide("unknown"), None);
    }

    #[test]
    fn an_ipv6_client_is_its_64_and_a_mapped_ipv4_its_address() {
        assert_eq!(network_of("2001:db8:1:2:aa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            network_of("2001:db8:1:2:ffff::9"),
            network_of("2001:db8:1:2::1")
        );
        assert_ne!(network_of("2001:db8:1:3::1"), network_of("2001:db8:1:2::1"));
        assert_eq!(network_of("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(network_of("192.0.2.7"), "192.0.2.7");
        assert_eq!(network_of("unknown"), "unknown");
    }
}
