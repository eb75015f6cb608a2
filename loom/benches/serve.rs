//! The HTTP server under load: non-streamed chat completions over loopback.
//!
//! | line | what answers |
//! |---|---|
//! | `serve_chat` / `floor` | a plain axum app on the same route, `POST /v1/chat/completions`, answering a constant JSON completion |
//! | `serve_chat` / `loom` | `loomflow::serve` with an echo agent: the request read and parsed, the agent run, the completion written |
//!
//! ```sh
//! cargo bench -p loomflow --features serve --bench serve              # readable table
//! cargo bench -p loomflow --features serve --bench serve -- --json    # one JSON line per measurement
//! cargo bench -p loomflow --features serve --bench serve -- --quick   # a short run
//! ```
//!
//! **The load.** 64 clients, each its own keep-alive HTTP/1.1 connection (hyper's client),
//! send one request after another for a few seconds after a warm-up; each request is timed
//! from being sent to its whole body read. Requests per second are the requests over the
//! measured wall time; p50 and p99 are of the per-request latencies. Every answer's status is
//! checked, and the first of each connection's body too (`"Echo: ..."` for Loom); a failed
//! check prints `"verified": false` and the process exits non-zero.
//!
//! **The machine.** The server runs on tokio's multi-thread runtime with two workers, the load
//! generator on a current-thread runtime of its own thread: on a 2-core VM they share the
//! cores, so the floor says what the machine and the load generator allow. The target for the
//! `loom` line is 20,000 requests per second on 2 cores.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use loomflow::prelude::*;
use loomflow::serve::Server;
use serde_json::Value;

/// How many connections send at once.
const CLIENTS: usize = 64;

/// What every request sends.
const BODY: &str = r#"{"model":"echo","messages":[{"role":"user","content":"How do I reset my password?"}]}"#;

/// What the floor answers: a completion of the same size as Loom's.
const FLOOR_ANSWER: &str = r#"{"id":"chatcmpl-run_01KA0000000000000000000000","object":"chat.completion","created":1760000000,"model":"echo","choices":[{"index":0,"message":{"role":"assistant","content":"Echo: How do I reset my password?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":8,"completion_tokens":7,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":null}"#;

struct Options {
    json: bool,
    quick: bool,
}

