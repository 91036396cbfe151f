//! The open-loop load generator: request `i` is scheduled at `start + i / rate`, whatever
//! happened to the requests before it, and its latency is measured from that scheduled time.
//! A slow server therefore cannot slow the load down (no coordinated omission): its slowness
//! shows up as latency, and when every slot of the concurrency limit is taken the request is
//! counted as refused by the generator (`no slot`) instead of being sent late.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::events::SignedEvent;

/// Sends one request and says whether the answer was the expected one.
pub type Sender<R> = Arc<dyn Fn(R) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// How long one request may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one request did.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// From the scheduled send time to the end of the response body.
    latency: Duration,
    /// From the scheduled send time to the moment the generator started the request: the
    /// generator's own lateness, part of `latency`.
    lag: Duration,
    /// When the response ended, from the phase's start.
    finished: Duration,
    ok: bool,
}

/// The result of one fixed-rate phase.
#[derive(Clone, Debug)]
pub struct PhaseResult {
    /// A name for the report.
    pub label: String,
    /// The requested rate, requests per second.
    pub rate: f64,
    /// The scheduled duration.
    pub duration: Duration,
    /// Requests scheduled.
    pub scheduled: usize,
    /// Answered as expected (a fresh event's `200`, a Short link's `302`).
    pub ok: usize,
    /// Any other status, a transport error or a timeout.
    pub errors: usize,
    /// Not sent: every slot of the concurrency limit was taken at the scheduled time.
    pub no_slot: usize,
    /// Accepted events per second: `ok` over the time from the first scheduled send to the
    /// last response.
    pub accepted_per_sec: f64,
    /// Latency percentiles of the accepted requests (p50, p90, p99, p99.9, max).
    pub latency: Percentiles,
    /// The generator's own lateness (scheduled → started), same percentiles.
    pub lag: Percentiles,
    /// The most requests in flight at once.
    pub max_in_flight: usize,
    /// The first few error descriptions.
    pub error_examples: Vec<String>,
}

/// Latency percentiles.
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (sorted here).
    fn of(values: &mut [Duration]) -> Self {
        values.sort_unstable();
        let rank = |p: f64| -> Duration {
            if values.is_empty() {
                return Duration::ZERO;
            }
            let index = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[index]
        };
        Self { p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), p999: rank(0.999), max: rank(1.0) }
    }
}

/// Sends `requests` through `send` at `rate` requests per second, at most `concurrency` in
/// flight.
pub async fn run_fixed_rate<R: Send + 'static>(
    label: &str,
    send: &Sender<R>,
    requests: Vec<R>,
    rate: f64,
    concurrency: usize,
) -> PhaseResult {
    let scheduled = requests.len();
    let samples = Arc::new(Mutex::new(Vec::with_capacity(scheduled)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(Semaphore::new(concurrency));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(20);
    let mut no_slot = 0usize;
    let mut max_in_flight = 0usize;
    for (i, request) in requests.into_iter().enumerate() {
        let due = start + interval.mul_f64(i as f64);
        // Returns at once when the generator is already behind: the request then goes out
        // late and its lateness counts in its latency.
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            no_slot += 1;
            continue;
        };
        max_in_flight = max_in_flight.max(concurrency - slots.available_permits());
        let (send, samples, errors) = (Arc::clone(send), Arc::clone(&samples), Arc::clone(&errors));
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = send(request).await;
            let ended = Instant::now();
            let sample = Sample {
                latency: ended.saturating_duration_since(due),
                lag: started.saturating_duration_since(due),
                finished: ended.saturating_duration_since(start),
                ok: outcome.is_ok(),
            };
            samples.lock().unwrap_or_else(PoisonError::into_inner).push(sample);
            if let Err(e) = outcome {
                let mut errors = errors.lock().unwrap_or_else(PoisonError::into_inner);
                if errors.len() < 5 {
                    errors.push(e);
                }
            }
            drop(permit);
        });
    }
    // Wait for the stragglers: every slot free again (each request ends within its timeout).
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(2), slots.acquire_many(all)).await;

    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let error_examples = std::mem::take(&mut *errors.lock().unwrap_or_else(PoisonError::into_inner));
    let ok = samples.iter().filter(|s| s.ok).count();
    let answered_errors = samples.len() - ok;
    // Requests still in flight after the wait are errors too.
    let errors = answered_errors + (scheduled - no_slot - samples.len());
    let last = samples.iter().filter(|s| s.ok).map(|s| s.finished).max().unwrap_or_default();
    let mut latencies: Vec<Duration> = samples.iter().filter(|s| s.ok).map(|s| s.latency).collect();
    let mut lags: Vec<Duration> = samples.iter().map(|s| s.lag).collect();
    PhaseResult {
        label: label.to_owned(),
        rate,
        duration: interval.mul_f64(scheduled as f64),
        scheduled,
        ok,
        errors,
        no_slot,
        accepted_per_sec: if last.is_zero() { 0.0 } else { ok as f64 / last.as_secs_f64() },
        latency: Percentiles::of(&mut latencies),
        lag: Percentiles::of(&mut lags),
        max_in_flight,
        error_examples,
    }
}

/// What the endpoint answers for an event it had not seen (the JSON is compact).
const FRESH: &[u8] = b"\"duplicate\":false";

/// Posts signed events to the Stripe webhook `url`; only a fresh event's `200` counts.
pub fn webhook_sender(client: &reqwest::Client, url: &str) -> Sender<SignedEvent> {
    let (client, url) = (client.clone(), url.to_owned());
    Arc::new(move |event| {
        let (client, url) = (client.clone(), url.clone());
        Box::pin(async move { send_event(&client, &url, event).await })
    })
}

/// Follows Short links (`GET` of each URL); only a `302` whose `Location` carries
/// `must_contain` counts. The body is read to the end so the connection goes back to the pool.
pub fn redirect_sender(client: &reqwest::Client, must_contain: &'static str) -> Sender<String> {
    let client = client.clone();
    Arc::new(move |url| {
        let client = client.clone();
        Box::pin(async move {
            let response = client.get(&url).send().await.map_err(|e| format!("transport: {e}"))?;
            let status = response.status();
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let _ = response.bytes().await.map_err(|e| format!("reading the response: {e}"))?;
            if status.as_u16() != 302 || !location.contains(must_contain) {
                return Err(format!("status {status}, Location {location:?}"));
            }
            Ok(())
        })
    })
}

/// One webhook delivery, read to the end so the connection goes back to the pool.
async fn send_event(client: &reqwest::Client, url: &str, event: SignedEvent) -> Result<(), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("stripe-signature", event.signature)
        .body(event.body)
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("reading the response: {e}"))?;
    if status.as_u16() != 200 {
        return Err(format!("status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    }
    if !body.windows(FRESH.len()).any(|w| w == FRESH) {
        return Err(format!("unexpected answer: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    }
    Ok(())
}

/// The HTTP client: keep-alive connections to 127.0.0.1, no proxy, redirects not followed.
///
/// # Errors
/// When reqwest cannot build it.
pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(60))
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}
