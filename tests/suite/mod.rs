mod common;
mod connect;
mod control;
mod e2e;
mod intercept;
mod lifecycle;
mod streaming;
mod websocket;
