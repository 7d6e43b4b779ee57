//! Both planes on their listeners, stopped together: the one wiring that `egret serve`
//! and the test harness share, so the tests run what ships.

use std::sync::Arc;

use egret_proxy::Proxy;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ControlState;

pub struct Running {
    stop: watch::Sender<bool>,
    proxy: JoinHandle<()>,
    control: JoinHandle<std::io::Result<()>>,
    renewer: JoinHandle<()>,
}

impl Running {
    /// Spawns the proxy and the control plane; they run until [`Running::stop`].
    pub fn start(
        proxy: Arc<Proxy>,
        proxy_listener: TcpListener,
        control: Arc<ControlState>,
        control_listener: TcpListener,
    ) -> Self {
        let (stop, rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let proxy = tokio::spawn(egret_proxy::serve(
            proxy,
            proxy_listener,
            stopped(rx.clone()),
        ));
        let renewer = control.broker.spawn_background(egret_oauth::RENEW_EVERY);
        let control = tokio::spawn(crate::serve(control_listener, control, stopped(rx)));
        Self {
            stop,
            proxy,
            control,
            renewer,
        }
    }

    /// Stops accepting on both listeners and returns the proxy's drain, to await.
    pub fn begin_stop(self) -> JoinHandle<()> {
        let _ = self.stop.send(true);
        self.renewer.abort();
        // The control plane's requests are short; it ends on its own.
        drop(self.control);
        self.proxy
    }

    /// Stops both and waits for in-flight requests (bounded by the proxy's drain timeout).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.renewer.abort();
        let _ = self.proxy.await;
        let _ = self.control.await;
    }
}
