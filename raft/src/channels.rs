//! gRPC channels: one per peer address (and the node id expected there, when known), connected
//! lazily and reused by every caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::connector::Connector;
use crate::tls::Transport;
use crate::NodeId;

/// Deadline to establish a connection to a node, TLS handshake included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why no channel could be made.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The address is not `host:port`.
    #[error("bad node address {0:?}: {1}")]
    Address(String, String),
    /// The TLS material gave no client configuration.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Opens (lazily) a channel to `addr` over `transport`: it connects on first use and
/// reconnects by itself. Over TLS the node's certificate must name node `expected` when given
/// (any node of the cluster's CA otherwise).
pub fn lazy_channel(
    addr: &str,
    transport: &Transport,
    expected: Option<NodeId>,
) -> Result<Channel, ChannelError> {
    let tls = match transport {
        Transport::Insecure => None,
        Transport::Tls(creds) => Some(
            creds
                .client_config(expected)
                .map_err(|e| ChannelError::Tls(e.to_string()))?,
        ),
    };
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| ChannelError::Address(addr.to_string(), e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_with_connector_lazy(Connector::new(tls)))
}

/// A channel's key in the pool: the address, and the node expected there when known.
type ChannelKey = (String, Option<NodeId>);

/// A pool of one channel per peer address, shared by every user in the process.
#[derive(Clone)]
pub struct Channels {
    transport: Transport,
    by_addr: Arc<Mutex<HashMap<ChannelKey, Channel>>>,
}

impl Channels {
    /// An empty pool whose channels go over `transport`.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            by_addr: Arc::default(),
        }
    }

    /// The transport channels use.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The channel to any node at `addr`, created on first use and reused after.
    pub fn get(&self, addr: &str) -> Result<Channel, ChannelError> {
        self.channel(addr, None)
    }

    /// The channel to node `id` at `addr`: over TLS its certificate must name that node.
    pub fn get_node(&self, addr: &str, id: NodeId) -> Result<Channel, ChannelError> {
        self.channel(addr, Some(id))
    }

    fn channel(&self, addr: &str, expected: Option<NodeId>) -> Result<Channel, ChannelError> {
        let mut map = self.by_addr.lock().expect("channel map poisoned");
        let key = (addr.to_string(), expected);
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let c = lazy_channel(addr, &self.transport, expected)?;
        map.insert(key, c.clone());
        Ok(c)
    }
}
