//! A fixed loopback address in front of a server that dies and comes back
//! elsewhere (a restarted moto server gets a new port, and must re-run its
//! recording before anyone else talks to it). Bytes pass through
//! unchanged. `cut` makes the address dead as a killed process's is:
//! connections refused, open ones closed. `restore` serves again. Shared
//! through `#[path]`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

pub struct Front {
    pub url: String,
    addr: SocketAddr,
    /// The accept loop and every open connection.
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.cut();
    }
}

impl Front {
    pub async fn start(upstream: &str) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let front = Front {
            url: format!("http://{addr}"),
            addr,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        front.serve(listener, upstream);
        front
    }

    /// The address goes dead: new connections are refused, open ones cut.
    pub fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Serves again, passing connections to `upstream` (`http://host:port`).
    pub async fn restore(&self, upstream: &str) {
        self.cut();
        for _ in 0..100 {
            if let Ok(listener) = tokio::net::TcpListener::bind(self.addr).await {
                return self.serve(listener, upstream);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("could not listen on {} again", self.addr);
    }

    fn serve(&self, listener: tokio::net::TcpListener, upstream: &str) {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                let mut t = tasks.lock().unwrap();
                t.retain(|h| !h.is_finished());
                t.push(conn.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }
}
