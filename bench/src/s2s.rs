//! Phase 5, server-to-server conversions: signed `POST /api/tracking/s2s` sales (each its own
//! `externalEventId`) at a fixed rate (open loop), then a step test, against the release
//! server with its workers off. Every accepted sale must be exactly one conversion with the
//! program's 20 % commission.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::load::{self, PhaseResult, Sender};
use crate::server::{Server, ServerSpec, Workers};
use crate::sys::{CpuSnapshot, CpuUsage};
use crate::{db, Options, COMMISSION_PERCENT};

/// What the phase measured.
pub struct S2sPhase {
    pub main: PhaseResult,
    pub main_cpu: CpuUsage,
    pub steps: Vec<PhaseResult>,
    /// `200 {conversionId}` answers over the phase.
    pub accepted: usize,
    /// Conversions stored, and their commissions.
    pub conversions: i64,
    pub commission: i64,
    pub expected_commission: i64,
}

impl S2sPhase {
    /// One conversion per accepted sale, each at exactly 20 %.
    pub fn correct(&self) -> bool {
        self.conversions == self.accepted as i64 && self.commission == self.expected_commission
    }
}

/// What the endpoint answers for a sale it recorded (the JSON is compact).
const RECORDED: &[u8] = b"\"conversionId\"";

/// A signed request: the body and its `X-Rekomi-Signature`.
pub struct SignedSale {
    body: bytes::Bytes,
    signature: String,
}

fn sales(run: &str, first: u64, count: usize, slug: &str, amount: i64, secret: &str) -> Vec<SignedSale> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (first..first + count as u64)
        .map(|n| {
            let body = serde_json::to_vec(&json!({
                "externalEventId": format!("bench_s2s_{run}_{n:08}"),
                "affiliateSlug": slug,
                "amountCents": amount,
                "currency": "USD",
            }))
            .unwrap_or_default();
            let signature = rekomi_domain::tracking::signature::header(secret, now, &body);
            SignedSale { body: body.into(), signature }
        })
        .collect()
}

fn sender(client: &reqwest::Client, url: &str, api_key: &str) -> Sender<SignedSale> {
    let (client, url, api_key) = (client.clone(), url.to_owned(), api_key.to_owned());
    Arc::new(move |sale: SignedSale| {
        let (client, url, api_key) = (client.clone(), url.clone(), api_key.clone());
        Box::pin(async move {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-rekomi-api-key", api_key)
                .header("x-rekomi-signature", sale.signature)
                .body(sale.body)
                .send()
                .await
                .map_err(|e| format!("transport: {e}"))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| format!("reading the response: {e}"))?;
            if status.as_u16() != 200 || !body.windows(RECORDED.len()).any(|w| w == RECORDED) {
                return Err(format!("status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
            }
            Ok(())
        })
    })
}

/// Issues the organization's signing secret through the API.
async fn signing_secret(base: &str, api_key: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?;
    let response = client.post(format!("{base}/api/v1/settings/tracking-secret")).bearer_auth(api_key).send().await?;
    let status = response.status();
    let value: Value = response.json().await.context("reading the signing secret")?;
    if !status.is_success() {
        bail!("POST /api/v1/settings/tracking-secret: {status} {value}");
    }
    value.get("secret").and_then(Value::as_str).map(str::to_owned).context("no secret in the answer")
}

/// Runs the phase for the affiliate whose link slug is `slug`.
///
/// # Errors
/// When the server cannot start, the secret cannot be issued, or the database cannot be read.
pub async fn run(options: &Options, spec: &ServerSpec, conn: &mut diesel::PgConnection, run: &str, slug: &str) -> anyhow::Result<S2sPhase> {
    let mut srv = Server::start(spec, Workers::Off, "s2s").await?;
    let secret = signing_secret(&srv.base, &options.api_key).await?;
    let client = load::client(options.concurrency)?;
    let send = sender(&client, &format!("{}/api/tracking/s2s", srv.base), &options.api_key);
    let (rate, amount) = (options.s2s_rate, options.amount);
    let mut next = 0u64;
    let mut batch = |count: usize| {
        let built = sales(run, next, count, slug, amount, &secret);
        next += count as u64;
        built
    };

    let warm = load::run_fixed_rate("s2s warm-up", &send, batch(rate as usize), rate, options.concurrency).await;
    eprintln!("rekomi-bench: {}", crate::report::phase_line(&warm));
    let count = (rate * options.s2s_duration as f64).round() as usize;
    let main_batch = batch(count);
    let before = CpuSnapshot::take(&[srv.pid]);
    let main = load::run_fixed_rate("s2s", &send, main_batch, rate, options.concurrency).await;
    let main_cpu = before.usage_until(&CpuSnapshot::take(&[srv.pid]));
    eprintln!("rekomi-bench: {}", crate::report::phase_line(&main));
    let mut steps = Vec::new();
    for step_rate in options.s2s_steps.iter() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let step_batch = batch((step_rate * options.step_duration as f64).round() as usize);
        let step = load::run_fixed_rate(&format!("s2s {step_rate}/s"), &send, step_batch, *step_rate, options.concurrency).await;
        eprintln!("rekomi-bench: {}", crate::report::phase_line(&step));
        steps.push(step);
    }
    drop(send);
    srv.stop();
    let accepted = warm.ok + main.ok + steps.iter().map(|s| s.ok).sum::<usize>();
    let (conversions, commission) = db::s2s_totals(conn)?;
    Ok(S2sPhase {
        main,
        main_cpu,
        steps,
        accepted,
        conversions,
        commission,
        expected_commission: accepted as i64 * amount * COMMISSION_PERCENT / 100,
    })
}
