//! The network faults on real namespaces: a link delayed through NFQUEUE shows the delay in a
//! TCP round trip, and healing removes it. Needs root, `ip` and iptables (scripts/test.sh
//! installs iptables).

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ticketd_chaos::net::Netns;

/// Runs `f` on a thread that has moved into network namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open the namespace");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// The smallest of five one-byte TCP round trips from node 1's namespace to `addr`.
fn min_rtt(net: &Netns, addr: String) -> Duration {
    in_ns(&net.namespace(1), move || {
        let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
            .expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut best = Duration::MAX;
        let mut b = [0u8; 1];
        for i in 0..5u8 {
            let t = Instant::now();
            s.write_all(&[i]).unwrap();
            s.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i);
            best = best.min(t.elapsed());
        }
        best
    })
}

#[test]
fn a_delayed_link_shows_its_delay_and_healing_removes_it() {
    let net = Netns::create([1, 2]).expect("network namespaces (needs root, ip and iptables)");
    let addr = format!("{}:7100", net.ip(2));
    let listener = {
        let addr = addr.clone();
        in_ns(&net.namespace(2), move || {
            TcpListener::bind(&addr).expect("bind in node 2")
        })
    };
    // An echo server: the socket stays in node 2's namespace whichever thread serves it.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            std::thread::spawn(move || {
                let mut b = [0u8; 1];
                while c.read_exact(&mut b).is_ok() && c.write_all(&b).is_ok() {}
            });
        }
    });

    let before = min_rtt(&net, addr.clone());
    assert!(
        before < Duration::from_millis(30),
        "undelayed rtt {before:?}"
    );

    net.delay_from(2, &[1], Duration::from_millis(60), Duration::ZERO, 7)
        .expect("delay node 1 -> node 2");
    let delayed = min_rtt(&net, addr.clone());
    assert!(
        delayed >= Duration::from_millis(60) && delayed < Duration::from_millis(500),
        "rtt with 60 ms on the way in: {delayed:?}"
    );

    net.heal().expect("heal");
    let after = min_rtt(&net, addr);
    assert!(after < Duration::from_millis(30), "healed rtt {after:?}");
    eprintln!("min rtt: {before:?} before, {delayed:?} delayed 60 ms, {after:?} healed");
}
