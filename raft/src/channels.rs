//! gRPC channels: one per peer address, connected lazily and reused by every caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// Deadline to establish a TCP connection to a node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Opens (lazily) a channel to `addr`: it connects on first use and reconnects by itself.
pub fn lazy_channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// A pool of one channel per peer address, shared by every user in the process.
#[derive(Clone, Default)]
pub struct Channels {
    by_addr: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Channels {
    /// The channel to `addr`, created on first use and reused after.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut map = self.by_addr.lock().expect("channel map poisoned");
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let c = lazy_channel(addr)?;
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}
