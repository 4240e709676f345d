//! The API's listener takes a burst of connections without dropping any: with nothing accepted
//! yet, 600 clients connecting at once all complete their handshake (the accept queue holds
//! them). With the default queue of 128, the connections past it had their SYNs dropped and
//! waited for the retransmit, one second later and then three.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connections_waits_in_the_accept_queue_instead_of_being_dropped() {
    let listener = ticketd_http::listen("127.0.0.1:0".parse().unwrap()).expect("listen");
    let addr = listener.local_addr().unwrap();
    let burst = 600;
    let connects: Vec<_> = (0..burst)
        .map(|_| {
            tokio::spawn(async move {
                // Well under the first SYN retransmit (1 s): a dropped SYN fails the connect.
                tokio::time::timeout(
                    Duration::from_millis(700),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
            })
        })
        .collect();
    let mut connected = Vec::new();
    let mut dropped = 0;
    for c in connects {
        match c.await.unwrap() {
            Ok(Ok(stream)) => connected.push(stream),
            _ => dropped += 1,
        }
    }
    assert_eq!(
        dropped, 0,
        "{dropped} of {burst} connections were not taken into the accept queue"
    );
    drop(listener);
}
