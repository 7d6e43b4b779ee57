//! A PostgreSQL database of its own for each test, on the server the README's test
//! command expects: `EGRET_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, trust auth). Each test creates a database
//! with a random name and drops it when done, so tests run in parallel.

use std::time::Duration;

use tokio_postgres::NoTls;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server the tests use (the admin connection's URL).
pub fn server_url() -> String {
    std::env::var("EGRET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

pub struct TestDb {
    /// The test's own database.
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = admin().await;
        let name = format!("egret_t_{}", random_suffix());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let config: tokio_postgres::Config = server_url().parse().expect("EGRET_TEST_DATABASE_URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|p| format!(":{}", String::from_utf8_lossy(p)))
            .unwrap_or_default();
        let url = format!("postgres://{user}{password}@{host}:{port}/{name}");
        Self { url, name }
    }

    /// A connection to the test's database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(connection);
        client
    }

    /// Ends the server side of every connection to the test's database whose
    /// application name matches `like` (`egret-listen` for egret's change listeners, `%`
    /// for all): what a database restart or a network cut does to egret's connections.
    /// Returns how many were ended.
    pub async fn terminate(&self, like: &str) -> i64 {
        let admin = admin().await;
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name LIKE $2",
                &[&self.name, &like],
            )
            .await
            .expect("terminate");
        row.get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // On a thread of its own: a test's runtime may be shutting down.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let Ok(Ok((client, connection))) = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio_postgres::connect(&server_url(), NoTls),
                )
                .await
                else {
                    return;
                };
                tokio::spawn(connection);
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
                )
                .await;
            });
        });
        let _ = dropped.join();
    }
}

pub async fn admin() -> tokio_postgres::Client {
    let url = server_url();
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("the replica tests need PostgreSQL at {url} (set EGRET_TEST_DATABASE_URL): {e}")
        });
    tokio::spawn(connection);
    client
}

fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}_{nanos}", std::process::id())
}

/// A TCP relay in front of the database that a test can cut and restore: what a
/// database going away (a crash, a failover, a network cut) does to egret, without
/// stopping the server other tests use.
pub struct Relay {
    pub port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays 127.0.0.1:(a free port) to the test server's host and port.
    pub async fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let config: tokio_postgres::Config = server_url().parse().expect("EGRET_TEST_DATABASE_URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let target = format!(
            "{host}:{}",
            config.get_ports().first().copied().unwrap_or(5432)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let port = listener.local_addr().expect("addr").port();
        let open = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (o, l) = (open.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    // Away: the connection is closed at once.
                    continue;
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().expect("links").push(link);
            }
        });
        Self {
            port,
            open,
            links,
            accept,
        }
    }

    /// `url` with its host and port replaced by the relay's.
    pub fn url_for(&self, db: &TestDb) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, db.name)
    }

    /// The database goes away: every relayed connection is closed and new ones are.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    /// It is back.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
