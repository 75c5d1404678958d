//! The HTTP transport behind a trait, so the client's rules (signing, budget, retries,
//! fallbacks) are tested against fakes, and a reqwest implementation for real use.
//! A transport sends exactly one request and reports what happened; it never retries.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so that [`Transport`] stays object-safe (`Arc<dyn Transport>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One HTTP request, fully prepared (signed) by the client.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: String,
    /// Absolute URL, exactly as signed.
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Exactly the bytes that were signed.
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for HttpRequest {
    /// Headers carry the consumer key, signature or bearer token: only their names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// One HTTP answer, any status.
#[derive(Clone, Debug, Default)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no answer came back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection could not be established: nothing was sent.
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timed out")]
    Timeout,
    /// Failed after (maybe) sending: reset, broken body, protocol error.
    #[error("{0}")]
    Other(String),
    /// The answer's body is larger than [`MAX_ANSWER_BYTES`]: it was not read to the end (a
    /// real answer is far smaller; whatever sends this is not the API we know).
    #[error("the answer is larger than {} MiB; it was not read", .limit / (1024 * 1024))]
    TooLarge { limit: u64 },
}

/// The largest answer body read. The biggest real answers (a 1,000-server listing with its
/// details, a task history) are a few MiB; an endless or giant body must not exhaust memory.
pub const MAX_ANSWER_BYTES: u64 = 32 * 1024 * 1024;

/// Sends one prepared request. Implementations must honour `request.timeout`.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}

/// The real transport: reqwest over rustls with the `ring` provider.
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    pub fn new(connect_timeout: Duration) -> Result<ReqwestTransport, super::Error> {
        // reqwest is built with `rustls-no-provider`: install ring as the process default once.
        // An Err means another provider is already installed, which is fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("ovhform/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| super::Error::Build(e.to_string()))?;
        Ok(ReqwestTransport { client })
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(request.method.as_bytes())
                .map_err(|e| TransportError::Other(format!("bad method: {e}")))?;
            let mut builder = self
                .client
                .request(method, &request.url)
                .timeout(request.timeout);
            for (k, v) in &request.headers {
                builder = builder.header(k, v);
            }
            if let Some(body) = request.body {
                builder = builder.body(body);
            }
            let resp = builder.send().await.map_err(classify)?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = read_bounded(resp, MAX_ANSWER_BYTES).await?;
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
    }
}

/// The body, chunk by chunk, refused as soon as it passes `limit` (a declared length over the
/// limit is refused before any of it is read).
async fn read_bounded(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, TransportError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(TransportError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(TransportError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn classify(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        TransportError::Connect(describe(e))
    } else {
        TransportError::Other(describe(e))
    }
}

/// The error and its causes, without the URL (our errors name the path already).
fn describe(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reqwest_transport_builds_and_classifies_refused_connections() {
        let t = ReqwestTransport::new(Duration::from_secs(1)).expect("client builds with ring");
        // Bind then drop a listener to get a loopback port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let req = HttpRequest {
            method: "GET".into(),
            url: format!("http://127.0.0.1:{port}/1.0/auth/time"),
            headers: vec![],
            body: None,
            timeout: Duration::from_secs(2),
        };
        let err = t.send(req).await.unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
    }

    /// One raw HTTP answer on a loopback port, to whoever connects first.
    async fn answer_once(raw: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(&raw).await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused_declared_or_not() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        // Declared too long: refused before reading.
        let url = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n".to_vec()).await;
        let resp = client.get(url).send().await.unwrap();
        let e = read_bounded(resp, 1024).await.unwrap_err();
        assert_eq!(e, TransportError::TooLarge { limit: 1024 });
        // Chunked, no length: refused once the bytes pass the limit.
        let mut raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..3 {
            raw.extend_from_slice(b"200\r\n");
            raw.extend_from_slice(&[b'a'; 0x200]);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let resp = client
            .get(answer_once(raw.clone()).await)
            .send()
            .await
            .unwrap();
        let e = read_bounded(resp, 1024).await.unwrap_err();
        assert_eq!(e, TransportError::TooLarge { limit: 1024 });
        // At the limit exactly: read whole.
        let resp = client.get(answer_once(raw).await).send().await.unwrap();
        assert_eq!(
            read_bounded(resp, 3 * 0x200).await.unwrap().len(),
            3 * 0x200
        );
    }
}
