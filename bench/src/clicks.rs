//! Phase 4, clicks: Short links (`GET /r/{slug}`) followed at a fixed rate (open loop), then a
//! step test of the same requests against the tracked server and against a bare actix-web
//! handler answering the same `302` without tracking (the ceiling, measured in the same run on
//! the same machine). After a graceful stop (which flushes the click buffer) the `clicks` table
//! must hold exactly one row per `302` answered.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::load::{self, PhaseResult, Sender};
use crate::server::{Server, ServerSpec, Workers};
use crate::sys::{CpuSnapshot, CpuUsage};
use crate::{db, Options};

/// The slug and landing page the benchmark's affiliate link uses.
pub const SLUG: &str = "bench-click";
pub const LANDING: &str = "https://bench.example.com/pricing";

/// What the click phase measured.
pub struct ClickPhase {
    pub main: PhaseResult,
    pub main_cpu: CpuUsage,
    /// `302`s answered by the tracked server in every run of the phase (warm-up and steps
    /// included): the rows expected.
    pub answered: usize,
    /// Rows in `clicks` after the graceful stop.
    pub rows: i64,
    pub tracked_steps: Vec<PhaseResult>,
    pub bare_steps: Vec<PhaseResult>,
}

impl ClickPhase {
    /// The highest step rate that was kept with no error and p99 within `target_ms`.
    pub fn saturation(steps: &[PhaseResult], target_ms: f64) -> Option<f64> {
        steps.iter().filter(|p| holds(p, target_ms)).map(|p| p.rate).fold(None, |best, r| Some(best.map_or(r, |b: f64| b.max(r))))
    }
}

/// Every request answered as expected, at the rate, with p99 within `target_ms`.
pub fn holds(p: &PhaseResult, target_ms: f64) -> bool {
    p.errors == 0 && p.no_slot == 0 && p.accepted_per_sec >= p.rate * 0.99 && p.latency.p99.as_secs_f64() * 1000.0 <= target_ms
}

fn urls(base: &str, count: usize) -> Vec<String> {
    // A realistic link: the visitor's own parameters ride along to the landing page.
    (0..count).map(|i| format!("{base}/r/{SLUG}?utm_source=bench&sub1=v{}", i % 1000)).collect()
}

async fn steps(label: &str, sender: &Sender<String>, base: &str, options: &Options) -> Vec<PhaseResult> {
    let mut results = Vec::new();
    for rate in options.click_steps.iter() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let count = (rate * options.step_duration as f64).round() as usize;
        let step = load::run_fixed_rate(&format!("{label} {rate}/s"), sender, urls(base, count), *rate, options.concurrency).await;
        eprintln!("rekomi-bench: {}", crate::report::phase_line(&step));
        results.push(step);
    }
    results
}

/// Runs the phase.
///
/// # Errors
/// When a server cannot start or the database cannot be read.
pub async fn run(options: &Options, spec: &ServerSpec, conn: &mut diesel::PgConnection) -> anyhow::Result<ClickPhase> {
    let rows_before = db::clicks(conn)?;
    let mut srv = Server::start(spec, Workers::Off, "clicks").await?;
    let client = load::client(options.concurrency)?;
    let tracked = load::redirect_sender(&client, "rk_click=rkc_");
    let rate = options.click_rate;

    let warm = load::run_fixed_rate("click warm-up", &tracked, urls(&srv.base, (rate * 2.0) as usize), rate, options.concurrency).await;
    eprintln!("rekomi-bench: {}", crate::report::phase_line(&warm));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = (rate * options.click_duration as f64).round() as usize;
    eprintln!("rekomi-bench: clicks, {} s at {rate}/s", options.click_duration);
    let before = CpuSnapshot::take(&[srv.pid]);
    let main = load::run_fixed_rate("clicks", &tracked, urls(&srv.base, count), rate, options.concurrency).await;
    let main_cpu = before.usage_until(&CpuSnapshot::take(&[srv.pid]));
    eprintln!("rekomi-bench: {}", crate::report::phase_line(&main));
    let tracked_steps = steps("tracked", &tracked, &srv.base, options).await;
    drop(tracked);
    srv.stop();
    let rows = db::clicks(conn)? - rows_before;
    let answered = warm.ok + main.ok + tracked_steps.iter().map(|s| s.ok).sum::<usize>();

    let mut bare = BareServer::start(options.server_http_workers).await?;
    let bare_sender = load::redirect_sender(&client, "via=");
    let _ = load::run_fixed_rate("bare warm-up", &bare_sender, urls(&bare.base, (rate * 2.0) as usize), rate, options.concurrency).await;
    let bare_steps = steps("bare", &bare_sender, &bare.base, options).await;
    bare.stop();
    Ok(ClickPhase { main, main_cpu, answered, rows, tracked_steps, bare_steps })
}

/// This binary again, as `--bare-redirect-port PORT`: the ceiling.
struct BareServer {
    child: Child,
    base: String,
}

impl BareServer {
    async fn start(workers: Option<usize>) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("--bare-redirect-port").arg(port.to_string()).stdin(Stdio::null()).stdout(Stdio::null());
        if let Some(n) = workers {
            command.arg("--server-http-workers").arg(n.to_string());
        }
        let child = command.spawn().context("starting the bare redirect server")?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if client.get(format!("{base}/r/{SLUG}")).send().await.is_ok_and(|r| r.status().as_u16() == 302) {
                return Ok(Self { child, base });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the bare redirect server did not answer within 10 s")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ceiling's handler: the same `302` the tracked server answers (landing URL, the
/// visitor's parameters, `via`), with nothing recorded.
async fn bare_redirect(req: actix_web::HttpRequest, slug: actix_web::web::Path<String>) -> actix_web::HttpResponse {
    let query = req.query_string();
    let sep = if query.is_empty() { "" } else { "&" };
    actix_web::HttpResponse::Found()
        .insert_header(("Location", format!("{LANDING}?{query}{sep}via={slug}")))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// Serves [`bare_redirect`] on `port` until killed.
///
/// # Errors
/// When the port cannot be bound.
pub fn serve_bare(port: u16, workers: Option<usize>) -> anyhow::Result<()> {
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(|| actix_web::App::new().route("/r/{slug}", actix_web::web::get().to(bare_redirect)))
            .workers(workers)
            .bind(("127.0.0.1", port))?
            .run()
            .await
    })?;
    Ok(())
}
