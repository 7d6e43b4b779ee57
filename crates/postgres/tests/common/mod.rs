//! A PostgreSQL database of its own for each test (`EGRET_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end.

#![allow(dead_code)]

use egret_postgres::PgStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of its own, dropped at the end.
pub struct Db {
    pub name: String,
    pub url: String,
}

pub fn admin<T>(f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let server =
        std::env::var("EGRET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("these tests need PostgreSQL at {server}: {e}"));
        tokio::spawn(connection);
        f(&client).await
    })
}

impl Db {
    pub fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("egret_s_{tag}_{}_{nanos}", std::process::id());
        admin(async |c| {
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database")
        });
        let server =
            std::env::var("EGRET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Self { name, url }
    }

    pub fn store(&self) -> PgStore {
        PgStore::connect(&self.url, None).expect("connect")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let name = self.name.clone();
        admin(async |c| {
            let _ = c
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        });
    }
}
