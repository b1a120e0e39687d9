//! OSCQuery's answers, pure: a request's method, path and query (as the transport read them,
//! [`super::server`]) and the namespace give a status and a JSON body.

use serde_json::{json, Value};

use super::namespace::Namespace;

/// What the transport read of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    pub method: &'a str,
    /// Percent-decoded (`/audio/bpm`).
    pub path: &'a str,
    /// The query string (`VALUE`, `HOST_INFO`), percent-decoded, if any.
    pub query: Option<&'a str>,
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

    pub fn error(status: u16, message: String) -> Response {
        Response {
            status,
            body: Some(json!({ "error": message })),
        }
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
pub fn answer(req: &Query, ns: &Namespace, host_info: &Value) -> Response {
    if req.method != "GET" && req.method != "HEAD" {
        return Response::error(
            405,
            format!("{} is not served: OSCQuery is GET", req.method),
        );
    }
    if req.query == Some("HOST_INFO") {
        return Response::json(host_info.clone());
    }
    let Some(node) = ns.node(req.path) else {
        return Response::error(404, format!("no OSC address or container {}", req.path));
    };
    match req.query {
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

    fn get<'a>(target: &'a str) -> Query<'a> {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        Query {
            method: "GET",
            path,
            query,
        }
    }

    #[test]
    fn answers_follow_the_oscquery_spec() {
        let mut ns = Namespace::default();
        let info = json!({"NAME": "t"});
        let ask = |ns: &Namespace, t: &str| answer(&get(t), ns, &info);
        assert_eq!(ask(&ns, "/?HOST_INFO").body, Some(info.clone()));
        assert_eq!(ask(&ns, "/audio/bpm?VALUE").status, 204, "no value yet");
        ns.record(&rosc::OscMessage {
            addr: "/audio/bpm".into(),
            args: vec![rosc::OscType::Float(120.0), rosc::OscType::Float(1.0)],
        });
        assert_eq!(
            ask(&ns, "/audio/bpm?VALUE").body,
            Some(json!({"VALUE": [120.0, 1.0]}))
        );
        assert_eq!(
            ask(&ns, "/audio/bpm?TYPE").body,
            Some(json!({"TYPE": "ff"}))
        );
        assert_eq!(ask(&ns, "/audio/nope").status, 404);
        assert_eq!(ask(&ns, "/audio/bpm?COLOR").status, 400);
        let post = Query {
            method: "POST",
            ..get("/")
        };
        assert_eq!(answer(&post, &ns, &info).status, 405);
    }
}
