//! Which network addresses count as public: the rule the runtime applies to every
//! tenant-controlled URL it requests, and the control plane to a URL whose host is
//! a literal address when an agent is saved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link local, fe80::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated), ::/96
}

/// Why `url`'s host is not on the public internet, if it is written as an address
/// that is not (`https://10.0.0.5/…`, `https://[::ffff:127.0.0.1]/…`) or as a name that
/// is loopback by definition (`localhost`, `*.localhost`, RFC 6761). Other names are
/// checked when they are resolved, by the runtime.
pub fn inward_host(url: &url::Url) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                return Some(format!("must not name {name}, which is this machine"));
            }
            return None;
        }
    };
    (!is_public(ip)).then(|| {
        format!("must not point at {ip}: loopback, private, link-local and other non-public addresses are refused")
    })
}

/// Whether a webhook URL is a credential in itself, kept sealed like a secret: a
/// Make.com (or Integromat) scenario URL, whose path is the key, or any URL with a
/// query string or fragment (where tokens travel).
pub fn is_secret_url(url: &url::Url) -> bool {
    let host = url.host_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    let make = ["make.com", "integromat.com"].iter().any(|d| host == *d || host.ends_with(&format!(".{d}")));
    make || url.query().is_some() || url.fragment().is_some()
}

/// `url` as it may be shown and logged: scheme, host and port, with the path and
/// query replaced by `…` (`https://hook.eu1.make.com/…`).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let bare = u.path() == "/" && u.query().is_none() && u.fragment().is_none();
            if bare { format!("{}://{host}{port}/", u.scheme()) } else { format!("{}://{host}{port}/…", u.scheme()) }
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.170.2",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is inward");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn urls_that_carry_credentials_are_found_and_shown_without_them() {
        for secret in [
            "https://hook.eu1.make.com/abc123xyz",
            "https://hook.integromat.com/abc",
            "https://hooks.example.com/in?token=abc",
            "https://hooks.example.com/in#sig",
        ] {
            assert!(is_secret_url(&url::Url::parse(secret).unwrap()), "{secret}");
        }
        assert!(!is_secret_url(&url::Url::parse("https://hooks.example.com/tempovoice").unwrap()));
        assert!(!is_secret_url(&url::Url::parse("https://notmake.com/x").unwrap()));
        assert_eq!(redact_url("https://hook.eu1.make.com/abc123xyz"), "https://hook.eu1.make.com/…");
        assert_eq!(redact_url("https://h.example.com:8443/a/b?token=s3cret"), "https://h.example.com:8443/…");
        assert_eq!(redact_url("https://h.example.com/"), "https://h.example.com/");
        assert_eq!(redact_url("not a url"), "(not a URL)");
    }

    #[test]
    fn urls_naming_inward_hosts_are_found() {
        for inward in [
            "https://127.0.0.1/hook",
            "https://10.0.0.5:8443/hook",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:a9fe:aa02]/v2/credentials",
            "https://169.254.169.254/latest/meta-data",
            "https://0x7f.1/hook",
            "https://2130706433/hook",
            "https://localhost/hook",
            "https://LOCALHOST./hook",
            "https://api.localhost/hook",
        ] {
            let url = url::Url::parse(inward).unwrap();
            assert!(inward_host(&url).is_some(), "{inward} ({:?})", url.host());
        }
        for outward in ["https://hooks.example.com/x", "https://8.8.8.8/x", "https://localhost.example.com/x"] {
            assert_eq!(inward_host(&url::Url::parse(outward).unwrap()), None, "{outward}");
        }
    }
}
