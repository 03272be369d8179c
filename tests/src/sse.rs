//! Reading Server-Sent Events (`GET /patrols/stream`, `GET /me/assignments/stream`):
//! [`Frames`] splits a `text/event-stream` body into frames as chunks arrive (the bench
//! reads its subscribers with it, without allocating per frame); [`SseClient`] is the
//! e2e tests' connection, read by a task of its own, its events queued up as JSON.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::Client;

/// A client for endless bodies: no overall timeout.
pub fn stream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// `GET path` as an event stream (`last_event_id`: resume after that event).
pub async fn subscribe(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> Result<reqwest::Response, reqwest::Error> {
    subscribe_with(http, base, path, Some(token), &[], last_event_id).await
}

/// [`subscribe`] with an optional bearer token and extra headers (a tracking token).
pub async fn subscribe_with(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    last_event_id: Option<&str>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = http.get(format!("{base}{path}"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    req.send().await
}

/// One frame of an event stream, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a>(&'a str);

impl<'a> Frame<'a> {
    fn field(self, name: &'static str) -> impl Iterator<Item = &'a str> {
        self.0
            .lines()
            .filter_map(move |l| l.strip_prefix(name)?.strip_prefix(':'))
    }
    pub fn id(&self) -> Option<&'a str> {
        self.field("id").next().map(str::trim)
    }
    /// The event name (`message` when the frame names none).
    pub fn event(&self) -> &'a str {
        self.field("event")
            .next()
            .map(str::trim)
            .unwrap_or("message")
    }
    /// The `data:` lines, each without the one space after the colon.
    pub fn data_lines(&self) -> impl Iterator<Item = &'a str> {
        self.field("data").map(|v| v.strip_prefix(' ').unwrap_or(v))
    }
}

/// Splits an event stream into frames across chunk boundaries.
#[derive(Debug, Default)]
pub struct Frames {
    buf: String,
}

impl Frames {
    /// Adds `chunk` and calls `f` with every frame it completed.
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(Frame<'_>)) {
        self.buf.push_str(&String::from_utf8_lossy(chunk));
        let mut start = 0;
        while let Some(end) = self.buf[start..].find("\n\n") {
            f(Frame(&self.buf[start..start + end]));
            start += end + 2;
        }
        self.buf.drain(..start);
    }
}

/// One Server-Sent Event, its data parsed as JSON.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
    /// When the reader parsed it.
    pub at: Instant,
}

impl SseEvent {
    /// None for a frame without data (a keep-alive comment).
    fn parse(frame: Frame<'_>) -> Option<Self> {
        let data: Vec<&str> = frame.data_lines().collect();
        if data.is_empty() {
            return None;
        }
        Some(Self {
            id: frame.id().map(str::to_string),
            event: frame.event().to_string(),
            data: serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null),
            at: Instant::now(),
        })
    }
}

/// An SSE connection read by a task of its own; events queue up in the test.
pub struct SseClient {
    rx: mpsc::UnboundedReceiver<Option<SseEvent>>,
    ended: bool,
}

impl SseClient {
    /// Opens `path`, asserting a 200 event stream.
    pub async fn open(
        api: impl Into<Client>,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        Self::open_with(api, path, Some(token), &[], last_event_id).await
    }

    /// [`SseClient::open`] with an optional bearer token and extra headers.
    pub async fn open_with(
        api: impl Into<Client>,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        last_event_id: Option<&str>,
    ) -> Self {
        let base = api.into().base;
        let mut res = subscribe_with(&stream_client(), &base, path, token, headers, last_event_id)
            .await
            .expect("SSE request");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream")));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut frames = Frames::default();
            while let Ok(Some(chunk)) = res.chunk().await {
                let mut open = true;
                frames.push(&chunk, |f| {
                    if let Some(ev) = SseEvent::parse(f) {
                        open &= tx.send(Some(ev)).is_ok();
                    }
                });
                if !open {
                    return;
                }
            }
            let _ = tx.send(None);
        });
        Self { rx, ended: false }
    }

    /// The answer to `GET path` (for refusals: its status).
    pub async fn request(
        api: impl Into<Client>,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        Self::request_with(api, path, Some(token), &[], last_event_id).await
    }

    /// [`SseClient::request`] with an optional bearer token and extra headers.
    pub async fn request_with(
        api: impl Into<Client>,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let base = api.into().base;
        subscribe_with(&stream_client(), &base, path, token, headers, last_event_id)
            .await
            .expect("SSE request")
    }

    /// The next event, if one comes within `wait` (None also when the stream ended).
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        if self.ended {
            return None;
        }
        match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(Some(ev))) => Some(ev),
            Ok(_) => {
                self.ended = true;
                None
            }
            Err(_) => None,
        }
    }

    /// The next event named `event` within `wait`, skipping others.
    pub async fn next_of(&mut self, event: &str, wait: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let ev = self.next(left).await?;
            if ev.event == event {
                return Some(ev);
            }
        }
    }

    /// Every event that arrives until `quiet` passes without one.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(ev) = self.next(quiet).await {
            out.push(ev);
        }
        out
    }

    /// Waits (bounded) for the server to end the stream.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.ended {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            self.next(left).await;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_across_chunks_and_parsed() {
        let mut frames = Frames::default();
        let mut seen = Vec::new();
        let mut collect = |f: Frame<'_>| {
            seen.push((
                f.id().map(str::to_string),
                f.event().to_string(),
                f.data_lines().collect::<Vec<_>>().join("\n"),
            ))
        };
        frames.push(b"id: p1\nevent: position\ndata: {\"a\":", &mut collect);
        frames.push(
            b"1}\n\n: keep-alive\n\ndata:x\ndata: y\n\nid: e2",
            &mut collect,
        );
        assert_eq!(
            seen,
            [
                (Some("p1".into()), "position".into(), "{\"a\":1}".into()),
                (None, "message".into(), String::new()),
                (None, "message".into(), "x\ny".into()),
            ]
        );
        assert_eq!(
            frames.buf, "id: e2",
            "the incomplete frame waits for its end"
        );
    }

    #[test]
    fn a_frame_without_data_is_no_event() {
        assert!(SseEvent::parse(Frame(": keep-alive")).is_none());
        let ev = SseEvent::parse(Frame("id: e7\nevent: status\ndata: {\"s\":1}")).expect("event");
        assert_eq!(
            (ev.id.as_deref(), ev.event.as_str(), &ev.data),
            (Some("e7"), "status", &serde_json::json!({"s": 1}))
        );
    }
}
