//! Real headless Chromium (Debian's `chromium` and `chromium-driver`), driven over the
//! W3C WebDriver protocol: chromedriver on a port of its own, a fresh profile per
//! session, every name this machine's tests use mapped to 127.0.0.1, nothing reaching
//! the internet. `available()` says whether the browser is installed; the browser tests
//! decide what to do without it.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether Chromium and its driver are installed.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// A chromedriver process; each [`Chromium::session`] is a browser with its own profile.
pub struct Chromium {
    driver: Child,
    base: String,
}

impl Chromium {
    pub async fn start() -> crate::Result<Self> {
        let port = StdListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let this = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if let Ok(v) = this.call(Method::GET, "/status", None).await
                && v["value"]["ready"] == true
            {
                return Ok(this);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("chromedriver did not become ready".into())
    }

    /// A new browser: headless, a fresh profile in `profile`, `hosts` resolved to
    /// 127.0.0.1, untrusted test certificates accepted.
    pub async fn session(&self, profile: &Path, hosts: &[&str]) -> crate::Result<Session<'_>> {
        self.session_with(profile, hosts, &[]).await
    }

    /// [`Chromium::session`] with more command-line flags (`--force-dark-mode`: pages
    /// see `prefers-color-scheme: dark`).
    pub async fn session_with(
        &self,
        profile: &Path,
        hosts: &[&str],
        extra: &[&str],
    ) -> crate::Result<Session<'_>> {
        let rules: Vec<String> = hosts.iter().map(|h| format!("MAP {h} 127.0.0.1")).collect();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-popup-blocking".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--host-resolver-rules={}", rules.join(", ")),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let v = self.call(Method::POST, "/session", Some(caps)).await?;
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {v}"))?
            .to_owned();
        Ok(Session { driver: self, id })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> crate::Result<Value> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(bytes))?;
        let resp = tokio::time::timeout(Duration::from_secs(60), client.request(req)).await??;
        let body = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(e) = v["value"]["error"].as_str() {
            return Err(format!("webdriver {path}: {e}: {}", v["value"]["message"]).into());
        }
        Ok(v)
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.driver.start_kill();
    }
}

/// One browser window set, driven by CSS selectors.
pub struct Session<'a> {
    driver: &'a Chromium,
    id: String,
}

impl Session<'_> {
    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> crate::Result<Value> {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
            .await
    }

    pub async fn goto(&self, url: &str) -> crate::Result<()> {
        self.cmd(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    pub async fn url(&self) -> crate::Result<String> {
        let v = self.cmd(Method::GET, "/url", None).await?;
        Ok(v["value"].as_str().unwrap_or_default().to_owned())
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> crate::Result<String> {
        let v = self.cmd(Method::GET, "/source", None).await?;
        Ok(v["value"].as_str().unwrap_or_default().to_owned())
    }

    async fn element(&self, css: &str) -> crate::Result<String> {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        v["value"]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}").into())
    }

    /// Waits (at most `within`) until an element matches `css`.
    pub async fn wait_for(&self, css: &str, within: Duration) -> crate::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.element(css).await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    let page = self.source().await.unwrap_or_default();
                    return Err(format!("{e} within {within:?}; the page: {page}").into());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, css: &str) -> crate::Result<()> {
        // A page that is replaced between finding the element and clicking it (a
        // redirect landing, a re-render) makes the element stale: nothing was clicked,
        // so find it again on the page now shown.
        let mut attempt = 0;
        loop {
            let el = self.element(css).await?;
            let clicked = self
                .cmd(
                    Method::POST,
                    &format!("/element/{el}/click"),
                    Some(json!({})),
                )
                .await;
            match clicked {
                Err(e) if attempt < 5 && e.to_string().contains("stale element") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => return other.map(drop),
            }
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) -> crate::Result<()> {
        let el = self.element(css).await?;
        self.cmd(
            Method::POST,
            &format!("/element/{el}/clear"),
            Some(json!({})),
        )
        .await?;
        self.cmd(
            Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    /// Closes the current window (as a person closing a popup).
    pub async fn close_window(&self) -> crate::Result<()> {
        self.cmd(Method::DELETE, "/window", None).await.map(drop)
    }

    /// Accepts the page's `confirm()` dialog.
    pub async fn accept_dialog(&self) -> crate::Result<()> {
        self.cmd(Method::POST, "/alert/accept", Some(json!({})))
            .await
            .map(drop)
    }

    /// The handles of the session's windows (a popup is one more).
    pub async fn windows(&self) -> crate::Result<Vec<String>> {
        let v = self.cmd(Method::GET, "/window/handles", None).await?;
        Ok(v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect())
    }

    pub async fn window(&self) -> crate::Result<String> {
        let v = self.cmd(Method::GET, "/window", None).await?;
        Ok(v["value"].as_str().unwrap_or_default().to_owned())
    }

    pub async fn switch_to(&self, handle: &str) -> crate::Result<()> {
        self.cmd(Method::POST, "/window", Some(json!({ "handle": handle })))
            .await
            .map(drop)
    }

    /// Runs `script` (a function body) in the page; what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> crate::Result<Value> {
        let v = self
            .cmd(
                Method::POST,
                "/execute/sync",
                Some(json!({ "script": script, "args": args })),
            )
            .await?;
        Ok(v["value"].clone())
    }

    /// Runs `script` in the page; it calls its last argument with the result.
    pub async fn execute_async(&self, script: &str, args: Value) -> crate::Result<Value> {
        let v = self
            .cmd(
                Method::POST,
                "/execute/async",
                Some(json!({ "script": script, "args": args })),
            )
            .await?;
        Ok(v["value"].clone())
    }

    /// Sizes the window, as a desktop (1280) or a phone (420) would show the page.
    pub async fn resize(&self, width: u32, height: u32) -> crate::Result<()> {
        self.cmd(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(drop)
    }

    /// The page's WCAG 2.1 A and AA violations as axe-core (`axe_source`, its
    /// `axe.min.js`) finds them, one line each: rule, impact, what and where. Also fails
    /// the page when it scrolls sideways (content wider than the window).
    pub async fn accessibility_violations(&self, axe_source: &str) -> crate::Result<Vec<String>> {
        let loaded = self
            .execute(
                &format!("{axe_source}\n;return typeof window.axe === 'object';"),
                json!([]),
            )
            .await?;
        if loaded != Value::Bool(true) {
            return Err("axe-core did not load in the page".into());
        }
        let found = self
            .execute_async(
                r#"var done = arguments[arguments.length - 1];
                window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                  .then(function (r) {
                    done(r.violations.map(function (v) {
                      return v.id + ' (' + v.impact + '): ' + v.help + ' at ' +
                        v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');
                    }));
                  }, function (e) { done(['axe failed: ' + e]); });"#,
                json!([]),
            )
            .await?;
        let mut violations: Vec<String> = found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let sideways = self
            .execute(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
                json!([]),
            )
            .await?;
        if sideways == Value::Bool(true) {
            violations.push("the page scrolls sideways: something is wider than the window".into());
        }
        Ok(violations)
    }

    pub async fn close(self) -> crate::Result<()> {
        self.driver
            .call(Method::DELETE, &format!("/session/{}", self.id), None)
            .await
            .map(drop)
    }
}
