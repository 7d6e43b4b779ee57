//! A request head kept to build the request again: step 8 swaps the sandbox's own head
//! again for a replay after a 401, and step 6 sends the same head again for a retry.

use http::request::Parts;
use http::{HeaderMap, Method, Request, Uri, Version};

pub(super) struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Head {
    /// The head of `parts`, taken (their extensions are not needed again).
    pub(super) fn of(parts: Parts) -> Self {
        Self {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
        }
    }

    /// A copy of the head of `parts`, which go on to be sent.
    pub(super) fn copy(parts: &Parts) -> Self {
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
        }
    }

    pub(super) fn method(&self) -> &Method {
        &self.method
    }

    pub(super) fn path(&self) -> &str {
        self.uri.path()
    }

    /// The head as request parts again, consumed.
    pub(super) fn into_parts(self) -> Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method;
        parts.uri = self.uri;
        parts.version = self.version;
        parts.headers = self.headers;
        parts
    }

    /// A new request with this head and `body`, the head kept for another.
    pub(super) fn request<B>(&self, body: B) -> Request<B> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}
