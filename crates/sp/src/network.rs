//! What one client controls, for the bounds anyone can make a server spend (logins started
//! and not finished here; sign-in attempts and parked requests at the IdP).

use std::net::{IpAddr, SocketAddr};

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

/// The client's address as the bounds count it: the last `X-Forwarded-For` hop when the
/// server sits behind a proxy it was told to believe (`trust_forwarded_for`), otherwise the
/// socket peer; `None` when neither is known. Only the *last* hop is the proxy's own:
/// everything before it came from the client. So when the last hop is not an address (an
/// `ip:port`, as some balancers write, is read as its address) nothing earlier is believed
/// either, and the peer counts. Without a believed proxy every browser behind it shares the
/// proxy's one address, and one client's flood uses up everyone's bound.
///
/// `forwarded_for` is every `X-Forwarded-For` header value in the order received.
pub fn client_address<'a>(
    forwarded_for: impl IntoIterator<Item = &'a str>,
    peer: Option<IpAddr>,
    trust_forwarded_for: bool,
) -> Option<String> {
    let last_hop = || {
        let last = forwarded_for
            .into_iter()
            .flat_map(|v| v.split(','))
            .last()?;
        let last = last.trim();
        last.parse::<IpAddr>()
            .ok()
            .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
    };
    match trust_forwarded_for.then(last_hop).flatten() {
        Some(ip) => Some(ip.to_string()),
        None => peer.map(|ip| ip.to_string()),
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
    use std::net::IpAddr;

    use super::{client_address, network_of, wide_network_of};

    #[test]
    fn only_a_believed_proxys_last_hop_names_the_client() {
        let peer: Option<IpAddr> = "10.0.0.2".parse().ok();
        let addr = |values: &[&str], trust| client_address(values.iter().copied(), peer, trust);
        // Not believed: whatever the client wrote, the peer counts.
        assert_eq!(addr(&["192.0.2.7"], false).as_deref(), Some("10.0.0.2"));
        // Believed: the proxy appends the address it saw; earlier hops are the client's own.
        assert_eq!(
            addr(&["198.51.100.1, 192.0.2.7"], true).as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            addr(&["198.51.100.1", "192.0.2.7"], true).as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            addr(&["192.0.2.7:51234"], true).as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            addr(&["[2001:db8::7]:443"], true).as_deref(),
            Some("2001:db8::7")
        );
        assert_eq!(
            addr(&[" 2001:DB8::7 "], true).as_deref(),
            Some("2001:db8::7")
        );
        // A last hop that is no address does not let an earlier, client-written one count.
        assert_eq!(
            addr(&["198.51.100.1, unknown"], true).as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(
            addr(&["198.51.100.1", ""], true).as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(addr(&[], true).as_deref(), Some("10.0.0.2"));
        assert_eq!(client_address(["unknown"], None, true), None);
    }

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