fn options() -> Result<Options> {
    let mut options = Options { json: false, quick: false };
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => options.json = true,
            "--quick" => options.quick = true,
            // What `cargo bench` adds.
            "--bench" => {}
            "--help" | "-h" => {
                println!(
                    "usage: serve [--json] [--quick]\n  --json   one JSON line per measurement\n  --quick  a short run"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok(options)
}

/// One measured line.
struct Measured {
    requests: usize,
    errors: usize,
    seconds: f64,
    p50_us: f64,
    p99_us: f64,
    verified: Result<()>,
}

fn main() -> Result<()> {
    let options = options()?;
    let (warmup, measure) = if options.quick {
        (Duration::from_millis(300), Duration::from_secs(2))
    } else {
        (Duration::from_secs(1), Duration::from_secs(5))
    };
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    let floor = {
        let listener = server.block_on(tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let address = listener.local_addr()?;
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(|| async { ([(http::header::CONTENT_TYPE, "application/json")], FLOOR_ANSWER) }),
        );
        let task = server.spawn(async move { axum::serve(listener, app).await });
        let measured = load(address, warmup, measure, "\"Echo: ");
        task.abort();
        measured
    };

    let loom = {
        let agent = Agent::new("You help with accounts.").model("echo");
        let service = Server::new().agent("echo", agent).open().build()?;
        let listener = server.block_on(tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = server.spawn(service.serve(listener, async move {
            let _ = stopped.await;
        }));
        let measured = load(address, warmup, measure, "\"Echo: How do I reset my password?\"");
        let _ = stop.send(());
        let _ = server.block_on(task);
        measured
    };

    let mut ok = true;
    for (variant, measured) in [("floor", &floor), ("loom", &loom)] {
        ok &= report(&options, variant, measured);
    }
    if !options.json && floor.verified.is_ok() && loom.verified.is_ok() {
        let rate = |m: &Measured| m.requests as f64 / m.seconds;
        println!(
            "\nloom serves {:.0}% of the floor's requests per second; its p99 is {:.0} µs over the floor's",
            100.0 * rate(&loom) / rate(&floor),
            loom.p99_us - floor.p99_us
        );
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Prints one line; whether its checks passed.
fn report(options: &Options, variant: &str, m: &Measured) -> bool {
    let rate = m.requests as f64 / m.seconds;
    if options.json {
        // In this order, as the other benchmarks write theirs.
        let mut fields: Vec<(&str, Value)> = vec![
            ("framework", "loom".into()),
            ("workload", "serve_chat".into()),
            ("variant", variant.into()),
            ("clients", CLIENTS.into()),
            ("seconds", ((m.seconds * 1000.0).round() / 1000.0).into()),
            ("requests", m.requests.into()),
            ("errors", m.errors.into()),
            ("requests_per_s", rate.round().into()),
            ("p50_us", ((m.p50_us * 10.0).round() / 10.0).into()),
            ("p99_us", ((m.p99_us * 10.0).round() / 10.0).into()),
            ("verified", m.verified.is_ok().into()),
        ];
        if let Err(e) = &m.verified {
            fields.push(("error", format!("{e:#}").into()));
        }
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", Value::from(*k))).collect();
        println!("{{{}}}", fields.join(","));
    } else {
        if variant == "floor" {
            println!(
                "{:<12} {:<7} {:>8} {:>12} {:>10} {:>10} {:>7}",
                "workload", "variant", "clients", "requests/s", "p50", "p99", "errors"
            );
        }
        match &m.verified {
            Ok(()) => println!(
                "{:<12} {:<7} {:>8} {:>12.0} {:>7.0} µs {:>7.0} µs {:>7}",
                "serve_chat", variant, CLIENTS, rate, m.p50_us, m.p99_us, m.errors
            ),
            Err(e) => println!("{:<12} {:<7} FAILED: {e:#}", "serve_chat", variant),
        }
    }
    m.verified.is_ok()
}

/// Runs the load against `address` on a thread of its own: a warm-up, then the measured part.
fn load(address: SocketAddr, warmup: Duration, measure: Duration, expect: &'static str) -> Measured {
    let run = std::thread::spawn(move || -> Result<Measured> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let started = Instant::now();
            let measure_from = started + warmup;
            let end = measure_from + measure;
            let clients: Vec<_> =
                (0..CLIENTS).map(|_| tokio::spawn(client(address, measure_from, end, expect))).collect();
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            for c in clients {
                match c.await? {
                    Ok((mut l, e)) => {
                        latencies.append(&mut l);
                        errors += e;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            let seconds = measure.as_secs_f64();
            latencies.sort_unstable();
            let pick = |q: f64| {
                let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
                latencies.get(i).map_or(0.0, |ns| *ns as f64 / 1000.0)
            };
            let verified = match (first_error, errors) {
                (Some(e), _) => Err(e),
                (None, 0) if !latencies.is_empty() => Ok(()),
                (None, 0) => Err(anyhow::anyhow!("no request was answered")),
                (None, n) => Err(anyhow::anyhow!("{n} requests failed")),
            };
            Ok(Measured { requests: latencies.len(), errors, seconds, p50_us: pick(0.5), p99_us: pick(0.99), verified })
        })
    });
    match run.join() {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => Measured { requests: 0, errors: 0, seconds: 1.0, p50_us: 0.0, p99_us: 0.0, verified: Err(e) },
        Err(_) => Measured {
            requests: 0,
            errors: 0,
            seconds: 1.0,
            p50_us: 0.0,
            p99_us: 0.0,
            verified: Err(anyhow::anyhow!("the load generator panicked")),
        },
    }
}

/// One keep-alive connection sending requests until `end`; the latencies (ns) of those sent
/// after `measure_from`, and how many failed.
async fn client(address: SocketAddr, measure_from: Instant, end: Instant, expect: &str) -> Result<(Vec<u64>, usize)> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut latencies = Vec::with_capacity(64 * 1024);
    let mut errors = 0;
    let mut checked = false;
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = Request::post("/v1/chat/completions")
            .header(http::header::HOST, "127.0.0.1")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(BODY.as_bytes())))?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let elapsed = sent.elapsed();
        if status != 200 {
            errors += 1;
            continue;
        }
        if !checked {
            let text = std::str::from_utf8(&body).context("the body is not text")?;
            ensure!(text.contains(expect), "unexpected answer: {text}");
            let _: Value = serde_json::from_str(text).context("the answer is not JSON")?;
            checked = true;
        }
        if sent >= measure_from {
            latencies.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    Ok((latencies, errors))
}
