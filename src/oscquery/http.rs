//! Just enough HTTP/1.1 for OSCQuery: a request head parsed from bytes (pure, fuzzable), the
//! answer to a `GET` of the namespace, and responses. WebSocket upgrades are recognised here
//! and handed to [`super::listen`].

use serde_json::{json, Value};

use super::namespace::Namespace;

/// A request head larger than this is refused (OSCQuery requests are a path and a few headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Percent-decoded (`/audio/bpm`).
    pub path: String,
    /// The query string (`VALUE`, `HOST_INFO`), if any.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Upgrade: websocket` with a key: the client wants the LISTEN stream.
    pub fn websocket_key(&self) -> Option<&str> {
        let upgrade = self.header("upgrade")?;
        upgrade
            .eq_ignore_ascii_case("websocket")
            .then(|| self.header("sec-websocket-key"))
            .flatten()
    }

    /// HTTP/1.1 keeps the connection unless told otherwise.
    pub fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

/// Why a head is not a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Parses a request head from the start of `buf`: `Ok(None)` until the blank line has arrived;
/// then the request and how many bytes it took.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let bad = |m: &str| HeadError::Malformed(m.to_string());
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the request line is not METHOD TARGET VERSION"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not HTTP/1.x"));
    }
    if !target.starts_with('/') {
        return Err(bad("the target must be a path"));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(percent_decode(q)?)),
        None => (target, None),
    };
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad("a header without ':'"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Some((
        Request {
            method: method.to_string(),
            path: percent_decode(path)?,
            query,
            headers,
        },
        end + 4,
    )))
}

fn percent_decode(s: &str) -> Result<String, HeadError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| HeadError::Malformed(format!("bad %-escape in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| HeadError::Malformed("not UTF-8 after %-decoding".into()))
}

/// A response: status, and a JSON body or none.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Option<Value>,
}

impl Response {
    fn json(body: Value) -> Response {
        Response {
            status: 200,
            body: Some(body),
        }
    }

    fn status(status: u16) -> Response {
        Response { status, body: None }
    }

    fn error(status: u16, message: String) -> Response {
        Response {
            status,
            body: Some(json!({ "error": message })),
        }
    }

    /// The bytes on the wire. `Access-Control-Allow-Origin: *`: browser-based OSCQuery
    /// clients read the namespace from another origin.
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Error",
        };
        let body = self
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nAccess-Control-Allow-Origin: *\r\nConnection: {}\r\n",
            self.status,
            body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        );
        if self.body.is_some() {
            out.push_str("Content-Type: application/json\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&body);
        bytes
    }
}

/// The node attributes a `?ATTRIBUTE` query may ask for.
const ATTRIBUTES: [&str; 7] = [
    "FULL_PATH",
    "CONTENTS",
    "TYPE",
    "ACCESS",
    "RANGE",
    "DESCRIPTION",
    "VALUE",
];

/// The answer to a request for the namespace: a node, one attribute of it (`?VALUE`; 204 when
/// the node has none, as the OSCQuery spec says), or `?HOST_INFO`.
pub fn answer(req: &Request, ns: &Namespace, host_info: &Value) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(
            405,
            format!("{} is not served: OSCQuery is GET", req.method),
        );
    }
    if req.query.as_deref() == Some("HOST_INFO") {
        return Response::json(host_info.clone());
    }
    let Some(node) = ns.node(&req.path) else {
        return Response::error(404, format!("no OSC address or container {}", req.path));
    };
    match req.query.as_deref() {
        None | Some("") => Response::json(node),
        Some(attr) if ATTRIBUTES.contains(&attr) => match node.get(attr) {
            Some(v) => Response::json(json!({ attr: v })),
            None => Response::status(204),
        },
        Some(other) => Response::error(
            400,
            format!("unknown query {other:?}: ask for HOST_INFO or one of {ATTRIBUTES:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Request {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn a_head_is_parsed_once_whole() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let r = head("GET /audio/bpm?VALUE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.path, "/audio/bpm");
        assert_eq!(r.query.as_deref(), Some("VALUE"));
        assert!(!r.keep_alive());
        assert_eq!(head("GET /a%2Fb HTTP/1.1\r\n\r\n").path, "/a/b");
        assert!(parse_head(b"GET /%zz HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(b"BREW\r\n\r\n").is_err());
        assert_eq!(
            parse_head(&vec![b'a'; MAX_HEAD + 1]),
            Err(HeadError::TooLarge)
        );
        let ws = head("GET / HTTP/1.1\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: abc\r\n\r\n");
        assert_eq!(ws.websocket_key(), Some("abc"));
    }

    #[test]
    fn answers_follow_the_oscquery_spec() {
        let mut ns = Namespace::default();
        let info = json!({"NAME": "t"});
        let get = |ns: &Namespace, t: &str| {
            answer(&head(&format!("GET {t} HTTP/1.1\r\n\r\n")), ns, &info)
        };
        assert_eq!(get(&ns, "/?HOST_INFO").body, Some(info.clone()));
        assert_eq!(get(&ns, "/audio/bpm?VALUE").status, 204, "no value yet");
        ns.record(&rosc::OscMessage {
            addr: "/audio/bpm".into(),
            args: vec![rosc::OscType::Float(120.0), rosc::OscType::Float(1.0)],
        });
        assert_eq!(
            get(&ns, "/audio/bpm?VALUE").body,
            Some(json!({"VALUE": [120.0, 1.0]}))
        );
        assert_eq!(
            get(&ns, "/audio/bpm?TYPE").body,
            Some(json!({"TYPE": "ff"}))
        );
        assert_eq!(get(&ns, "/audio/nope").status, 404);
        assert_eq!(get(&ns, "/audio/bpm?COLOR").status, 400);
        let post = answer(&head("POST / HTTP/1.1\r\n\r\n"), &ns, &info);
        assert_eq!(post.status, 405);
        let bytes = get(&ns, "/").to_bytes(true);
        assert!(bytes.starts_with(b"HTTP/1.1 200 OK\r\nContent-Length: "));
    }
}
