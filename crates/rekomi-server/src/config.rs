//! Configuration from environment variables. Secrets are redacted in `Debug`.

use std::fmt;

use anyhow::{anyhow, Context};
use rekomi_http::client_ip::{ClientIpPolicy, IpNet};

/// Everything the server reads from its environment.
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REKOMI_BIND` (default `127.0.0.1:8080`).
    pub bind: String,
    /// `REKOMI_STRIPE_SECRET_KEY`; without it the server runs in local mode.
    pub stripe_secret_key: Option<String>,
    /// `REKOMI_STRIPE_API_BASE` (default Stripe's).
    pub stripe_api_base: Option<String>,
    /// `REKOMI_JWT_SECRET`; without it dashboard and affiliate JWTs are refused.
    pub jwt_secret: Option<String>,
    /// `REKOMI_DB_POOL_SIZE` (default 16).
    pub db_pool_size: u32,
    /// `REKOMI_HTTP_WORKERS` (default: the number of cores).
    pub http_workers: usize,
    /// `REKOMI_MIGRATE_ON_START` (default false): apply migrations before serving.
    pub migrate_on_start: bool,
    /// `REKOMI_RECONCILE_INTERVAL_SECS` (default 30; 0 disables the reconciler).
    pub reconcile_interval_secs: u64,
    /// `REKOMI_PAYOUT_RECONCILE_AFTER_SECS` (default 60): how long a payout stays Processing
    /// untouched before the reconciler asks Stripe about its transfer.
    pub payout_reconcile_after_secs: u64,
    /// `REKOMI_STRIPE_WEBHOOK_SECRET`: the `whsec_…` signing secrets of the Stripe webhook
    /// endpoint, comma-separated (several during rotation).
    pub stripe_webhook_secrets: Vec<String>,
    /// `REKOMI_INBOX_INTERVAL_MS` (default 500; 0 disables the Stripe event worker).
    pub inbox_interval_ms: u64,
    /// `REKOMI_INBOX_WORKERS` (default 4): Stripe event workers per process.
    pub inbox_workers: usize,
    /// `REKOMI_WEBHOOK_ALLOW_PRIVATE_TARGETS` (default false): let webhook endpoints point at
    /// private, loopback and link-local addresses (development and tests only).
    pub webhook_allow_private_targets: bool,
    /// `REKOMI_DELIVERY_INTERVAL_MS` (default 1000; 0 disables the webhook delivery worker).
    pub delivery_interval_ms: u64,
    /// `REKOMI_JWT_MAX_TTL` (default 24h): the longest JWT lifetime accepted, in seconds or
    /// with a unit (`90m`, `24h`, `7d`).
    pub jwt_max_ttl_secs: i64,
    /// `REKOMI_CLIENT_IP_HEADER`: the header a trusted reverse proxy sets to the client's
    /// address (its last value is used); unset = the peer address.
    pub client_ip_header: Option<String>,
    /// `REKOMI_METRICS_TOKEN`: when set, `GET /metrics` needs it as a bearer token.
    pub metrics_token: Option<String>,
    /// `REKOMI_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges of reverse proxies
    /// whose `X-Forwarded-For` (or `REKOMI_CLIENT_IP_HEADER`) names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// `REKOMI_COUNTRY_HEADER`: a header a CDN sets to the visitor's ISO country (e.g.
    /// `CF-IPCountry`), recorded with clicks; unset = no country.
    pub country_header: Option<String>,
    /// `REKOMI_TRACKING_LIMIT_PER_MINUTE` (default 1200; 0 turns it off): anonymous tracking
    /// requests per client address and minute.
    pub tracking_limit_per_minute: u32,
    /// `REKOMI_CLICK_FLUSH_MS` (default 5): how long a click waits in the buffer for a batch.
    pub click_flush_ms: u64,
    /// `REKOMI_CLICK_BUFFER` (default 100000): clicks buffered at most before new ones are
    /// dropped (and counted).
    pub click_buffer: usize,
    /// `REKOMI_S2S_LIMIT_PER_MINUTE` (default 180000; 0 turns it off): signed server-to-server
    /// requests per API key and minute.
    pub s2s_limit_per_minute: u32,
    /// `REKOMI_PUBLIC_URL`: where browsers reach this server (the install snippet's URLs);
    /// unset = `http://` and the bound address.
    pub public_url: Option<String>,
}

