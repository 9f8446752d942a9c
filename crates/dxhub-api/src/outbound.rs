//! Where the hub's own HTTP requests may go (webhooks).
//!
//! A group admin registers webhook URLs; the hub then posts to them from inside the
//! hospital network. Without a guard that is a server-side request forgery: a URL at
//! `127.0.0.1`, the cloud metadata address or a private address reaches services that
//! trust the hub's network position. So, as GitLab's "allow requests to the local network"
//! setting, internal addresses are refused unless the operator lists them
//! (`worklist.webhook_allowed_hosts`: host names, addresses or CIDR networks).
//!
//! The check runs twice: when the webhook is registered (a literal address, or a name that
//! resolves to internal addresses only, is refused with 422), and on every delivery, in the
//! HTTP client's DNS resolver, so a name that later resolves to an internal address (DNS
//! rebinding) is not followed either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The operator's exceptions: internal hosts that webhooks may reach.
#[derive(Debug, Clone, Default)]
pub struct OutboundAllow {
    /// Host names (lower case, without a trailing dot), allowed whatever they resolve to.
    names: Vec<String>,
    /// Addresses and networks (a bare address is a /32 or /128).
    nets: Vec<IpNet>,
}

impl OutboundAllow {
    /// Parse `worklist.webhook_allowed_hosts` entries: `sms.county.local`, `10.8.0.12`,
    /// `10.8.0.0/16`, `[fd00::1]`, `fd00::/8`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut allow = Self::default();
        for raw in entries {
            let e = raw.trim();
            let bare = e.trim_start_matches('[').trim_end_matches(']');
            if e.is_empty() {
                continue;
            } else if let Ok(net) = bare.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if e.contains('/') || e.contains(':') || e.contains(char::is_whitespace) {
                return Err(format!(
                    "webhook_allowed_hosts: {e:?} is neither a host name, an address nor a CIDR network"
                ));
            } else {
                allow.names.push(normal_name(e));
            }
        }
        Ok(allow)
    }

    fn allows_name(&self, host: &str) -> bool {
        let host = normal_name(host);
        self.names.contains(&host)
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// May a request to `host` (a URL's host) go to `ip`?
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allows_name(host) || self.allows_ip(ip)
    }

    /// The registration check of a webhook URL: `Err` with the reason when its host is an
    /// internal address (literal, `localhost`, or a name that resolves to internal
    /// addresses only) that is not allowed. A name that does not resolve now passes: the
    /// delivery checks it again.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url: {e}"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("url: credentials in the URL are not accepted; use the secret".into());
        }
        let host = match url_host(&parsed) {
            Some(UrlHost::Ip(ip)) => return self.check_ip(&ip.to_string(), ip),
            Some(UrlHost::Name(d)) => d,
            None => return Err("url: no host".into()),
        };
        if self.allows_name(&host) {
            return Ok(());
        }
        if is_localhost_name(&host) {
            return Err(refusal(&host));
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let lookup = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        match lookup {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if !addrs.is_empty() && addrs.iter().all(|a| !self.permits(&host, a.ip())) {
                    Err(refusal(&host))
                } else {
                    Ok(())
                }
            }
            // unknown now (or DNS down): the delivery's resolver decides
            _ => Ok(()),
        }
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if self.permits(host, ip) {
            Ok(())
        } else {
            Err(refusal(host))
        }
    }
}

fn refusal(host: &str) -> String {
    format!(
        "{host} is an internal address (loopback, private, link-local …); webhooks may reach \
         it only when the operator lists it in worklist.webhook_allowed_hosts"
    )
}

fn normal_name(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn is_localhost_name(host: &str) -> bool {
    let h = normal_name(host);
    h == "localhost" || h.ends_with(".localhost")
}

/// Addresses a webhook may not reach by default: this host, private networks, link-local
/// (the cloud metadata service at 169.254.169.254), shared (CGNAT), multicast, reserved.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                // NAT64 64:ff9b::/96 and IPv4-compatible ::a.b.c.d carry an IPv4 address
                || (s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_internal_v4(embedded_v4(v6)))
                || (s[0..6] == [0; 6] && is_internal_v4(embedded_v4(v6)))
        }
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network" 0.0.0.0/8
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (b & 0xc0) == 64) // shared address space 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || ip.is_multicast()
        || a >= 240 // reserved and broadcast
}

