//! The distance the graphs walk by: unit vectors compared by their dot product, computed with
//! the widest vector instructions the CPU has (picked at run time).
//!
//! usearch's own cosine either targets baseline x86-64 (built without its SIMD kernels) or, with
//! them, accumulates in f64 on a single dependency chain; on 384 dimensions this kernel made the
//! whole graph walk about twice as fast (docs/benchmarks.md, "Distance kernel"). f16 graphs widen
//! their halves to f32 a block at a time (the `half` crate, F16C when the CPU has it) first.
//!
//! Unsafe here (one of the crate's three places, with `ingest::with_connection` and
//! `flat::advise_huge_pages`): usearch hands a custom metric two raw pointers, the vector
//! instructions are only callable after checking the CPU has them, and the flat walk reads its
//! 8-bit vectors out of a byte array and prefetches.
#![allow(unsafe_code)]

use half::slice::HalfFloatSliceExt;
use usearch::Index;

/// The dot product of two equally long slices.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above), all `dot_avx512` asks for.
            return unsafe { dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked above), all `dot_avx2` asks for.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

/// Makes `index` (of `dim` f32 scalars holding unit vectors) measure `1 − a·b`, which for unit
/// vectors is the cosine distance usearch would otherwise compute from three sums.
pub(crate) fn use_unit_dot(index: &mut Index, dim: usize) {
    index.change_metric::<f32>(Box::new(move |a: *const f32, b: *const f32| {
        // SAFETY: usearch calls the metric with pointers to two vectors in the index's own scalar
        // kind and dimensions; callers install this only on an f32 index of `dim` dimensions, and
        // usearch keeps both vectors alive and unchanged for the call.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, dim),
                std::slice::from_raw_parts(b, dim),
            )
        };
        1.0 - dot(a, b)
    }));
}

/// The same as [`use_unit_dot`] for an index of `dim` f16 scalars.
pub(crate) fn use_unit_dot_f16(index: &mut Index, dim: usize) {
    index.change_metric::<usearch::f16>(Box::new(
        move |a: *const usearch::f16, b: *const usearch::f16| {
            // SAFETY: as in `use_unit_dot`, on an f16 index of `dim` dimensions; `usearch::f16`
            // and `half::f16` are both a transparent 16-bit IEEE half, valid for any bits.
            let (a, b) = unsafe {
                (
                    std::slice::from_raw_parts(a.cast::<half::f16>(), dim),
                    std::slice::from_raw_parts(b.cast::<half::f16>(), dim),
                )
            };
            1.0 - dot_f16(a, b)
        },
    ));
}

/// The dot product of two equally long f16 slices, widened to f32 a block at a time.
pub(crate) fn dot_f16(a: &[half::f16], b: &[half::f16]) -> f32 {
    // Long enough that the per-call dispatch of the conversion and of `dot` is amortised.
    const BLOCK: usize = 256;
    let (mut wide_a, mut wide_b) = ([0f32; BLOCK], [0f32; BLOCK]);
    let mut total = 0.0;
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let (wide_a, wide_b) = (&mut wide_a[..a.len()], &mut wide_b[..b.len()]);
        a.convert_to_f32_slice(wide_a);
        b.convert_to_f32_slice(wide_b);
        total += dot(wide_a, wide_b);
    }
    total
}

/// Bytes after a quantized vector's components: its scale, an f32 in little-endian order.
pub(crate) const SCALE_BYTES: usize = 4;

/// A unit vector as 8-bit integers for a quantized graph: each component divided by the vector's
/// own scale (its largest magnitude over 127, so the widest component uses the whole range),
/// rounded, then the scale itself in [`SCALE_BYTES`] more. One scale per vector rather than one
/// for all keeps small vectors' precision; the metric multiplies the two scales back in.
pub(crate) fn quantize(unit: &[f32]) -> Vec<i8> {
    let widest = unit.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if widest > 0.0 && widest.is_finite() {
        widest / 127.0
    } else {
        0.0
    };
    let mut out: Vec<i8> = Vec::with_capacity(unit.len() + SCALE_BYTES);
    out.extend(unit.iter().map(|x| {
        if scale > 0.0 {
            // In [-127, 127] by the choice of scale; `as` saturates anyway.
            (x / scale).round() as i8
        } else {
            0
        }
    }));
    out.extend(scale.to_le_bytes().map(|b| b as i8));
    out
}

