//! `X-Twilio-Signature`: Twilio signs each webhook request with HMAC-SHA1, keyed by
//! the account's auth token, over the full URL it requested followed by every POST
//! parameter, sorted by name, as `name` + `value` (no separators), in base64.
//!
//! Behind a load balancer the request reaches us on another scheme, host and port
//! than Twilio used, so callers rebuild the public URL first. Twilio itself is not
//! consistent about the default port (`https://host/…` vs `https://host:443/…`), so
//! [`is_valid`] accepts a signature computed over either form, as Twilio's own
//! libraries do.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The signature Twilio sends for a request to `url` with form `params`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// Whether `given` is Twilio's signature of this request, for `url` as it is, with
/// its scheme's default port written out, or with that port left out. Compared in
/// constant time.
pub fn is_valid(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    url_variants(url).iter().any(|u| signature(auth_token, u, params).as_bytes().ct_eq(given.as_bytes()).into())
}

/// `url`, and the same with the default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Ok(parsed) = url::Url::parse(url) else { return out };
    let Some(default) = parsed.port_or_known_default() else { return out };
    let has_explicit_port = has_port(url);
    // `Url` normalizes a default port away; splice the port in or out of the
    // authority by hand so that nothing else in the URL is re-encoded.
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = url[scheme_end..].find(['/', '?', '#']).map(|i| scheme_end + i).unwrap_or(url.len());
    let authority = &url[scheme_end..authority_end];
    let other = if has_explicit_port {
        if parsed.port().is_some() {
            return out; // a non-default port: no other form
        }
        let host = authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority);
        format!("{}{}{}", &url[..scheme_end], host, &url[authority_end..])
    } else {
        format!("{}{}:{}{}", &url[..scheme_end], authority, default, &url[authority_end..])
    };
    out.push(other);
    out
}

/// Whether the URL's authority names a port (`host:443`), IPv6 brackets aside.
fn has_port(url: &str) -> bool {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    match host_port.rfind(']') {
        Some(end) => host_port[end..].contains(':'),
        None => host_port.contains(':'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port_variants() {
        assert_eq!(url_variants("https://a.example/x?y=1"), ["https://a.example/x?y=1", "https://a.example:443/x?y=1"]);
        assert_eq!(url_variants("https://a.example:443/x"), ["https://a.example:443/x", "https://a.example/x"]);
        assert_eq!(url_variants("https://a.example:8443/x"), ["https://a.example:8443/x"]);
        assert_eq!(url_variants("not a url"), ["not a url"]);
    }
}
