//! The client's address behind trusted reverse proxies (`TRUSTED_PROXIES`).
//!
//! A proxy appends the address it received a request from to `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`; whatever stands to the left of that was written by the client and may be
//! forged. So the list is read from the right, skipping hops that are trusted proxies, and the
//! first untrusted hop is the client. A peer that is not a trusted proxy is the client itself:
//! its forwarding headers are ignored.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use poem::http::{HeaderMap, header::FORWARDED};

/// The `X-Forwarded-For` header (not in the `http` crate's list).
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The address of the client that sent a request.
///
/// `remote` is the TCP peer, `trusted` the proxies allowed to name the client. When the peer
/// is trusted, the client is taken from `Forwarded` (preferred) or `X-Forwarded-For`, walking
/// from the right over trusted hops. `None` when the client cannot be identified: no peer
/// address (e.g. a Unix socket), or the first untrusted hop is `unknown`, an obfuscated
/// identifier (`_hidden`) or unparsable.
pub fn client_addr(
    remote: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let remote = canonical(remote?);
    if !is_trusted(remote, trusted) {
        return Some(remote);
    }
    let hops = if headers.contains_key(FORWARDED) {
        forwarded_for(headers)
    } else if headers.contains_key(X_FORWARDED_FOR) {
        x_forwarded_for(headers)
    } else {
        return Some(remote);
    };
    let mut leftmost = remote;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip, trusted) => leftmost = *ip,
            Some(ip) => return Some(*ip),
            None => return None,
        }
    }
    // Every hop is a trusted proxy: the request started inside the trusted network.
    Some(leftmost)
}

