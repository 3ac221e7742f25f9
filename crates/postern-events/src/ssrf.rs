//! The guard against server-side request forgery: webhook targets may not reach internal networks.
//!
//! Purpose: refuse a target whose host is, or resolves to, an address of a loopback, private,
//! shared (CGNAT), link-local, unique-local, multicast, reserved or unspecified range, for IPv4 and
//! IPv6 alike, including IPv4 embedded in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), unless `allow_private_targets` is set.
//! Non-goal: a general egress firewall; a deployment that must confine webhooks further should
//! also filter at the network level.
//! Key decision: the check runs twice, with the same rules. At create/update time
//! ([`check_target`]) so a caller hears at once why a URL is refused; and at delivery time inside
//! the HTTP client's own DNS resolver (`GuardedResolver`), so the address that is checked is the
//! address that is connected to: a host that resolved to a public address at creation and to
//! `127.0.0.1` later (DNS rebinding) is refused when it matters. Hosts written as IP literals never
//! reach a resolver, so the deliverer checks them itself ([`refused_literal`]). Redirects are not
//! followed and proxies from the environment are ignored (see `delivery.rs`), so neither can move a
//! request past the guard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::error::TargetError;

/// The longest URL accepted.
const MAX_URL_LEN: usize = 2048;

/// Parses a webhook URL: `http` or `https`, with a host, without user name or password.
pub fn parse_target(url: &str) -> Result<Url, TargetError> {
    let invalid = |reason| TargetError::InvalidUrl { reason };
    if url.len() > MAX_URL_LEN {
        return Err(invalid("longer than 2048 characters"));
    }
    let parsed = Url::parse(url).map_err(|_| invalid("not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if parsed.host().is_none() {
        return Err(invalid("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "user name and password are not allowed in the URL; verify the signature instead",
        ));
    }
    Ok(parsed)
}

/// Checks where `url` leads: its IP literal, or every address its host name resolves to. With
/// `allow_private` nothing is checked (not even that the name resolves).
pub async fn check_target(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    if allow_private {
        return Ok(());
    }
    match url.host() {
        None => Err(TargetError::InvalidUrl { reason: "no host" }),
        Some(Host::Ipv4(ip)) => check_address(&ip.to_string(), IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => check_address(&format!("[{ip}]"), IpAddr::V6(ip)),
        Some(Host::Domain(domain)) => resolve_checked(domain, false).await.map(|_| ()),
    }
}

/// For a URL whose host is an IP literal: the refusal, if that address is internal. Host names
/// give `None` here; the resolver checks them when connecting.
pub fn refused_literal(url: &Url, allow_private: bool) -> Option<TargetError> {
    if allow_private {
        return None;
    }
    let (host, ip) = match url.host()? {
        Host::Ipv4(ip) => (ip.to_string(), IpAddr::V4(ip)),
        Host::Ipv6(ip) => (format!("[{ip}]"), IpAddr::V6(ip)),
        Host::Domain(_) => return None,
    };
    check_address(&host, ip).err()
}

fn check_address(host: &str, address: IpAddr) -> Result<(), TargetError> {
    match refused_range(address) {
        None => Ok(()),
        Some(range) => Err(TargetError::PrivateAddress {
            host: host.to_owned(),
            address,
            range,
        }),
    }
}

/// Resolves `host` and refuses it if any of its addresses is internal (unless `allow_private`):
/// a name that mixes public and internal addresses is suspicious, not half-usable.
async fn resolve_checked(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
    let unresolvable = |reason: String| TargetError::Unresolvable {
        host: host.to_owned(),
        reason,
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|err| unresolvable(err.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(unresolvable("no addresses".to_owned()));
    }
    if !allow_private {
        for address in &addresses {
            check_address(host, address.ip())?;
        }
    }
    Ok(addresses)
}

/// The name of the internal range `address` falls in, or `None` for an ordinary public address.
pub fn refused_range(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private (10.0.0.0/8)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (100, 64..=127, _) => "shared CGNAT (100.64.0.0/10)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved (240.0.0.0/4) or broadcast",
        _ => return None,
    };
    Some(range)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return refused_v4(v4);
    }
    let segments = ip.segments();
    let range = match segments[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        0xfc00..=0xfdff => "unique-local (fc00::/7)",
        0xfe80..=0xfebf => "link-local (fe80::/10)",
        0xfec0..=0xfeff => "site-local (fec0::/10)",
        0xff00..=0xffff => "multicast",
        0x2001 if segments[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        _ => return None,
    };
    Some(range)
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped, IPv4-compatible, NAT64 or 6to4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        // `::a.b.c.d` (deprecated), but not `::` and `::1`, which are their own ranges.
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_unspecified() && !ip.is_loopback() => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver, then refuses a name that
/// has any internal address (unless `allow_private`), so the refusal happens at connect time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses = resolve_checked(name.as_str(), allow_private).await?;
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the right failure in a test
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        refused_range(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn internal_ipv4_ranges_are_refused() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
        ] {
            assert!(refused(ip), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.0.1",
            "1.1.1.1",
        ] {
            assert!(!refused(ip), "{ip}");
        }
    }

    #[test]
    fn internal_ipv6_ranges_and_embedded_ipv4_are_refused() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(refused(ip), "{ip}");
        }
        for ip in ["2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"] {
            assert!(!refused(ip), "{ip}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(parse_target("https://hooks.example.com/postern?x=1").is_ok());
        assert!(parse_target("http://203.0.113.9:8080/").is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "file:///etc/passwd",
            "",
        ] {
            assert!(
                matches!(parse_target(bad), Err(TargetError::InvalidUrl { .. })),
                "{bad}"
            );
        }
        assert!(parse_target(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn ip_literals_are_checked_without_dns_even_when_spelled_oddly() {
        // The WHATWG parser normalizes `0x7f.1` to 127.0.0.1: the check sees the real address.
        for url in [
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://[::1]:9/",
            "http://[::ffff:7f00:1]/",
        ] {
            let url = parse_target(url).unwrap();
            assert!(refused_literal(&url, false).is_some(), "{url}");
            assert!(refused_literal(&url, true).is_none(), "{url}");
        }
        let named = parse_target("http://localhost/").unwrap();
        assert!(
            refused_literal(&named, false).is_none(),
            "names are the resolver's job"
        );
    }
}
