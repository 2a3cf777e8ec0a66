//! Work spread over the machine's cores, for loading large policy sets: results in order,
//! a failure contained to its own items.

/// The policy count from which a set's tenants are checked and compiled on several threads
/// (below it, a thread costs more than it saves).
pub const PARALLEL_FROM_POLICIES: usize = 2_000;

/// How many threads the process may run at once.
#[must_use]
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The stack of each worker thread: a main thread's (the parser and the checks recurse once per
/// level of parentheses, bounded by the language, as on the thread that loads a small set).
const STACK_BYTES: usize = 8 * 1024 * 1024;

/// `f` of each item, in order, `None` for an item whose `f` panicked (a bug: the caller turns it
/// into an error; the panic does not cross into other items or take the process down). With
/// `parallel`, the items are shared between up to `available_parallelism` threads, each taking
/// the next item not yet taken when it is done with its last (items of unequal cost keep every
/// thread busy to the end); without, they run on the caller's thread.
pub fn map_contained<T: Sync, R: Send>(
    items: &[T],
    parallel: bool,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    // The core count is asked only for work worth spreading (asking reads the process's
    // limits from the system).
    let threads = if parallel && items.len() >= 2 {
        cores()
    } else {
        1
    };
    map_contained_on(items, threads, f)
}

/// [`map_contained`] on up to `threads` threads (one: on the caller's thread). When no thread
/// can start, the items run on the caller's thread; an item a thread took and lost (the thread
/// itself failed, outside `f`) is `None`, as a panic in `f` would be.
pub fn map_contained_on<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let one = |item: &T| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))).ok();
    if threads < 2 || items.len() < 2 {
        return items.iter().map(one).collect();
    }
    // Each thread takes the next item until none is left, keeping what it made with its place.
    let next = AtomicUsize::new(0);
    let work = || {
        let mut made = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(at) else { break };
            made.push((at, one(item)));
        }
        made
    };
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let mut place = |made: Vec<(usize, Option<R>)>| {
        for (at, r) in made {
            if let Some(slot) = out.get_mut(at) {
                *slot = r;
            }
        }
    };
    std::thread::scope(|scope| {
        let started: Vec<_> = (0..threads.min(items.len()))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .stack_size(STACK_BYTES)
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        if started.is_empty() {
            // No thread could start: the caller does the work.
            place(work());
        }
        for h in started {
            // A thread that failed outside `f` loses the items it took: they stay `None`.
            place(h.join().unwrap_or_default());
        }
    });
    out
}

/// Frees `old` on the process's retiring thread once no one else holds it: that thread keeps
/// one reference and drops the value when it is the last (a reader's drop then never frees it).
/// For values that take long to free — a replaced policy set of thousands of policies takes tens
/// of milliseconds — which no caller should wait for, a request that held the last reference
/// least of all. One thread serves the whole process, however many values wait on readers that
/// keep them; when it cannot start, `old` is dropped here.
pub fn retire<T: Send + Sync + 'static>(old: std::sync::Arc<T>) {
    let held: Held = old;
    match RETIRING.get_or_init(start_retiring) {
        // A send fails only when the thread is gone: the value comes back, and is dropped here.
        Some(to) => {
            if let Err(back) = to.send(held) {
                drop(back.0);
            }
        }
        None => drop(held),
    }
}

/// A value waiting to be freed.
type Held = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// Where [`retire`] sends values: the retiring thread, once started (`None`: it could not be).
static RETIRING: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Held>>> =
    std::sync::OnceLock::new();

/// Starts the retiring thread: it holds the values it is sent and drops each once it holds the
/// last reference, looking again after 1 ms, then twice as long each time up to 100 ms while
/// some wait, and sleeping while none does.
fn start_retiring() -> Option<std::sync::mpsc::Sender<Held>> {
    let (to, from) = std::sync::mpsc::channel::<Held>();
    let run = move || {
        let mut waiting: Vec<Held> = Vec::new();
        let first = std::time::Duration::from_millis(1);
        let mut wait = first;
        loop {
            let received = if waiting.is_empty() {
                from.recv().ok()
            } else {
                match from.recv_timeout(wait) {
                    Ok(v) => Some(v),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        // No sender is left (the process is ending): the values are freed as
                        // their readers let go.
                        return;
                    }
                }
            };
            match received {
                Some(v) => {
                    waiting.push(v);
                    wait = first;
                }
                None if waiting.is_empty() => return,
                None => wait = (wait * 2).min(std::time::Duration::from_millis(100)),
            }
            // A value only this thread holds is freed here, as it leaves the list.
            waiting.retain(|v| std::sync::Arc::strong_count(v) > 1);
        }
    };
    std::thread::Builder::new()
        .name(RETIRE_THREAD.into())
        .stack_size(STACK_BYTES)
        .spawn(run)
        .ok()
        .map(|_| to)
}