fn secret(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "Some(<redacted>)"
    } else {
        "None"
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("stripe_secret_key", &secret(&self.stripe_secret_key))
            .field("stripe_api_base", &self.stripe_api_base)
            .field("jwt_secret", &secret(&self.jwt_secret))
            .field("db_pool_size", &self.db_pool_size)
            .field("http_workers", &self.http_workers)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("reconcile_interval_secs", &self.reconcile_interval_secs)
            .field("payout_reconcile_after_secs", &self.payout_reconcile_after_secs)
            .field("stripe_webhook_secrets", &format!("{} secret(s)", self.stripe_webhook_secrets.len()))
            .field("inbox_interval_ms", &self.inbox_interval_ms)
            .field("inbox_workers", &self.inbox_workers)
            .field("webhook_allow_private_targets", &self.webhook_allow_private_targets)
            .field("delivery_interval_ms", &self.delivery_interval_ms)
            .field("jwt_max_ttl_secs", &self.jwt_max_ttl_secs)
            .field("client_ip_header", &self.client_ip_header)
            .field("metrics_token", &secret(&self.metrics_token))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("country_header", &self.country_header)
            .field("tracking_limit_per_minute", &self.tracking_limit_per_minute)
            .field("click_flush_ms", &self.click_flush_ms)
            .field("click_buffer", &self.click_buffer)
            .field("s2s_limit_per_minute", &self.s2s_limit_per_minute)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Hides the password of a `postgres://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:<redacted>{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_var<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| anyhow!("{name} has an invalid value {v:?}")),
    }
}

/// `REKOMI_JWT_MAX_TTL`, in seconds.
///
/// # Errors
/// When it is not a positive duration.
pub fn jwt_max_ttl() -> anyhow::Result<i64> {
    match var("REKOMI_JWT_MAX_TTL") {
        None => Ok(rekomi_http::auth::DEFAULT_MAX_TOKEN_TTL_SECS),
        Some(v) => {
            duration_secs(&v).ok_or_else(|| anyhow!("REKOMI_JWT_MAX_TTL must be a positive duration such as 3600, 90m or 24h, not {v:?}"))
        }
    }
}

/// `3600`, `3600s`, `90m`, `24h` or `7d` in seconds; `None` for anything else or zero.
fn duration_secs(text: &str) -> Option<i64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: i64 = digits.parse().ok().filter(|n| *n > 0)?;
    n.checked_mul(per)
}

/// `REKOMI_PUBLIC_URL` without its trailing `/`. It is pasted into HTML attributes, so it must
/// be a plain http(s) URL: no quotes, angle brackets, whitespace or query.
fn public_url(raw: &str) -> anyhow::Result<String> {
    let url = raw.trim_end_matches('/');
    let scheme_ok = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).is_some_and(|host| !host.is_empty());
    let plain = url.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'?' | b'#' | b'\\' | b'`'));
    if scheme_ok && plain {
        Ok(url.to_owned())
    } else {
        Err(anyhow!("REKOMI_PUBLIC_URL must be an http(s) URL such as https://track.example.com, not {raw:?}"))
    }
}

fn bool_var(name: &str) -> anyhow::Result<bool> {
    match var(name).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(anyhow!("{name} must be true or false, not {other:?}")),
    }
}

impl Config {
    /// Reads the configuration.
    ///
    /// # Errors
    /// When `DATABASE_URL` is missing or a variable has an invalid value.
    pub fn from_env() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            database_url: var("DATABASE_URL").context("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/rekomi)")?,
            bind: var("REKOMI_BIND").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            stripe_secret_key: var("REKOMI_STRIPE_SECRET_KEY"),
            stripe_api_base: var("REKOMI_STRIPE_API_BASE"),
            jwt_secret: var("REKOMI_JWT_SECRET"),
            db_pool_size: parse_var("REKOMI_DB_POOL_SIZE", 16)?,
            http_workers: parse_var("REKOMI_HTTP_WORKERS", cores)?,
            migrate_on_start: bool_var("REKOMI_MIGRATE_ON_START")?,
            reconcile_interval_secs: parse_var("REKOMI_RECONCILE_INTERVAL_SECS", 30)?,
            payout_reconcile_after_secs: parse_var(
                "REKOMI_PAYOUT_RECONCILE_AFTER_SECS",
                rekomi_domain::payouts::RECONCILE_AFTER.whole_seconds().unsigned_abs(),
            )?,
            stripe_webhook_secrets: var("REKOMI_STRIPE_WEBHOOK_SECRET")
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
            inbox_interval_ms: parse_var("REKOMI_INBOX_INTERVAL_MS", 500)?,
            inbox_workers: parse_var("REKOMI_INBOX_WORKERS", 4)?,
            webhook_allow_private_targets: bool_var("REKOMI_WEBHOOK_ALLOW_PRIVATE_TARGETS")?,
            delivery_interval_ms: parse_var("REKOMI_DELIVERY_INTERVAL_MS", 1000)?,
            jwt_max_ttl_secs: jwt_max_ttl()?,
            client_ip_header: var("REKOMI_CLIENT_IP_HEADER"),
            metrics_token: var("REKOMI_METRICS_TOKEN"),
            trusted_proxies: ClientIpPolicy::parse_proxies(&var("REKOMI_TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|bad| anyhow!("REKOMI_TRUSTED_PROXIES: {bad:?} is neither an address nor a CIDR range"))?,
            country_header: var("REKOMI_COUNTRY_HEADER"),
            tracking_limit_per_minute: parse_var("REKOMI_TRACKING_LIMIT_PER_MINUTE", 1_200)?,
            click_flush_ms: parse_var("REKOMI_CLICK_FLUSH_MS", 5)?,
            click_buffer: parse_var("REKOMI_CLICK_BUFFER", 100_000)?,
            s2s_limit_per_minute: parse_var("REKOMI_S2S_LIMIT_PER_MINUTE", rekomi_http::tracking::S2S_REQUESTS_PER_MINUTE)?,
            public_url: var("REKOMI_PUBLIC_URL").map(|u| public_url(&u)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_is_a_plain_http_url() {
        assert_eq!(public_url("https://track.example.com/").unwrap(), "https://track.example.com");
        assert_eq!(public_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in ["track.example.com", "https://", "https://x.com/\"onload=\"", "https://x.com/?a=b", "ftp://x.com", "https://x .com"] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        for (text, secs) in [("3600", Some(3600)), ("45s", Some(45)), ("90m", Some(5400)), ("24h", Some(86_400)), ("7d", Some(604_800))] {
            assert_eq!(duration_secs(text), secs, "{text}");
        }
        for text in ["", "0", "-5", "h", "1.5h", "10w", "99999999999999999999d"] {
            assert_eq!(duration_secs(text), None, "{text}");
        }
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://rekomi:s3cret@db:5432/rekomi"), "postgres://rekomi:<redacted>@db:5432/rekomi");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/rekomi"), "postgres://postgres@127.0.0.1/rekomi");
    }
}
