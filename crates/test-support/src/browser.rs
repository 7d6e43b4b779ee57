//! A small browser for OAuth tests: HTTP/1.1 over TLS (trusting a given CA) or plain
//! TCP, a cookie jar, redirects followed, and the first form of a page submitted — what
//! a person clicking "Sign in" and "Allow" does. Every `*.test.local` and `127.0.0.1`
//! name is dialled on 127.0.0.1 at the URL's port.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One answer, with the URL it came from.
#[derive(Debug, Clone)]
pub struct Page {
    pub url: String,
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

/// Which button a user presses on the vendor's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    Allow,
    Deny,
}

pub struct Browser {
    ca_pem: String,
    cookies: BTreeMap<String, String>,
    /// The account the vendor's login form is filled with.
    login: String,
}

impl Browser {
    pub fn new(ca_pem: &str) -> Self {
        Self {
            ca_pem: ca_pem.to_owned(),
            cookies: BTreeMap::new(),
            login: "alice".to_owned(),
        }
    }

    /// Signs in at the vendor as `login` instead of `alice`.
    pub fn login_as(mut self, login: &str) -> Self {
        self.login = login.to_owned();
        self
    }

    /// Sends one request (no redirect following), keeping cookies.
    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> crate::Result<Page> {
        let uri: Uri = url.parse()?;
        let host = uri.host().ok_or("URL without host")?.to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header(
                http::header::HOST,
                uri.authority().ok_or("no authority")?.as_str(),
            );
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            builder = builder.header(http::header::COOKIE, jar.join("; "));
        }
        let body = match form {
            Some(fields) => {
                builder = builder.header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                // As a browser posting a page's form to that page's own site.
                let origin = format!(
                    "{}://{}",
                    uri.scheme_str().unwrap_or("http"),
                    uri.authority().ok_or("no authority")?.as_str()
                );
                builder = builder.header(http::header::ORIGIN, origin);
                let encoded: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect();
                Bytes::from(encoded.join("&"))
            }
            None => Bytes::new(),
        };
        let req = builder.body(Full::new(body))?;
        let resp = if https {
            let tls = crate::client::tls(tcp, &host, &self.ca_pem, &[b"http/1.1"]).await?;
            send(TokioIo::new(tls), req).await?
        } else {
            send(TokioIo::new(tcp), req).await?
        };
        for v in resp.headers().get_all(http::header::SET_COOKIE) {
            let text = v.to_str()?;
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies
                    .insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| absolute(&uri, l));
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Page {
            url: url.to_owned(),
            status,
            location,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// GET `url` and follow redirects (at most 20).
    pub async fn open(&mut self, url: &str) -> crate::Result<Page> {
        let page = self.request(Method::GET, url, None).await?;
        self.follow(page).await
    }

    pub async fn follow(&mut self, mut page: Page) -> crate::Result<Page> {
        for _ in 0..20 {
            match (&page.location, page.status.is_redirection()) {
                (Some(next), true) => {
                    let next = next.clone();
                    page = self.request(Method::GET, &next, None).await?;
                }
                _ => return Ok(page),
            }
        }
        Err("too many redirects".into())
    }

    /// Opens a sign-in link (egret's start link, or the vendor's URL); on egret's page
    /// that names the connector and the owner, presses Continue. The page reached.
    pub async fn open_sign_in(&mut self, url: &str) -> crate::Result<Page> {
        let page = self.open(url).await?;
        self.press_continue(page).await
    }

    /// On egret's sign-in page (`/oauth/start`), submits its form; any other page is
    /// returned as it is.
    pub async fn press_continue(&mut self, page: Page) -> crate::Result<Page> {
        if !is_sign_in_page(&page) {
            return Ok(page);
        }
        let posted = self.submit_continue(&page).await?;
        self.follow(posted).await
    }

    /// Opens egret's sign-in link and presses Continue, stopping at the redirect to the
    /// vendor: returns the vendor's URL, unopened.
    pub async fn continue_to_vendor(&mut self, start: &str) -> crate::Result<String> {
        let page = self.open(start).await?;
        if !is_sign_in_page(&page) {
            return Err(
                format!("not egret's sign-in page ({}): {}", page.status, page.body).into(),
            );
        }
        let posted = self.submit_continue(&page).await?;
        match (posted.status, posted.location) {
            (StatusCode::SEE_OTHER, Some(vendor)) => Ok(vendor),
            (status, _) => Err(format!("Continue answered {status}: {}", posted.body).into()),
        }
    }

    /// Posts the sign-in page's form (its hidden fields), unfollowed.
    async fn submit_continue(&mut self, page: &Page) -> crate::Result<Page> {
        let fields = hidden_inputs(&page.body);
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let target = absolute(&page.url.parse()?, "/oauth/start");
        self.request(Method::POST, &target, Some(&form)).await
    }

    /// Opens a sign-in link (egret's start link, or the vendor's URL) and submits the
    /// vendor's forms (Allow: each page's first form; Deny: the form whose action ends
    /// in `/deny`) until a page from another origin than the vendor's answers: the
    /// redirect URI's.
    pub async fn authorize(&mut self, url: &str, choice: Choice) -> crate::Result<Page> {
        let mut page = self.open_sign_in(url).await?;
        // Where the redirects landed is the vendor (egret's start link sends it on).
        let vendor = origin(&page.url)?;
        for _ in 0..5 {
            if origin(&page.url)? != vendor {
                return Ok(page);
            }
            let action = form_action(&page.body, choice).ok_or_else(|| {
                format!("no form on {} ({}): {}", page.url, page.status, page.body)
            })?;
            let target = absolute(&page.url.parse()?, &action);
            let login = self.login.clone();
            let posted = self
                .request(Method::POST, &target, Some(&[("login", login.as_str())]))
                .await?;
            page = self.follow(posted).await?;
        }
        Err(format!("the sign-in did not end: {page:?}").into())
    }
}

impl Browser {
    /// As [`Self::authorize`], but stops at the vendor's redirect back to the redirect
    /// URI and returns that URL (with its code and state) unopened: a test may deliver
    /// it elsewhere (to another replica behind the same address).
    pub async fn authorize_to_callback(
        &mut self,
        url: &str,
        choice: Choice,
    ) -> crate::Result<String> {
        let mut page = self.open_sign_in(url).await?;
        let vendor = origin(&page.url)?;
        for _ in 0..5 {
            let action = form_action(&page.body, choice).ok_or_else(|| {
                format!("no form on {} ({}): {}", page.url, page.status, page.body)
            })?;
            let target = absolute(&page.url.parse()?, &action);
            let login = self.login.clone();
            let mut next = self
                .request(Method::POST, &target, Some(&[("login", login.as_str())]))
                .await?;
            for _ in 0..20 {
                let Some(location) = next
                    .location
                    .clone()
                    .filter(|_| next.status.is_redirection())
                else {
                    break;
                };
                let location = absolute(&next.url.parse()?, &location);
                if origin(&location)? != vendor {
                    return Ok(location);
                }
                next = self.request(Method::GET, &location, None).await?;
            }
            page = next;
        }
        Err(format!("the sign-in did not end: {page:?}").into())
    }
}

async fn send<T>(
    io: TokioIo<T>,
    req: Request<Full<Bytes>>,
) -> crate::Result<http::Response<hyper::body::Incoming>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

fn form_action(html: &str, choice: Choice) -> Option<String> {
    html.split("<form").skip(1).find_map(|form| {
        let rest = &form[form.find("action=\"")? + 8..];
        let action = &rest[..rest.find('"')?];
        let deny = action.ends_with("/deny");
        (deny == (choice == Choice::Deny)).then(|| action.to_owned())
    })
}

fn is_sign_in_page(page: &Page) -> bool {
    page.body.contains("action=\"/oauth/start\"")
}

/// The `name`/`value` of each `<input type="hidden">` in `html`, HTML entities decoded.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| {
            let attr = |name: &str| {
                let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
                let rest = &tag[start..];
                Some(unescape(&rest[..rest.find('"')?]))
            };
            Some((attr("name")?, attr("value")?))
        })
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn origin(url: &str) -> crate::Result<String> {
    let uri: Uri = url.parse()?;
    Ok(format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    ))
}

/// Resolves a `Location` or form action against the page it came from.
fn absolute(base: &Uri, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        return target.to_owned();
    }
    format!(
        "{}://{}{}",
        base.scheme_str().unwrap_or("http"),
        base.authority().map_or("", |a| a.as_str()),
        target
    )
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query parameter of a URL, decoded (`+` and `%XX`).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
