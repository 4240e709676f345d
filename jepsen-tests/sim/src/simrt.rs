//! The simulation's async runtime: openraft's seeded [`DeterministicRng`] over tokio, with one
//! change: a watch channel that wakes its waiters in a fixed order.
//!
//! tokio's `watch` spreads waiters over 8 `Notify`s picked by tokio's thread-local RNG, which is
//! seeded at random unless tokio is built with `--cfg tokio_unstable`; waiters (openraft's
//! heartbeat workers, for one) then wake in a different order on every run and the simulation
//! stops being reproducible. This watch keeps one `Notify` (waiters wake in the order they
//! waited) and is otherwise the same contract.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use openraft::rt::deterministic_rng::DeterministicRng;
use openraft::rt::watch::{self, RecvError, SendError, Watch, WatchReceiver, WatchSender};
use openraft::rt::{AsyncRuntime, OptionalSend, OptionalSync};

type Inner = DeterministicRng<openraft::impls::TokioRuntime>;

/// [`DeterministicRng`] over tokio with an ordered watch channel.
#[derive(Debug)]
pub struct SimRt(Inner);

impl SimRt {
    /// Runs `f` with the simulation's seed in scope (what `block_on` does for openraft's RNG).
    pub fn scope<F: Future>(seed: u64, f: F) -> impl Future<Output = F::Output> {
        Inner::scope(seed, f)
    }
}

impl AsyncRuntime for SimRt {
    type JoinError = <Inner as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Inner as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Inner as AsyncRuntime>::Sleep;
    type Instant = <Inner as AsyncRuntime>::Instant;
    type TimeoutError = <Inner as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Inner as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = <Inner as AsyncRuntime>::ThreadLocalRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Inner::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Inner::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Inner::sleep_until(deadline)
    }

    fn timeout<R, F>(duration: Duration, future: F) -> Self::Timeout<R, F>
    where
        F: Future<Output = R> + OptionalSend,
    {
        Inner::timeout(duration, future)
    }

    fn timeout_at<R, F>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F>
    where
        F: Future<Output = R> + OptionalSend,
    {
        Inner::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Inner::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        Inner::thread_rng()
    }

    type Mpsc = <Inner as AsyncRuntime>::Mpsc;
    type Watch = OrderedWatch;
    type Oneshot = <Inner as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <Inner as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        SimRt(Inner::new(threads))
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.0.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Inner::spawn_blocking(f)
    }
}

/// A watch channel whose waiters wake in a fixed order.
pub struct OrderedWatch;

struct Shared<T> {
    value: RwLock<T>,
    version: AtomicU64,
    notify: tokio::sync::Notify,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

/// Sending half.
pub struct Sender<T>(Arc<Shared<T>>);

/// Receiving half.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::SeqCst);
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.notify.notify_waiters();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watch for OrderedWatch {
    type Sender<T: OptionalSend + OptionalSync> = Sender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = Receiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            version: AtomicU64::new(0),
            notify: tokio::sync::Notify::new(),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        });
        (Sender(shared.clone()), Receiver { shared, seen: 0 })
    }
}

impl<T: OptionalSend + OptionalSync> WatchSender<OrderedWatch, T> for Sender<T> {
    fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.0.receivers.load(Ordering::SeqCst) == 0 {
            return Err(SendError(value));
        }
        *self.0.value.write().expect("watch lock") = value;
        self.0.version.fetch_add(1, Ordering::SeqCst);
        self.0.notify.notify_waiters();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let modified = {
            let mut v = self.0.value.write().expect("watch lock");
            modify(&mut v)
        };
        if modified {
            self.0.version.fetch_add(1, Ordering::SeqCst);
            self.0.notify.notify_waiters();
        }
        modified
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.0.value.read().expect("watch lock")
    }

    fn subscribe(&self) -> Receiver<T> {
        self.0.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: self.0.clone(),
            seen: self.0.version.load(Ordering::SeqCst),
        }
    }
}

impl<T: OptionalSend + OptionalSync> WatchReceiver<OrderedWatch, T> for Receiver<T> {
    async fn changed(&mut self) -> Result<(), RecvError> {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let v = self.shared.version.load(Ordering::SeqCst);
            if v != self.seen {
                self.seen = v;
                return Ok(());
            }
            if self.shared.senders.load(Ordering::SeqCst) == 0 {
                return Err(RecvError(()));
            }
            notified.await;
        }
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.value.read().expect("watch lock")
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        let g = self.shared.value.read().expect("watch lock");
        self.seen = self.shared.version.load(Ordering::SeqCst);
        g
    }
}

#[allow(unused_imports)]
use watch as _;
