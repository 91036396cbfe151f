//! Outbound adapter: the webhook transport. [`HttpWebhookSender`] implements the domain's
//! [`WebhookSender`] port over reqwest: one POST per attempt, a 10 s timeout, redirects never
//! followed (a 3xx is a failed attempt), no proxy from the environment, and targets on
//! private, loopback, link-local and other non-public addresses refused unless the operator
//! allowed them (`REKOMI_WEBHOOK_ALLOW_PRIVATE_TARGETS=true`, for development and tests).
//!
//! Addresses are checked twice: when an endpoint is registered or changed
//! ([`WebhookSender::check_target`]) and on every attempt. The second check runs inside the
//! client's own DNS resolver, so the address the connection uses is the address that was
//! checked: a name that resolved to a public address at registration and to `127.0.0.1` later
//! (DNS rebinding) is refused at send time.

use std::error::Error as _;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rekomi_domain::outbound::{OutboundRequest, SendOutcome, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::Url;

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("Rekomi-Webhooks/", env!("CARGO_PKG_VERSION"));
/// How long one attempt may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long resolving a host may take while checking a target.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address may not receive webhooks, or `None` for a public unicast address.
///
/// Refused: loopback (127/8, `::1`), private (10/8, 172.16/12, 192.168/16, `fc00::/7`, the
/// deprecated site-local `fec0::/10`), link-local (169.254/16, `fe80::/10`), unspecified
/// (`0.0.0.0`, `::`) and the rest of 0/8, carrier-grade NAT (100.64/10), IETF protocol
/// assignments (192.0.0/24), benchmarking (198.18/15), documentation (192.0.2/24,
/// 198.51.100/24, 203.0.113/24, `2001:db8::/32`), multicast (224/4, `ff00::/8`), the limited
/// broadcast 255.255.255.255 and the reserved 240/4. IPv6 addresses that embed an IPv4 address
/// are judged by the IPv4 address they embed: IPv4-mapped `::ffff:0:0/96`, IPv4-compatible
/// `::a.b.c.d`, NAT64 (the well-known `64:ff9b::/96` and the local-use `64:ff9b:1::/48`, both
/// read in the /96 layout DNS64 synthesizes: the IPv4 address is the last 32 bits) and 6to4
/// `2002::/16`.
pub fn refusal_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_refusal(v4),
        IpAddr::V6(v6) => v6_refusal(v6),
    }
}