/// The dot product of two vectors [`quantize`] made, `dim` components each.
pub(crate) fn dot_quantized(a: &[i8], b: &[i8], dim: usize) -> f32 {
    let (a, a_scale) = a.split_at(dim);
    let (b, b_scale) = b.split_at(dim);
    dot_i8(a, b) as f32 * scale_of(a_scale) * scale_of(b_scale)
}

/// The scale stored after a quantized vector's components.
fn scale_of(bytes: &[i8]) -> f32 {
    f32::from_le_bytes([
        bytes[0] as u8,
        bytes[1] as u8,
        bytes[2] as u8,
        bytes[3] as u8,
    ])
}

/// The dot product of two equally long i8 slices, exact in i32: |127 · 127| · 130,000 components
/// still fits.
pub(crate) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has AVX-512BW (checked above), all `dot_i8_avx512` asks for.
            return unsafe { dot_i8_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked above), all `dot_i8_avx2` asks for.
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_plain(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dot_i8_avx512(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_plain(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_plain(a, b)
}

/// Widened products summed in i32: an integer sum may be reordered, so the compiler vectorises
/// this loop as it is (sign-extend, multiply-add pairs).
#[inline(always)]
fn dot_i8_plain(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum()
}

/// Makes `index` (of `dim` + [`SCALE_BYTES`] i8 scalars, each vector made by [`quantize`])
/// measure `1 − a·b` from the integers and the two scales.
pub(crate) fn use_quantized_dot(index: &mut Index, dim: usize) {
    index.change_metric::<i8>(Box::new(move |a: *const i8, b: *const i8| {
        // SAFETY: as in `use_unit_dot`, on an i8 index of `dim + SCALE_BYTES` dimensions.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, dim + SCALE_BYTES),
                std::slice::from_raw_parts(b, dim + SCALE_BYTES),
            )
        };
        1.0 - dot_quantized(a, b, dim)
    }));
}

/// `bytes` read as the 8-bit integers they hold.
pub(crate) fn as_i8(bytes: &[u8]) -> &[i8] {
    // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid for
    // both; the result borrows `bytes` for as long.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
}