/// The name of the thread [`retire`] frees values on.
pub const RETIRE_THREAD: &str = "stepup-retire";

#[cfg(test)]
mod tests {
    use super::map_contained;

    /// A retired value is freed once its last other holder lets go, and on the retiring thread,
    /// not on the holder's.
    #[test]
    fn a_retired_value_is_freed_on_a_thread_of_its_own_after_its_last_reader() {
        use std::sync::{Arc, Mutex};
        type Freed = Vec<(Option<String>, std::thread::ThreadId)>;
        struct Probe(Arc<Mutex<Freed>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let here = std::thread::current();
                if let Ok(mut freed) = self.0.lock() {
                    freed.push((here.name().map(str::to_string), here.id()));
                }
            }
        }
        let freed = Arc::new(Mutex::new(Vec::new()));
        let value = Arc::new(Probe(Arc::clone(&freed)));
        let reader = Arc::clone(&value);
        super::retire(value);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            freed.lock().is_ok_and(|f| f.is_empty()),
            "freed while a reader held it"
        );
        // The reader lets go: its drop is not the last, the retiring thread's is.
        drop(reader);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while freed.lock().is_ok_and(|f| f.is_empty()) {
            assert!(
                std::time::Instant::now() < deadline,
                "a retired value was never freed"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let first = freed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(first.len(), 1, "freed once");
        assert_eq!(
            first.first().and_then(|(name, _)| name.as_deref()),
            Some(super::RETIRE_THREAD),
            "on the retiring thread"
        );
    }

    /// On threads or not, results come back in order and a panic loses its own item only.
    #[test]
    fn work_comes_back_in_order_and_a_panic_is_its_items_alone() {
        let items: Vec<u32> = (0..37).collect();
        for parallel in [true, false] {
            let out = map_contained(&items, parallel, |i| {
                assert!(
                    *i != 20,
                    "a panic on purpose: the test checks it is contained"
                );
                i * 2
            });
            let want: Vec<Option<u32>> =
                items.iter().map(|i| (*i != 20).then_some(i * 2)).collect();
            assert_eq!(out, want, "parallel: {parallel}");
            assert!(map_contained(&[] as &[u32], parallel, |i| *i).is_empty());
        }
    }

    /// On a given number of threads: one runs every item on the caller's thread; more keep
    /// the order and contain a panic to its item.
    #[test]
    fn work_on_a_given_number_of_threads_comes_back_in_order() {
        let items: Vec<u32> = (0..11).collect();
        let caller = std::thread::current().id();
        let on_caller =
            super::map_contained_on(&items, 1, |_| std::thread::current().id() == caller);
        assert!(
            on_caller.iter().all(|o| *o == Some(true)),
            "one thread: the caller's"
        );
        for threads in [2, 3, 64] {
            let out = super::map_contained_on(&items, threads, |i| {
                assert!(
                    *i != 7,
                    "a panic on purpose: the test checks it is contained"
                );
                i + 1
            });
            let want: Vec<Option<u32>> = items.iter().map(|i| (*i != 7).then_some(i + 1)).collect();
            assert_eq!(out, want, "threads: {threads}");
        }
    }

    /// A thread that is done takes the next item not yet taken: one slow item (here, the
    /// first, which waits until every other item is done) leaves the rest to the other
    /// thread. Cut into runs of consecutive items, the first item's run would wait on items
    /// behind it on its own thread, and the item would give up (`None`).
    #[test]
    fn a_slow_item_leaves_the_others_to_the_other_thread() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<usize> = (0..10).collect();
        let done = AtomicUsize::new(0);
        let out = super::map_contained_on(&items, 2, |i| {
            if *i == 0 {
                // A bounded wait, so that a regression fails the test instead of hanging it.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while done.load(Ordering::SeqCst) < items.len() - 1 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the other items waited behind the first"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
            i * 2
        });
        let want: Vec<Option<usize>> = items.iter().map(|i| Some(i * 2)).collect();
        assert_eq!(out, want);
    }
}
