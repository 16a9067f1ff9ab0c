//! A fixed-rate HTTP/1.1 load generator for `bench/run.sh` (the below-saturation run): sends
//! `POST`s at a constant rate over keep-alive connections and prints the latency distribution in
//! the same `RESULT …` line as `bench/wrk-report.lua`.
//!
//! Open loop: request `i` is due at `start + i / rate` whatever happened before it, and its
//! latency is measured from that due time, not from when it was actually sent. A server that
//! stalls is therefore charged for every request that queued behind the stall (no "coordinated
//! omission", as in wrk2 or an HDR histogram with expected-interval correction).
//!
//! ```text
//! cargo run --release --example fixed_rate -- --url http://127.0.0.1:18080/webhooks/twilio/voice \
//!     --rate 2000 --connections 32 --duration 8 --body-file body.txt \
//!     --header 'Content-Type: application/x-www-form-urlencoded' --header 'X-Twilio-Signature: …'
//! ```
//!
//! Not a general tool: plain `http://` only, responses must carry `Content-Length` (axum's do).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    host: String,
    path: String,
    rate: f64,
    connections: usize,
    duration: Duration,
    body: Vec<u8>,
    headers: Vec<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut url = None;
    let mut rate = 2000.0;
    let mut connections = 32;
    let mut duration = 8.0;
    let mut body = Vec::new();
    let mut headers = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--rate" => rate = value()?.parse()?,
            "--connections" => connections = value()?.parse()?,
            "--duration" => duration = value()?.parse()?,
            "--body-file" => {
                let path = value()?;
                body = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
            }
            "--header" => headers.push(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    let url = url.ok_or_else(|| anyhow!("--url is required"))?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// URLs"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    };
    if rate <= 0.0 || connections == 0 || duration <= 0.0 {
        bail!("--rate, --connections and --duration must be positive");
    }
    Ok(Args {
        host,
        path,
        rate,
        connections,
        duration: Duration::from_secs_f64(duration),
        body,
        headers,
    })
}

#[derive(Default)]
struct Tally {
    /// Latency from each request's due time to the end of its response, in microseconds.
    latencies_us: Vec<u64>,
    non2xx: u64,
    socket_errors: u64,
}

/// Read one response; `Ok(status)`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<u16> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .ok_or_else(|| anyhow!("no status line"))?
        .parse()?;
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse::<usize>())
        .transpose()?
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed in the body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if buf.len() > head_end + length {
        bail!("unexpected bytes after the response (pipelining is not used)");
    }
    Ok(status)
}

/// One connection: requests `slot`, `slot + connections`, … at their due times.
async fn connection(
    args: &Args,
    request: &[u8],
    slot: usize,
    start: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let mut due = start + Duration::from_secs_f64(slot as f64 / args.rate);
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    while due < end {
        tokio::time::sleep_until(due.into()).await;
        let result = async {
            if stream.is_none() {
                let s = TcpStream::connect(&args.host).await?;
                s.set_nodelay(true)?;
                stream = Some(s);
            }
            let s = stream.as_mut().ok_or_else(|| anyhow!("no connection"))?;
            s.write_all(request).await?;
            read_response(s, &mut buf).await
        }
        .await;
        match result {
            Ok(status) => {
                tally
                    .latencies_us
                    .push(due.elapsed().as_micros().try_into().unwrap_or(u64::MAX));
                if !(200..300).contains(&status) {
                    tally.non2xx += 1;
                }
            }
            Err(_) => {
                tally.socket_errors += 1;
                stream = None;
            }
        }
        due += interval;
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        args.path,
        args.host,
        args.body.len()
    );
    for h in &args.headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(&args.body);

    // Start a little in the future so that every connection is waiting when the clock starts.
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + args.duration;
    let tallies = futures::future::join_all(
        (0..args.connections).map(|slot| connection(&args, &request, slot, start, end)),
    )
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = Tally::default();
    for t in tallies {
        all.latencies_us.extend(t.latencies_us);
        all.non2xx += t.non2xx;
        all.socket_errors += t.socket_errors;
    }
    all.latencies_us.sort_unstable();
    let done = all.latencies_us.len();
    println!(
        "RESULT rps={:.1} p50_us={} p99_us={} requests={} non2xx={} socket_errors={}",
        done as f64 / elapsed,
        percentile(&all.latencies_us, 50.0),
        percentile(&all.latencies_us, 99.0),
        done,
        all.non2xx,
        all.socket_errors
    );
    Ok(())
}
