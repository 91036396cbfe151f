//! Which address a request comes from, for per-address limits and click hashing. The socket's
//! peer, unless the peer is one of the trusted proxies (`REKOMI_TRUSTED_PROXIES`): then the
//! right-most address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
//! appends the address it saw, so addresses further left are the client's own claims).
//! `REKOMI_CLIENT_IP_HEADER` alone (no trusted proxies) trusts that header's last value from any
//! peer: only for a deployment whose proxy is the only way in.

use std::net::IpAddr;

use actix_web::HttpRequest;
pub use ipnet::IpNet;

/// How the client address is found.
#[derive(Clone, Debug, Default)]
pub struct ClientIpPolicy {
    /// The header a proxy appends the client's address to (default `X-Forwarded-For` when
    /// proxies are trusted).
    pub header: Option<String>,
    /// Peers whose forwarding header is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl ClientIpPolicy {
    /// Parses `REKOMI_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges.
    ///
    /// # Errors
    /// The entry that is neither.
    pub fn parse_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)).map_err(|_| s.to_owned()))
            .collect()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client's address, or `None` when the request has no peer (a test request).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        // IPv4 peers of a dual-stack socket arrive as ::ffff:a.b.c.d.
        let peer = req.peer_addr().map(|a| a.ip().to_canonical());
        let header = self.header.as_deref().unwrap_or("X-Forwarded-For");
        // Each entry, or `None` where it is not an address (a proxy that appends `ip:port`):
        // past such an entry nothing to its left can be trusted.
        let forwarded = || -> Vec<Option<IpAddr>> {
            req.headers()
                .get_all(header)
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|s| s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical()))
                .collect()
        };
        match peer {
            Some(p) if self.trusts(p) => {
                let mut client = p;
                for entry in forwarded().into_iter().rev() {
                    match entry {
                        Some(ip) if self.trusts(ip) => client = ip,
                        Some(ip) => return Some(ip),
                        None => return Some(client),
                    }
                }
                Some(client)
            }
            _ if self.trusted_proxies.is_empty() && self.header.is_some() => forwarded().last().copied().flatten().or(peer),
            _ => peer,
        }
    }

    /// [`client_ip`](Self::client_ip) as a limiter key.
    pub fn key(&self, req: &HttpRequest) -> String {
        self.client_ip(req).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use actix_web::test::TestRequest;

    use super::*;

    fn request(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(format!("{peer}:5000").parse().unwrap());
        if let Some(v) = xff {
            req = req.insert_header(("X-Forwarded-For", v));
        }
        req.to_http_request()
    }

    #[test]
    fn client_address_table() {
        let proxies = ClientIpPolicy { header: None, trusted_proxies: ClientIpPolicy::parse_proxies("10.0.0.0/8, 192.0.2.1").unwrap() };
        let none = ClientIpPolicy::default();
        let legacy = ClientIpPolicy { header: Some("X-Forwarded-For".into()), trusted_proxies: vec![] };
        // (policy, peer, X-Forwarded-For) -> client
        let table = [
            (&none, "203.0.113.9", None, "203.0.113.9"),
            (&none, "203.0.113.9", Some("198.51.100.1"), "203.0.113.9"), // an untrusted peer's header is ignored
            (&proxies, "203.0.113.9", Some("198.51.100.1"), "203.0.113.9"),
            (&proxies, "10.1.2.3", Some("198.51.100.1"), "198.51.100.1"),
            (&proxies, "10.1.2.3", Some("6.6.6.6, 198.51.100.1, 10.9.9.9"), "198.51.100.1"), // spoofed left part skipped
            (&proxies, "192.0.2.1", Some("10.0.0.5"), "10.0.0.5"),                           // only proxies: the left-most
            (&proxies, "10.1.2.3", None, "10.1.2.3"),
            (&proxies, "10.1.2.3", Some("garbage"), "10.1.2.3"),
            // A proxy that appends ip:port: nothing left of it is believed.
            (&proxies, "10.1.2.3", Some("6.6.6.6, 198.51.100.1:4711"), "10.1.2.3"),
            (&proxies, "10.1.2.3", Some("6.6.6.6, 198.51.100.7, 10.0.0.9:80"), "10.1.2.3"),
            // A dual-stack socket's IPv4 peer is matched against IPv4 proxy ranges.
            (&proxies, "[::ffff:10.1.2.3]", Some("198.51.100.1"), "198.51.100.1"),
            (&legacy, "203.0.113.9", Some("6.6.6.6, 198.51.100.1"), "198.51.100.1"),
        ];
        for (i, (policy, peer, xff, want)) in table.into_iter().enumerate() {
            assert_eq!(policy.client_ip(&request(peer, xff)), Some(want.parse().unwrap()), "row {i}");
        }
        assert_eq!(ClientIpPolicy::parse_proxies("10.0.0.0/8,nope"), Err("nope".to_owned()));
    }
}