/// `client_addr` of a request: its TCP peer and its headers.
pub fn client_addr_of(request: &poem::Request, trusted: &[IpNet]) -> Option<IpAddr> {
    client_addr(
        request.remote_addr().as_socket_addr().map(|a| a.ip()),
        request.headers(),
        trusted,
    )
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4,
/// so that IPv4 CIDRs match them.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The hops of every `X-Forwarded-For` line, in order; `None` for an entry that is no address.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(parse_node).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The `for=` node of every element of every `Forwarded` line, in order; an element without
/// `for=` or with an unidentifiable node is `None`.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(FORWARDED)
        .iter()
        .flat_map(|value| match value.to_str() {
            Ok(text) => split_outside_quotes(text, ',')
                .into_iter()
                .map(|element| {
                    split_outside_quotes(&element, ';')
                        .into_iter()
                        .filter_map(|pair| {
                            let (name, value) = pair.split_once('=')?;
                            name.trim()
                                .eq_ignore_ascii_case("for")
                                .then(|| unquote(value.trim()))
                        })
                        .next()
                        .and_then(|node| parse_node(&node))
                })
                .collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// Splits on `sep` where it is not inside a quoted string.
fn split_outside_quotes(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in text.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(std::mem::take(&mut current));
            continue;
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// A quoted-string's content (backslash escapes resolved), or a token as it is.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if !escaped && c == '\\' {
                    escaped = true;
                } else {
                    out.push(c);
                    escaped = false;
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// An address from a node: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`. `unknown`, obfuscated identifiers and anything else are `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let ip = node
        .parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = node.strip_prefix('[')?;
            let (addr, _) = inner.split_once(']')?;
            addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(canonical(ip))
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn nets(list: &str) -> Vec<IpNet> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().expect("a CIDR"))
            .collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an IP")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                poem::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn client(remote: &str, pairs: &[(&str, &str)], trusted: &str) -> Option<IpAddr> {
        client_addr(Some(ip(remote)), &headers(pairs), &nets(trusted))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_headers_say() {
        let forged = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(
            client("198.51.100.7", &forged, ""),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client("198.51.100.7", &forged, "10.0.0.0/8"),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn a_trusted_proxy_without_forwarding_headers_is_the_client() {
        assert_eq!(client("10.0.0.2", &[], "10.0.0.0/8"), Some(ip("10.0.0.2")));
    }

    #[test]
    fn no_peer_address_means_no_client() {
        assert_eq!(
            client_addr(None, &HeaderMap::new(), &nets("10.0.0.0/8")),
            None
        );
    }

    #[test]
    fn x_forwarded_for_from_a_trusted_proxy_names_the_client() {
        let h = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_spoofed_left_most_value_is_ignored() {
        // The client wrote "1.2.3.4"; the trusted proxy appended the real peer.
        let h = [("x-forwarded-for", "1.2.3.4, 203.0.113.9")];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
        let h = [("forwarded", "for=1.2.3.4, for=203.0.113.9")];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let h = [(
            "x-forwarded-for",
            "1.2.3.4, 203.0.113.9, 10.1.1.1, 10.2.2.2",
        )];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_chain_of_only_trusted_hops_gives_the_left_most() {
        let h = [("x-forwarded-for", "10.9.9.9, 10.1.1.1")];
        assert_eq!(client("10.0.0.2", &h, "10.0.0.0/8"), Some(ip("10.9.9.9")));
    }

    #[test]
    fn several_header_lines_read_as_one_list_in_order() {
        let h = [
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
        ];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
        let h = [
            ("forwarded", "for=1.2.3.4"),
            ("forwarded", "for=203.0.113.9;proto=https, for=10.1.1.1"),
        ];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn forwarded_is_preferred_to_x_forwarded_for() {
        let h = [
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn forwarded_reads_ipv6_in_brackets_with_ports_and_quoted_values() {
        let trusted = "10.0.0.0/8, fd00::/8";
        for (value, expected) in [
            (r#"for="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
            (r#"for="192.0.2.43:47011""#, "192.0.2.43"),
            ("for=192.0.2.43", "192.0.2.43"),
            ("For=192.0.2.43;Proto=https;By=10.0.0.2", "192.0.2.43"),
            (
                r#"proto=https;for="[2001:db8::1]:443";by="[fd00::1]""#,
                "2001:db8::1",
            ),
            (r#"for="[2001:db8::1]", for="[fd00::5]""#, "2001:db8::1"),
        ] {
            assert_eq!(
                client("fd00::2", &[("forwarded", value)], trusted),
                Some(ip(expected)),
                "{value}"
            );
        }
    }

    #[test]
    fn x_forwarded_for_reads_ipv6_with_and_without_brackets_and_ports() {
        for (value, expected) in [
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:8443", "2001:db8::1"),
            ("192.0.2.43:1234", "192.0.2.43"),
            (" 192.0.2.43 ", "192.0.2.43"),
        ] {
            assert_eq!(
                client("10.0.0.2", &[("x-forwarded-for", value)], "10.0.0.0/8"),
                Some(ip(expected)),
                "{value}"
            );
        }
    }

    #[test]
    fn unknown_or_obfuscated_nodes_leave_the_client_unidentified() {
        for value in [
            "for=unknown",
            "for=_hidden",
            r#"for="_gazonk""#,
            "for=203.0.113.9, for=_proxy7",
            "proto=https",
            "for=",
        ] {
            assert_eq!(
                client("10.0.0.2", &[("forwarded", value)], "10.0.0.0/8"),
                None,
                "{value}"
            );
        }
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "unknown")], "10.0.0.0/8"),
            None
        );
        assert_eq!(
            client(
                "10.0.0.2",
                &[("x-forwarded-for", "203.0.113.9, garbage")],
                "10.0.0.0/8"
            ),
            None
        );
    }

    #[test]
    fn an_unidentifiable_hop_left_of_the_client_does_not_matter() {
        let h = [("forwarded", "for=unknown, for=203.0.113.9")];
        assert_eq!(
            client("10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_match_ipv4_ranges() {
        let h = [("x-forwarded-for", "::ffff:203.0.113.9")];
        assert_eq!(
            client("::ffff:10.0.0.2", &h, "10.0.0.0/8"),
            Some(ip("203.0.113.9"))
        );
    }
}
