//! The matcher's heavy loops split over threads (rayon), with results that do not depend on how
//! many threads ran: the work is cut into fixed pieces and their results are kept in piece order.

use rayon::prelude::*;
use std::ops::Range;

/// The number of threads the matcher uses: what the machine offers.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Runs `work` on `0..n` cut into pieces of `piece` items, on up to `threads` threads, each with
/// scratch state made by `init` (once per thread and split of the work, not per piece). Returns
/// the pieces' results in piece order, whichever thread ran them.
pub(crate) fn map_pieces<S, T, I, F>(
    n: usize,
    piece: usize,
    threads: usize,
    init: I,
    work: F,
) -> Vec<T>
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, Range<usize>) -> T + Sync + Send,
{
    let piece = piece.max(1);
    let pieces = n.div_ceil(piece);
    let range = |p: usize| p * piece..((p + 1) * piece).min(n);
    let threads = threads.clamp(1, pieces.max(1));
    let sequential = || {
        let mut state = init();
        (0..pieces).map(|p| work(&mut state, range(p))).collect()
    };
    if threads == 1 {
        return sequential();
    }
    let parallel = || {
        (0..pieces)
            .into_par_iter()
            .map_init(&init, |state, p| work(state, range(p)))
            .collect()
    };
    if threads == rayon::current_num_threads() {
        return parallel();
    }
    // A thread count other than the global pool's (tests, callers that cap it): a pool of its own.
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(parallel),
        Err(_) => sequential(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_come_back_in_order_whatever_the_thread_count() {
        let one = map_pieces(1_000, 7, 1, || 0usize, |_, r| r.sum::<usize>());
        for threads in [2, 3, 8] {
            let many = map_pieces(
                1_000,
                7,
                threads,
                || 0usize,
                |calls, r| {
                    *calls += 1;
                    r.sum::<usize>()
                },
            );
            assert_eq!(many, one);
        }
        assert_eq!(one.len(), 143);
        assert_eq!(one.iter().sum::<usize>(), 999 * 1_000 / 2);
        assert!(map_pieces(0, 7, 4, || (), |_, r| r.len()).is_empty());
    }
}
