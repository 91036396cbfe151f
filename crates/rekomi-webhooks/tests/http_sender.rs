//! `HttpWebhookSender` against a local HTTP receiver on 127.0.0.1 (allowed mode), and the
//! refusal of the same receiver in strict mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rekomi_domain::outbound::{OutboundRequest, SendOutcome, WebhookSender};
use rekomi_webhooks::{HttpWebhookSender, USER_AGENT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the receiver answers, in order; the last answer repeats.
#[derive(Clone, Debug)]
enum Answer {
    Status(u16),
    Redirect(String),
    Hang,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let len = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received { request_line, headers, body: String::from_utf8_lossy(&body).to_string() })
}

async fn receiver(answers: Vec<Answer>) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hooks/rekomi", listener.local_addr().unwrap().port());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let (log, answers) = (Arc::clone(&log), Arc::clone(&answers));
            tokio::spawn(async move {
                let Some(request) = read_request(&mut stream).await else { return };
                log.lock().unwrap().push(request);
                let answer = {
                    let mut answers = answers.lock().unwrap();
                    if answers.len() > 1 {
                        answers.pop_front()
                    } else {
                        answers.front().cloned()
                    }
                };
                let response = match answer.unwrap_or(Answer::Status(200)) {
                    Answer::Status(code) => format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"),
                    Answer::Redirect(to) => {
                        format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    }
                    Answer::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Receiver { url, received }
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn request(url: &str) -> OutboundRequest {
    OutboundRequest {
        url: url.to_owned(),
        body: r#"{"id":"01J0000000000000000000000","type":"affiliate.created","created":1,"data":{}}"#.to_owned(),
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Rekomi-Signature".to_owned(), "t=1,v1=abc".to_owned()),
            ("X-Rekomi-Event".to_owned(), "affiliate.created".to_owned()),
            ("X-Rekomi-Delivery-Id".to_owned(), "01J0000000000000000000000D".to_owned()),
        ],
    }
}

#[tokio::test]
async fn a_200_is_delivered_with_the_body_and_headers_as_given() {
    let rx = receiver(vec![Answer::Status(200)]).await;
    let sender = HttpWebhookSender::new(true).unwrap();
    let req = request(&rx.url);
    assert_eq!(sender.send(&req).await, SendOutcome::Delivered { status: 200 });
    let got = rx.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_line, "POST /hooks/rekomi HTTP/1.1");
    assert_eq!(got[0].body, req.body);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[0].header("x-rekomi-signature"), Some("t=1,v1=abc"));
    assert_eq!(got[0].header("x-rekomi-event"), Some("affiliate.created"));
    assert_eq!(got[0].header("x-rekomi-delivery-id"), Some("01J0000000000000000000000D"));
    assert_eq!(got[0].header("user-agent"), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("Rekomi-Webhooks/"));
}

#[tokio::test]
async fn a_500_is_a_failure_carrying_the_status() {
    let rx = receiver(vec![Answer::Status(500)]).await;
    let sender = HttpWebhookSender::new(true).unwrap();
    assert_eq!(sender.send(&request(&rx.url)).await, SendOutcome::Failed { status: Some(500), error: "HTTP 500".to_owned() });
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let target = receiver(vec![Answer::Status(200)]).await;
    let rx = receiver(vec![Answer::Redirect(target.url.clone())]).await;
    let sender = HttpWebhookSender::new(true).unwrap();
    match sender.send(&request(&rx.url)).await {
        SendOutcome::Failed { status: Some(302), error } => assert!(error.contains("not followed"), "{error}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(rx.received().len(), 1);
    assert!(target.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_does_not_answer_times_out() {
    let rx = receiver(vec![Answer::Hang]).await;
    let sender = HttpWebhookSender::with_timeout(true, Duration::from_millis(300)).unwrap();
    assert_eq!(sender.send(&request(&rx.url)).await, SendOutcome::Failed { status: None, error: "timed out".to_owned() });
}

#[tokio::test]
async fn a_closed_port_is_a_connection_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    drop(listener);
    let sender = HttpWebhookSender::new(true).unwrap();
    match sender.send(&request(&url)).await {
        SendOutcome::Failed { status: None, error } => assert!(!error.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn strict_mode_refuses_the_local_receiver_without_connecting() {
    let rx = receiver(vec![Answer::Status(200)]).await;
    let sender = HttpWebhookSender::new(false).unwrap();
    let err = sender.check_target(&rx.url).await.unwrap_err();
    assert!(err.contains("loopback"), "{err}");
    match sender.send(&request(&rx.url)).await {
        SendOutcome::Failed { status: None, error } => assert!(error.starts_with("target refused:"), "{error}"),
        other => panic!("{other:?}"),
    }
    // A name that resolves to loopback is refused too, by the check and by the client's resolver.
    let by_name = rx.url.replace("127.0.0.1", "localhost");
    assert!(sender.check_target(&by_name).await.is_err());
    assert!(matches!(sender.send(&request(&by_name)).await, SendOutcome::Failed { status: None, .. }));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rx.received().is_empty());
}
