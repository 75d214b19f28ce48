//! Requests to tenants' URLs (webhooks) that cannot be turned inward.
//!
//! A webhook URL is the tenant's to choose, so it must not reach what sits beside the
//! runtime: the task's metadata endpoint (169.254.170.2), the VPC, other agents, the
//! control plane. The client built here:
//! - resolves the host itself and refuses loopback, private, link-local, shared
//!   (CGNAT), multicast, unique-local and other non-public addresses, IPv4 and IPv6
//!   (an IPv4 address mapped into IPv6 is judged as IPv4);
//! - connects only to the addresses it checked (the resolver's answer is the one
//!   used), so a name that resolves differently the second time gets nothing;
//! - follows no redirect;
//! - is bounded in time (the caller sets a per-request timeout).
//!
//! A URL whose host is a literal address never reaches the resolver, so it is
//! checked by [`check_url`] before the request.
//!
//! `TEMPOVOICE_WEBHOOKS_TO_PRIVATE_ADDRESSES=allow` lifts the address rule (never the
//! redirect rule), for a runtime whose webhook receivers are on a private network or
//! on this machine.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub use agent_spec::net::is_public;

/// Why a URL may not be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL cannot be parsed")]
    Unparsable,
    #[error("{0} is not a public address")]
    NotPublic(IpAddr),
}

/// Checks a URL whose host is a literal address (names are checked when resolved).
pub fn check_url(url: &str, allow_private: bool) -> Result<(), Refused> {
    let parsed = reqwest::Url::parse(url).map_err(|_| Refused::Unparsable)?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(Refused::Unparsable),
    };
    if allow_private || is_public(ip) { Ok(()) } else { Err(Refused::NotPublic(ip)) }
}

/// Resolves names through the system resolver and keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let refused = all.first().map_or_else(
                    || format!("{host} does not resolve"),
                    |a| format!("{host} resolves to {}, which is not a public address", a.ip()),
                );
                return Err(refused.into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client for tenants' URLs, built on `builder` (which carries the trusted roots).
pub fn client(builder: reqwest::ClientBuilder, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let builder = builder.redirect(reqwest::redirect::Policy::none());
    let builder = if allow_private { builder } else { builder.dns_resolver(Arc::new(PublicOnly)) };
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_addresses_in_urls_are_checked() {
        assert!(check_url("https://hooks.example.com/t", false).is_ok());
        assert!(check_url("https://93.184.216.34/t", false).is_ok());
        for url in ["https://127.0.0.1/t", "https://[::ffff:127.0.0.1]:8443/t", "http://169.254.170.2/v2/credentials"] {
            assert!(matches!(check_url(url, false), Err(Refused::NotPublic(_))), "{url}");
            assert!(check_url(url, true).is_ok(), "{url} allowed when private addresses are");
        }
    }
}
