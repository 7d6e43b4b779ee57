//! egret's integration tests: one binary, real sockets on 127.0.0.1, real TLS, real
//! HTTP/1.1 and HTTP/2 clients. `suite/` holds one module per concern; `e2e` drives the
//! real `egret` binary with `curl -x`.

mod suite;