fn v4_refusal(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT (shared)")
    } else if matches!((a, b, c), (192, 0, 2) | (198, 51, 100) | (203, 0, 113)) {
        Some("documentation")
    } else if (a, b, c) == (192, 0, 0) {
        Some("special-purpose (192.0.0.0/24)")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("benchmarking (198.18.0.0/15)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if a == 0 {
        Some("\"this network\" (0.0.0.0/8)")
    } else if a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn v6_refusal(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-mapped (::ffff:0:0/96): the address is the IPv4 one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_refusal(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated), the well-known NAT64 prefix (64:ff9b::/96) and
    // the local-use one (64:ff9b:1::/48, in the /96 layout) embed the IPv4 address in the
    // last 32 bits; a NAT64 gateway connects to it.
    let embedded_low = Ipv4Addr::new((segments[6] >> 8) as u8, segments[6] as u8, (segments[7] >> 8) as u8, segments[7] as u8);
    let compatible = segments[..6] == [0; 6];
    let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..3] == [0x64, 0xff9b, 1];
    if compatible || nat64 {
        return v4_refusal(embedded_low);
    }
    // 6to4 (2002::/16) embeds it in bits 16-47.
    if segments[0] == 0x2002 {
        let v4 = Ipv4Addr::new((segments[1] >> 8) as u8, segments[1] as u8, (segments[2] >> 8) as u8, segments[2] as u8);
        return v4_refusal(v4);
    }
    if segments[..2] == [0x2001, 0x0db8] {
        return Some("documentation");
    }
    match segments[0] {
        s if s & 0xfe00 == 0xfc00 => Some("private (unique local)"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("private (site-local)"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Why a target was refused, for the API's message and the delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRefused(pub String);

impl fmt::Display for TargetRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetRefused {}

fn refused_address(host: &str, ip: IpAddr, kind: &str) -> TargetRefused {
    if host.trim_matches(['[', ']']) == ip.to_string() {
        TargetRefused(format!("{ip} is a {kind} address; private, loopback and link-local targets are refused"))
    } else {
        TargetRefused(format!("{host} resolves to {ip}, a {kind} address; private, loopback and link-local targets are refused"))
    }
}

/// Resolves `host` and refuses it when any address is not public (unless `allow_private`).
async fn resolve_checked(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, TargetRefused> {
    let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| TargetRefused(format!("resolving {host} timed out")))?
        .map_err(|e| TargetRefused(format!("{host} does not resolve: {e}")))?;
    let addrs: Vec<SocketAddr> = lookup.collect();
    if addrs.is_empty() {
        return Err(TargetRefused(format!("{host} does not resolve")));
    }
    if !allow_private {
        if let Some((ip, kind)) = addrs.iter().find_map(|a| refusal_reason(a.ip()).map(|k| (a.ip(), k))) {
            return Err(refused_address(host, ip, kind));
        }
    }
    Ok(addrs)
}

/// The client's DNS resolver: resolves like the system does, then applies the address rules,
/// so the connection goes only to an address that passed them.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_checked(&host, 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The webhook transport over HTTP.
#[derive(Clone, Debug)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_private_targets: bool,
}

impl HttpWebhookSender {
    /// A sender with the standard timeout; `allow_private_targets` turns the address rules off
    /// (development and tests only).
    ///
    /// # Errors
    /// When the TLS backend cannot be initialized.
    pub fn new(allow_private_targets: bool) -> Result<Self, reqwest::Error> {
        Self::with_timeout(allow_private_targets, SEND_TIMEOUT)
    }

    /// [`HttpWebhookSender::new`] with another per-attempt timeout.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialized.
    pub fn with_timeout(allow_private_targets: bool, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(USER_AGENT)
            // A proxy from the environment would connect on our behalf, past the address rules.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private: allow_private_targets }))
            .build()?;
        Ok(Self { client, allow_private_targets })
    }

    /// Whether private targets are allowed.
    pub fn allows_private_targets(&self) -> bool {
        self.allow_private_targets
    }

    async fn check(&self, raw: &str) -> Result<(), TargetRefused> {
        let url = Url::parse(raw).map_err(|e| TargetRefused(format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetRefused("must be an http or https URL".to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetRefused("must not carry credentials".to_owned()));
        }
        let port = url.port_or_known_default().unwrap_or(443);
        // `host_str` is the parsed, normalized host (`0x7f.1` is already `127.0.0.1`), with
        // IPv6 literals in brackets.
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| TargetRefused("must name a host".to_owned()))?;
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => self.check_ip(host, ip),
            Err(_) => resolve_checked(host, port, self.allow_private_targets).await.map(|_| ()),
        }
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), TargetRefused> {
        match refusal_reason(ip) {
            Some(kind) if !self.allow_private_targets => Err(refused_address(host, ip, kind)),
            _ => Ok(()),
        }
    }
}

/// Describes a transport failure for the delivery log, with its causes and without the URL.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &OutboundRequest) -> SendOutcome {
        let started = std::time::Instant::now();
        let outcome = self.attempt(request).await;
        let label = match &outcome {
            SendOutcome::Delivered { .. } => "delivered",
            SendOutcome::Failed { status: Some(_), .. } => "http_error",
            SendOutcome::Failed { status: None, .. } => "unreachable",
        };
        metrics::counter!("rekomi_webhook_attempts_total", "outcome" => label).increment(1);
        metrics::histogram!("rekomi_webhook_attempt_duration_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn check_target(&self, url: &str) -> Result<(), String> {
        self.check(url).await.map_err(|e| e.0)
    }
}

impl HttpWebhookSender {
    /// One POST, as [`WebhookSender::send`] describes it.
    async fn attempt(&self, request: &OutboundRequest) -> SendOutcome {
        // The resolver applies the rules to hostnames again as it connects; this check covers IP
        // literals (which skip the resolver) and gives a clear message for names.
        if let Err(refused) = self.check(&request.url).await {
            return SendOutcome::Failed { status: None, error: format!("target refused: {refused}") };
        }
        let mut builder = self.client.post(&request.url).body(request.body.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let code = status.as_u16();
                if status.is_success() {
                    SendOutcome::Delivered { status: code }
                } else if status.is_redirection() {
                    SendOutcome::Failed { status: Some(code), error: format!("HTTP {code}: redirects are not followed") }
                } else {
                    SendOutcome::Failed { status: Some(code), error: format!("HTTP {code}") }
                }
            }
            Err(e) => SendOutcome::Failed { status: None, error: describe(e) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ip: &str) -> Option<&'static str> {
        refusal_reason(ip.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified_by_the_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("loopback")),
            ("127.255.0.9", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("\"this network\" (0.0.0.0/8)")),
            ("100.64.0.1", Some("carrier-grade NAT (shared)")),
            ("100.127.255.255", Some("carrier-grade NAT (shared)")),
            ("100.128.0.1", None),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
            ("240.0.0.1", Some("reserved")),
            ("250.1.2.3", Some("reserved")),
            ("255.255.255.254", Some("reserved")),
            ("192.0.0.1", Some("special-purpose (192.0.0.0/24)")),
            ("192.0.0.255", Some("special-purpose (192.0.0.0/24)")),
            ("192.0.1.1", None),
            ("198.18.0.1", Some("benchmarking (198.18.0.0/15)")),
            ("198.19.255.255", Some("benchmarking (198.18.0.0/15)")),
            ("198.17.255.255", None),
            ("198.20.0.1", None),
            ("192.0.2.1", Some("documentation")),
            ("198.51.100.7", Some("documentation")),
            ("203.0.113.255", Some("documentation")),
            ("203.0.114.1", None),
            ("198.51.101.1", None),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("0:0:0:0:0:0:0:0", Some("unspecified")),
            ("fc00::1", Some("private (unique local)")),
            ("fd12:3456::1", Some("private (unique local)")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fec0::1", Some("private (site-local)")),
            ("ff02::1", Some("multicast")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:192.0.2.1", Some("documentation")),
            ("::ffff:198.18.0.1", Some("benchmarking (198.18.0.0/15)")),
            ("::ffff:0.0.0.0", Some("unspecified")),
            ("::ffff:255.255.255.255", Some("broadcast")),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some("loopback")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::10.0.0.1", Some("private")),
            ("64:ff9b::192.0.0.8", Some("special-purpose (192.0.0.0/24)")),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::127.0.0.1", Some("loopback")),
            ("64:ff9b:1::169.254.169.254", Some("link-local")),
            ("64:ff9b:1:abcd::192.168.0.1", Some("private")),
            ("64:ff9b:1::8.8.8.8", None),
            ("2002:c0a8:0101::1", Some("private")),
            ("2606:4700:4700::1111", None),
            ("2001:db8::1", Some("documentation")),
            ("2001:db8:ffff:ffff::1", Some("documentation")),
            ("2001:db9::1", None),
        ];
        for (ip, expected) in table {
            assert_eq!(reason(ip), *expected, "{ip}");
        }
    }

    #[tokio::test]
    async fn strict_mode_refuses_private_literals_and_names_and_odd_urls() {
        let sender = HttpWebhookSender::new(false).unwrap();
        for url in [
            "http://127.0.0.1:9/hook",
            "http://[::1]/",
            "https://10.0.0.8/x",
            "http://169.254.169.254/latest",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::169.254.169.254]/latest",
            "http://[64:ff9b:1::a00:1]/",
            "https://192.0.2.10/hook",
            "https://198.18.0.1/hook",
            "https://[2001:db8::5]/hook",
            "http://255.255.255.255/",
        ] {
            let err = sender.check_target(url).await.unwrap_err();
            assert!(err.contains("are refused"), "{url}: {err}");
        }
        let err = sender.check_target("http://localhost:9/").await.unwrap_err();
        assert!(err.contains("localhost resolves to"), "{err}");
        assert!(sender.check_target("ftp://example.com/").await.unwrap_err().contains("http or https"));
        assert!(sender.check_target("not a url").await.is_err());
        assert!(sender.check_target("https://user:pw@example.com/").await.unwrap_err().contains("credentials"));
        assert!(sender.check_target("https://93.184.216.34/hook").await.is_ok());
    }

    #[tokio::test]
    async fn the_clients_resolver_refuses_names_that_resolve_to_private_addresses() {
        // What a name rebound to loopback after registration meets as the client connects.
        let strict = GuardedResolver { allow_private: false };
        let err = strict.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("localhost resolves to"), "{err}");
        let allowed = GuardedResolver { allow_private: true };
        let addrs: Vec<SocketAddr> = allowed.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[tokio::test]
    async fn allowed_mode_accepts_loopback() {
        let sender = HttpWebhookSender::new(true).unwrap();
        assert!(sender.allows_private_targets());
        assert_eq!(sender.check_target("http://127.0.0.1:9/hook").await, Ok(()));
        assert_eq!(sender.check_target("http://localhost:9/hook").await, Ok(()));
        assert!(sender.check_target("ftp://127.0.0.1/").await.is_err());
    }
}