/// Asks the CPU to bring the cache lines holding `bytes` in ahead of a read (a hint: it never
/// faults, and does nothing on other architectures).
pub(crate) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = bytes.as_ptr() as usize & !63;
        let end = bytes.as_ptr() as usize + bytes.len();
        for line in (start..end).step_by(64) {
            // SAFETY: a prefetch reads nothing and cannot fault, whatever the address; SSE is
            // part of x86-64.
            unsafe {
                std::arch::x86_64::_mm_prefetch(line as *const i8, std::arch::x86_64::_MM_HINT_T0)
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// Scales `vector` to length 1 (a zero vector stays zero, at distance 1 from everything).
pub(crate) fn normalise(vector: &mut [f32]) {
    let norm = dot(vector, vector).sqrt();
    if norm > 0.0 && norm.is_finite() {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

/// Thirty-two partial sums, which the compiler keeps in two (AVX-512) or four (AVX2) vector
/// registers: a single running sum must be added in order and is not vectorised.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    sum_pairwise(lanes) + tail
}

/// Adds the lanes pairwise. Kept out of line: inlined, it led the compiler to split the main
/// loop into 64-bit pieces with spills (seen in the assembly).
#[inline(never)]
fn sum_pairwise<const LANES: usize>(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_products_of_any_length_on_every_path() {
        for n in [0, 1, 7, 8, 31, 32, 33, 384, 1024, 1031] {
            let a: Vec<f32> = (0..n).map(|i| (i % 17) as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - (i % 11) as f32 * 0.25).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let close = |got: f32| (got as f64 - plain).abs() <= 1e-4 * plain.abs().max(1.0);
            assert!(close(dot(&a, &b)), "dispatched, n = {n}");
            assert!(close(dot_lanes(&a, &b)), "portable, n = {n}");
        }
    }

    #[test]
    fn f16_dot_products_match_the_widened_values() {
        for n in [0, 1, 255, 256, 257, 1024, 1031] {
            let a: Vec<half::f16> = (0..n)
                .map(|i| half::f16::from_f32((i % 13) as f32 * 0.25 - 1.5))
                .collect();
            let b: Vec<half::f16> = (0..n)
                .map(|i| half::f16::from_f32(0.5 - (i % 7) as f32 * 0.125))
                .collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| x.to_f64() * y.to_f64()).sum();
            let got = dot_f16(&a, &b) as f64;
            assert!(
                (got - plain).abs() <= 1e-4 * plain.abs().max(1.0),
                "n = {n}"
            );
        }
    }

    #[test]
    fn i8_dot_products_are_exact_on_every_path() {
        for n in [0, 1, 31, 32, 33, 64, 384, 1031] {
            let a: Vec<i8> = (0..n)
                .map(|i| (i * 37) % 255 - 127)
                .map(|x| x as i8)
                .collect();
            let b: Vec<i8> = (0..n)
                .map(|i| 127 - (i * 11) % 255)
                .map(|x| x as i8)
                .collect();
            let plain: i64 = a.iter().zip(&b).map(|(x, y)| *x as i64 * *y as i64).sum();
            assert_eq!(dot_i8(&a, &b) as i64, plain, "dispatched, n = {n}");
            assert_eq!(dot_i8_plain(&a, &b) as i64, plain, "portable, n = {n}");
        }
    }

    #[test]
    fn quantized_dot_products_stay_close_to_the_exact_ones() {
        let unit = |seed: f32| {
            let mut v: Vec<f32> = (0..384).map(|i| (seed * 0.37 * i as f32).sin()).collect();
            normalise(&mut v);
            v
        };
        let mut worst = 0f32;
        for i in 1..40 {
            let (a, b) = (unit(i as f32), unit(i as f32 + 0.5));
            let (qa, qb) = (quantize(&a), quantize(&b));
            assert_eq!(qa.len(), 384 + SCALE_BYTES);
            worst = worst.max((dot_quantized(&qa, &qb, 384) - dot(&a, &b)).abs());
            // A vector with itself: its length, 1, to the rounding.
            assert!((dot_quantized(&qa, &qa, 384) - 1.0).abs() < 2e-3);
        }
        assert!(worst < 2e-3, "worst error {worst}");
        // A zero vector quantizes to zeros (scale 0) and is at distance 1 from everything.
        let zero = quantize(&[0.0; 8]);
        assert!(zero.iter().all(|x| *x == 0));
        assert_eq!(dot_quantized(&zero, &quantize(&unit(1.0)[..8]), 8), 0.0);
    }

    #[test]
    fn normalised_vectors_have_length_one_and_zero_stays_zero() {
        let mut v = vec![3.0f32, 4.0, 0.0];
        normalise(&mut v);
        assert_eq!(v, vec![0.6, 0.8, 0.0]);
        let mut zero = vec![0f32; 5];
        normalise(&mut zero);
        assert_eq!(zero, vec![0f32; 5]);
    }

    #[test]
    fn the_unit_dot_metrics_order_like_cosine() {
        use usearch::{IndexOptions, MetricKind, ScalarKind};
        for quantization in [ScalarKind::F32, ScalarKind::F16] {
            let options = IndexOptions {
                dimensions: 40,
                metric: MetricKind::Cos,
                quantization,
                ..Default::default()
            };
            let mut index = Index::new(&options).expect("index");
            if quantization == ScalarKind::F32 {
                use_unit_dot(&mut index, 40);
            } else {
                use_unit_dot_f16(&mut index, 40);
            }
            index.reserve(64).expect("reserve");
            let mut vectors = Vec::new();
            for key in 0..50u64 {
                // Distinct directions: a different frequency per key.
                let mut v: Vec<f32> = (0..40)
                    .map(|i| ((key + 1) as f32 * 0.37 * i as f32).sin())
                    .collect();
                normalise(&mut v);
                index.add(key, &v).expect("add");
                vectors.push(v);
            }
            // f16 storage rounds each component to about 3 decimal digits.
            let tolerance = if quantization == ScalarKind::F32 {
                1e-5
            } else {
                2e-3
            };
            let query = vectors[17].clone();
            let found = index.search(&query, 5).expect("search");
            assert_eq!(found.keys[0], 17, "{quantization:?}");
            assert!(
                found.distances[0].abs() < tolerance,
                "{:?}",
                found.distances
            );
            for (key, distance) in found.keys.iter().zip(&found.distances) {
                let cosine = dot(&query, &vectors[*key as usize]);
                assert!(
                    (distance - (1.0 - cosine)).abs() < tolerance,
                    "{quantization:?}"
                );
            }
        }
    }
}
