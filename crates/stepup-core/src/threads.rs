//! Work spread over the machine's cores, for loading large policy sets: results in order,
//! a failure contained to its own items.

/// The stack of each worker thread: a main thread's (the parser and the checks recurse once per
/// level of parentheses, bounded by the language, as on the thread that loads a small set).
const STACK_BYTES: usize = 8 * 1024 * 1024;

/// `f` of each item, in order. The items are cut into up to `available_parallelism` runs of
/// consecutive items, each run on a thread of its own. `None` for each item of a run whose `f`
/// panicked; a run whose thread cannot start runs on the caller's thread.
pub fn map_on_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    let run = move |chunk: &[T]| chunk.iter().map(f).collect::<Vec<R>>();
    std::thread::scope(|scope| {
        let runs: Vec<_> = items
            .chunks(per)
            .map(|chunk| {
                let thread = std::thread::Builder::new().stack_size(STACK_BYTES);
                (chunk, thread.spawn_scoped(scope, move || run(chunk)))
            })
            .collect();
        runs.into_iter()
            .flat_map(|(chunk, h)| match h {
                Ok(h) => match h.join() {
                    Ok(rs) => rs.into_iter().map(Some).collect(),
                    Err(_) => chunk.iter().map(|_| None).collect(),
                },
                Err(_) => run(chunk).into_iter().map(Some).collect::<Vec<_>>(),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::map_on_threads;

    #[test]
    fn work_on_threads_comes_back_in_order_and_a_panic_stays_in_its_run() {
        let items: Vec<u32> = (0..37).collect();
        let out = map_on_threads(&items, |i| {
            assert!(
                *i != 20,
                "a panic on purpose: the test checks it is contained"
            );
            i * 2
        });
        assert_eq!(out.len(), 37);
        for (i, r) in out.iter().enumerate() {
            // A panic loses its whole run (the items of that thread), never another's.
            if let Some(v) = r {
                assert_eq!(*v as usize, i * 2);
            }
        }
        assert_eq!(out.get(20), Some(&None));
        assert!(out.iter().filter(|r| r.is_some()).count() >= 37 / 2);
        assert!(map_on_threads(&[] as &[u32], |i| *i).is_empty());
    }
}
