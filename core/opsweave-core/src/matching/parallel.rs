//! The matcher's heavy loops split over threads, with results that do not depend on how many
//! threads ran: the work is cut into fixed pieces and their results are put back in piece order.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The number of threads the matcher uses: what the machine offers.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Runs `work` on `0..n` cut into pieces of `piece` items, on up to `threads` threads that take
/// the next piece as they finish one, each with its own scratch state made by `init`. Returns
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
    I: Fn() -> S + Sync,
    F: Fn(&mut S, Range<usize>) -> T + Sync,
{
    let piece = piece.max(1);
    let pieces = n.div_ceil(piece);
    let range = |p: usize| p * piece..((p + 1) * piece).min(n);
    let threads = threads.clamp(1, pieces.max(1));
    if threads == 1 {
        let mut state = init();
        return (0..pieces).map(|p| work(&mut state, range(p))).collect();
    }
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut state = init();
                    let mut done = Vec::new();
                    loop {
                        let p = next.fetch_add(1, Ordering::Relaxed);
                        if p >= pieces {
                            return done;
                        }
                        done.push((p, work(&mut state, range(p))));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut slots: Vec<Option<T>> = (0..pieces).map(|_| None).collect();
    for (p, t) in done.into_iter().flatten() {
        slots[p] = Some(t);
    }
    slots.into_iter().flatten().collect()
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