/// The webhook client's DNS resolver: the system resolver, keeping only the addresses
/// [`OutboundAllow::permits`]; a name left with none fails the delivery.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allow: Arc<OutboundAllow>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow.permits(&host, a.ip()))
                .collect();
            if kept.is_empty() && !addrs.is_empty() {
                return Err(refusal(&host).into());
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The delivery-time check of a URL whose host is a literal address (the resolver is not
/// asked for those).
pub fn check_literal(allow: &OutboundAllow, url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url).ok().as_ref().and_then(url_host) {
        Some(UrlHost::Ip(ip)) => allow.check_ip(&ip.to_string(), ip),
        Some(UrlHost::Name(d)) if is_localhost_name(&d) && !allow.allows_name(&d) => {
            Err(refusal(&d))
        }
        _ => Ok(()),
    }
}

enum UrlHost {
    Ip(IpAddr),
    Name(String),
}

/// A URL's host: an address (the URL parser has already normalised forms such as
/// `0x7f000001`; IPv6 comes bracketed) or a name.
fn url_host(url: &reqwest::Url) -> Option<UrlHost> {
    let h = url.host_str()?;
    let bare = h.trim_start_matches('[').trim_end_matches(']');
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => UrlHost::Ip(ip),
        Err(_) => UrlHost::Name(h.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses() {
        for s in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_internal(ip(s)), "{s} is internal");
        }
        for s in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "203.0.114.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(ip(s)), "{s} is public");
        }
    }

    #[test]
    fn allow_list_by_name_address_and_network() {
        let allow = OutboundAllow::parse(&[
            "SMS.County.Local.".into(),
            "10.8.0.12".into(),
            "192.168.5.0/24".into(),
            "[fd00::1]".into(),
        ])
        .unwrap();
        assert!(allow.permits("sms.county.local", ip("10.9.9.9")));
        assert!(allow.permits("x", ip("10.8.0.12")));
        assert!(!allow.permits("x", ip("10.8.0.13")));
        assert!(allow.permits("x", ip("192.168.5.77")));
        assert!(allow.permits("x", ip("fd00::1")));
        assert!(!allow.permits("x", ip("127.0.0.1")));
        assert!(
            allow.permits("x", ip("8.8.8.8")),
            "public is always allowed"
        );
        assert!(OutboundAllow::parse(&["not a host".into()]).is_err());
        assert!(OutboundAllow::parse(&["10.0.0.0/99".into()]).is_err());
    }

    #[tokio::test]
    async fn registration_refuses_internal_targets() {
        let none = OutboundAllow::default();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://10.0.0.5/",
            "http://0x7f000001/",
        ] {
            assert!(none.check_url(url).await.is_err(), "{url} refused");
            assert!(
                check_literal(&none, url).is_err(),
                "{url} refused at delivery"
            );
        }
        assert!(
            none.check_url("http://user:pw@example.org/").await.is_err(),
            "credentials"
        );
        let allow = OutboundAllow::parse(&["127.0.0.1".into(), "localhost".into()]).unwrap();
        assert!(allow.check_url("http://127.0.0.1:9/hook").await.is_ok());
        assert!(allow.check_url("http://localhost:9/hook").await.is_ok());
        assert!(check_literal(&allow, "http://127.0.0.1:9/hook").is_ok());
        assert!(allow.check_url("http://10.0.0.5/").await.is_err());
    }

    /// The delivery's resolver asks the system resolver (`/etc/hosts` has `localhost`)
    /// and drops internal answers unless the name or address is listed.
    #[tokio::test]
    async fn resolver_drops_internal_answers() {
        use reqwest::dns::Resolve;
        let guarded = GuardedResolver {
            allow: Arc::new(OutboundAllow::default()),
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = guarded.resolve(name).await.err().expect("refused");
        assert!(err.to_string().contains("internal address"), "{err}");
        let by_name = GuardedResolver {
            allow: Arc::new(OutboundAllow::parse(&["localhost".into()]).unwrap()),
        };
        let addrs: Vec<SocketAddr> = by_name
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
        let by_net = GuardedResolver {
            allow: Arc::new(OutboundAllow::parse(&["127.0.0.0/8".into()]).unwrap()),
        };
        let addrs: Vec<SocketAddr> = by_net
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(
            !addrs.is_empty() && addrs.iter().all(|a| a.ip() == IpAddr::from([127, 0, 0, 1])),
            "only the listed network: {addrs:?}"
        );
    }
}
