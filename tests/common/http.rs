//! A local HTTP server that answers as a provider would: whole bodies, event streams cut into
//! chosen pieces, slow or dropped connections; it records every request it receives.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole response.
    Full { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// A chunked response written piece by piece (each piece flushed, `delay` between them);
    /// `complete: false` drops the connection after the last piece instead of ending the body.
    Chunks { status: u16, headers: Vec<(String, String)>, pieces: Vec<Vec<u8>>, delay: Duration, complete: bool },
    /// Reads the request, then never answers.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        match &mut self {
            Reply::Full { headers, .. } | Reply::Chunks { headers, .. } => headers.push((name.into(), value.into())),
            Reply::Hang => {}
        }
        self
    }

    /// An event stream cut into pieces of `piece` bytes (splitting lines and UTF-8 characters).
    pub fn sse(body: &str, piece: usize) -> Self {
        Reply::Chunks {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            pieces: body.as_bytes().chunks(piece.max(1)).map(<[u8]>::to_vec).collect(),
            delay: Duration::ZERO,
            complete: true,
        }
    }

    /// An event stream whose connection drops after `bytes` bytes.
    pub fn sse_dropped(body: &str, bytes: usize) -> Self {
        Reply::Chunks {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            pieces: vec![body.as_bytes()[..bytes.min(body.len())].to_vec()],
            delay: Duration::ZERO,
            complete: false,
        }
    }
}

/// The server. It answers the replies in order, one per request, then 500s.
pub struct MockServer {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let replies = Arc::new(Mutex::new(std::collections::VecDeque::from(replies)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let recorded = Arc::clone(&recorded);
                let replies = Arc::clone(&replies);
                tokio::spawn(async move {
                    let _ = serve(socket, recorded, replies).await;
                });
            }
        });
        Self { url: format!("http://{addr}"), requests, task }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn serve(
    mut socket: TcpStream,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    replies: Arc<Mutex<std::collections::VecDeque<Reply>>>,
) -> std::io::Result<()> {
    loop {
        let Some(request) = read_request(&mut socket).await? else { return Ok(()) };
        if let Ok(mut r) = recorded.lock() {
            r.push(request);
        }
        let reply = replies
            .lock()
            .ok()
            .and_then(|mut r| r.pop_front())
            .unwrap_or_else(|| Reply::json(500, r#"{"error":{"message":"no more replies"}}"#));
        match reply {
            Reply::Full { status, headers, body } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(&body).await?;
                socket.flush().await?;
            }
            Reply::Chunks { status, headers, pieces, delay, complete } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n");
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await?;
                socket.flush().await?;
                for piece in pieces {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    socket.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
                    socket.write_all(&piece).await?;
                    socket.write_all(b"\r\n").await?;
                    socket.flush().await?;
                }
                if !complete {
                    return Ok(());
                }
                socket.write_all(b"0\r\n\r\n").await?;
                socket.flush().await?;
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
        }
    }
}

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Option<Recorded>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))).collect();
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Ok(Some(Recorded { method, path, headers, body }))
}
