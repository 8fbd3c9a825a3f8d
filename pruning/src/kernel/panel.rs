//! The dense operand cut into column panels, and where results are written.
//!
//! A sparse × dense product `C[M, N] = A[M, K] · B[K, N]` is computed one column panel of `B` at a
//! time: `W` columns (`W` = 64, 32, 16 or 8) whose `K` rows are each `W` contiguous floats, so the
//! accumulators of one output row fit in vector registers and the panel (`K·W·4` bytes, 512 KiB
//! for `K = 2048, W = 64`) stays in the core's L2 cache while all rows of `A` stream past it.
//! Panels are read in place when `B` is row-major and the panel is full; otherwise (the
//! transposed activations of a linear layer, or a ragged last panel) they are packed once into a
//! zero-padded buffer.

use rayon::prelude::*;

/// Panel widths the micro-kernels are compiled for, widest first.
pub(crate) const WIDTHS: [usize; 4] = [64, 32, 16, 8];

/// One column panel of the dense operand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Panel {
    /// First column of the panel in `B` (and in `C`).
    pub(crate) start: usize,
    /// Valid columns (`<= width`).
    pub(crate) valid: usize,
    /// The micro-kernel width, one of [`WIDTHS`].
    pub(crate) width: usize,
}

/// Cuts `n` columns into panels: as many 64-wide as fit, then 32, 16 and 8, and a last partial
/// panel of width 8 for the remaining `1..8` columns.
pub(crate) fn plan_panels(n: usize) -> Vec<Panel> {
    let mut panels = Vec::new();
    let mut start = 0;
    for width in WIDTHS {
        while n - start >= width {
            panels.push(Panel {
                start,
                valid: width,
                width,
            });
            start += width;
        }
    }
    if start < n {
        panels.push(Panel {
            start,
            valid: n - start,
            width: WIDTHS[WIDTHS.len() - 1],
        });
    }
    panels
}

/// A panel's rows in memory: row `k` is `base[k * stride .. k * stride + width]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PanelData<'a> {
    pub(crate) base: &'a [f32],
    pub(crate) stride: usize,
}

/// Packs panel `p` of the transpose of `x[rows_x, k]` (row-major): row `kk` of the panel holds
/// `x[p.start + t][kk]` for `t < p.valid`, zeros up to `p.width`. `out` has `k · p.width` floats.
pub(crate) fn pack_transposed(x: &[f32], k: usize, p: Panel, out: &mut [f32]) {
    const TILE: usize = 64;
    debug_assert_eq!(out.len(), k * p.width);
    // Tiles of TILE input columns keep the strided writes within an L1-resident block.
    out.par_chunks_mut(TILE * p.width)
        .enumerate()
        .for_each(|(tile, block)| {
            let k0 = tile * TILE;
            let kn = block.len() / p.width;
            block.fill(0.0);
            for t in 0..p.valid {
                let src = &x[(p.start + t) * k + k0..(p.start + t) * k + k0 + kn];
                for (kk, &v) in src.iter().enumerate() {
                    block[kk * p.width + t] = v;
                }
            }
        });
}

/// Packs panel `p` of a row-major `b[k, n]` into a zero-padded `[k, p.width]` buffer (used for a
/// ragged last panel only).
pub(crate) fn pack_columns(b: &[f32], k: usize, n: usize, p: Panel, out: &mut [f32]) {
    debug_assert_eq!(out.len(), k * p.width);
    for (kk, row) in out.chunks_exact_mut(p.width).enumerate() {
        row[..p.valid].copy_from_slice(&b[kk * n + p.start..kk * n + p.start + p.valid]);
        row[p.valid..].fill(0.0);
    }
}

/// The buffer packed panels live in. On Linux, buffers of at least [`HUGE_PAGE`] are aligned to a
/// 2 MiB boundary and advised as transparent huge pages (`MADV_HUGEPAGE`): the micro-kernel reads
/// panel rows in random order, and with 4 KiB pages a 512 KiB panel spans more pages than the
/// first-level TLB holds.
pub(crate) struct PackBuffer {
    ptr: *mut f32,
    len: usize,
    layout: Option<std::alloc::Layout>,
}

/// Size and alignment of a transparent huge page on x86-64 and aarch64 Linux.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

impl PackBuffer {
    /// A zero-filled buffer of `len` floats.
    pub(crate) fn new(len: usize) -> Self {
        let bytes = len * size_of::<f32>();
        if bytes == 0 {
            return Self {
                ptr: std::ptr::NonNull::dangling().as_ptr(),
                len,
                layout: None,
            };
        }
        let align = if bytes >= HUGE_PAGE / 2 {
            HUGE_PAGE
        } else {
            64
        };
        let size = bytes.div_ceil(align) * align;
        let layout = std::alloc::Layout::from_size_align(size, align).expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<f32>();
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        #[cfg(target_os = "linux")]
        if align == HUGE_PAGE {
            // SAFETY: the range is a live allocation we own; the advice is only a hint.
            unsafe { libc::madvise(ptr.cast(), size, libc::MADV_HUGEPAGE) };
        }
        Self {
            ptr,
            len,
            layout: Some(layout),
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: `ptr` holds `len` initialised (zeroed at allocation) floats, and `&mut self` is
        // unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

thread_local! {
    /// The last pack buffer of this thread, kept for the next call: allocating and faulting in a
    /// fresh huge page on every call costs about as much as a small product.
    static CACHED: std::cell::RefCell<Option<PackBuffer>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with a buffer of at least `len` floats (contents unspecified), reusing this thread's
/// cached buffer when it is large enough and not already in use (a nested call, e.g. from a rayon
/// task stolen while waiting, gets a fresh one).
pub(crate) fn with_pack_buffer<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let taken = CACHED.with(|cell| cell.try_borrow_mut().ok().and_then(|mut c| c.take()));
    let mut buffer = match taken {
        Some(b) if b.len >= len => b,
        _ => PackBuffer::new(len),
    };
    let result = f(&mut buffer.as_mut_slice()[..len]);
    CACHED.with(|cell| {
        if let Ok(mut c) = cell.try_borrow_mut() {
            *c = Some(buffer);
        }
    });
    result
}

impl Drop for PackBuffer {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated with this layout in `new`.
            unsafe { std::alloc::dealloc(self.ptr.cast(), layout) };
        }
    }
}

/// The dense operand as the caller holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operand<'a> {
    /// `B[k, n]` row-major.
    RowMajor(&'a [f32]),
    /// `X[n, k]` row-major, i.e. `B = Xᵀ` (the input of a linear layer).
    Transposed(&'a [f32]),
}

impl<'a> Operand<'a> {
    /// For `n = 1`: the `k` floats of the single column, the same in either layout.
    pub(crate) fn single_column(self) -> &'a [f32] {
        match self {
            Operand::RowMajor(b) | Operand::Transposed(b) => b,
        }
    }
}

/// The operands of `C = A · B` for a sparse `A` `[m, k]`: `b` row-major `[k, n]`, `c` row-major
/// `[m, n]`. `kernel` names the entry point in the panic message.
///
/// # Panics
///
/// If `b.len() != k · n` or `c.len() != m · n`.
#[track_caller]
pub(crate) fn matmul_operands<'a>(
    kernel: &str,
    (m, k): (usize, usize),
    b: &'a [f32],
    n: usize,
    c: &mut [f32],
) -> (Operand<'a>, Sink) {
    assert_floats(kernel, "b", b.len(), ("k·n", k, n));
    assert_floats(kernel, "c", c.len(), ("m·n", m, n));
    let sink = Sink::RowMajor {
        ptr: c.as_mut_ptr(),
        n,
    };
    (Operand::RowMajor(b), sink)
}

/// The operands of `Y = X · Aᵀ` for a sparse weight `A` `[out, in]`: `x` row-major
/// `[batch, in]`, `y` row-major `[batch, out]`. `kernel` names the entry point in the panic
/// message.
///
/// # Panics
///
/// If `x.len() != batch · in` or `y.len() != batch · out`.
#[track_caller]
pub(crate) fn linear_operands<'a>(
    kernel: &str,
    (out, inp): (usize, usize),
    x: &'a [f32],
    batch: usize,
    y: &mut [f32],
) -> (Operand<'a>, Sink) {
    assert_floats(kernel, "x", x.len(), ("batch·in", batch, inp));
    assert_floats(kernel, "y", y.len(), ("batch·out", batch, out));
    let sink = Sink::Transposed {
        ptr: y.as_mut_ptr(),
        m: out,
    };
    (Operand::Transposed(x), sink)
}

/// Panics unless `array` of `kernel` holds `rows · cols` floats (`product` names the two, e.g.
/// `"k·n"`).
#[track_caller]
fn assert_floats(
    kernel: &str,
    array: &str,
    len: usize,
    (product, rows, cols): (&str, usize, usize),
) {
    assert_eq!(
        len,
        rows * cols,
        "{kernel}: {array} has {len} floats, expected {product} = {rows}·{cols}"
    );
}

/// Cuts the `n` columns of the `k`-row operand into panels, packs those that cannot be read in
/// place (all of a transposed operand, a ragged last panel) into one reused buffer, and runs `f`
/// on the prepared panels.
pub(crate) fn with_panels<R>(
    operand: Operand<'_>,
    k: usize,
    n: usize,
    f: impl FnOnce(&[(Panel, PanelData<'_>)]) -> R,
) -> R {
    let panels = plan_panels(n);
    let needs_pack = |p: &Panel| matches!(operand, Operand::Transposed(_)) || p.valid != p.width;
    let mut offsets = Vec::with_capacity(panels.len());
    let mut packed_len = 0;
    for p in &panels {
        offsets.push(packed_len);
        if needs_pack(p) {
            packed_len += k * p.width;
        }
    }
    with_pack_buffer(packed_len, |packed| {
        let mut rest: &mut [f32] = packed;
        for p in panels.iter().filter(|p| needs_pack(p)) {
            let (chunk, tail) = rest.split_at_mut(k * p.width);
            match operand {
                Operand::RowMajor(b) => pack_columns(b, k, n, *p, chunk),
                Operand::Transposed(x) => pack_transposed(x, k, *p, chunk),
            }
            rest = tail;
        }
        let packed: &[f32] = packed;
        let prepared: Vec<(Panel, PanelData<'_>)> = panels
            .iter()
            .zip(&offsets)
            .map(|(p, &offset)| {
                let data = match operand {
                    _ if needs_pack(p) => PanelData {
                        base: &packed[offset..offset + k * p.width],
                        stride: p.width,
                    },
                    Operand::RowMajor(b) => PanelData {
                        base: b.get(p.start..).unwrap_or(&[]),
                        stride: n,
                    },
                    Operand::Transposed(_) => unreachable!("transposed panels are packed"),
                };
                // Micro-kernels read `width` floats at `j · stride` for every column j < k
                // without bounds checks; this is what makes that sound.
                assert!(k == 0 || data.base.len() >= (k - 1) * data.stride + p.width);
                (*p, data)
            })
            .collect();
        f(&prepared)
    })
}

/// Where a finished output row segment goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sink {
    /// `C[row, start + t]` of a row-major `C[M, n]`.
    RowMajor {
        /// Base pointer of `C`.
        ptr: *mut f32,
        /// Columns of `C`.
        n: usize,
    },
    /// `Y[start + t, row]` of a row-major `Y[n, M]` (the output of a linear layer, `Cᵀ`).
    Transposed {
        /// Base pointer of `Y`.
        ptr: *mut f32,
        /// Columns of `Y` (= rows of the sparse matrix).
        m: usize,
    },
}

// SAFETY: a `Sink` is only shared between tasks that write disjoint output rows of the sparse
// matrix (the scheduler hands out disjoint row ranges), so no element is written twice, and the
// buffer outlives the parallel section that uses it.
unsafe impl Send for Sink {}
unsafe impl Sync for Sink {}

impl Sink {
    /// Writes `values[..valid]` as row `row`, columns `start ..` of the product.
    ///
    /// # Safety
    ///
    /// `row` and `start + valid` must lie within the buffer's shape, and no other thread may write
    /// the same elements concurrently.
    #[inline(always)]
    pub(crate) unsafe fn write(&self, row: usize, start: usize, values: &[f32]) {
        match *self {
            Sink::RowMajor { ptr, n } => unsafe {
                std::ptr::copy_nonoverlapping(
                    values.as_ptr(),
                    ptr.add(row * n + start),
                    values.len(),
                );
            },
            Sink::Transposed { ptr, m } => {
                for (t, &v) in values.iter().enumerate() {
                    unsafe { *ptr.add((start + t) * m + row) = v };
                }
            }
        }
    }

    /// Writes a tile of consecutive rows `first .. first + tile.len()`, columns
    /// `start .. start + valid`. For the transposed layout this turns one scattered store per
    /// element (each column of `Y` a page apart) into one contiguous run per column.
    ///
    /// # Safety
    ///
    /// As for [`write`](Self::write), for every row of the tile.
    #[inline(always)]
    pub(crate) unsafe fn write_tile<const W: usize>(
        &self,
        first: usize,
        start: usize,
        valid: usize,
        tile: &[[f32; W]],
    ) {
        match *self {
            Sink::RowMajor { .. } => {
                for (i, row) in tile.iter().enumerate() {
                    unsafe { self.write(first + i, start, &row[..valid]) };
                }
            }
            Sink::Transposed { ptr, m } => {
                for t in 0..valid {
                    let dst = unsafe { ptr.add((start + t) * m + first) };
                    for (i, row) in tile.iter().enumerate() {
                        unsafe { *dst.add(i) = row[t] };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_cover_the_columns_in_order() {
        for n in 0..300 {
            let panels = plan_panels(n);
            let mut next = 0;
            for p in &panels {
                assert_eq!(p.start, next);
                assert!(p.valid <= p.width && p.valid > 0);
                next += p.valid;
            }
            assert_eq!(next, n);
        }
        let widths: Vec<usize> = plan_panels(128 + 16 + 3).iter().map(|p| p.width).collect();
        assert_eq!(widths, vec![64, 64, 16, 8]);
    }

    #[test]
    fn transposed_packing_places_every_element() {
        let (rows_x, k) = (5, 70);
        let x: Vec<f32> = (0..rows_x * k).map(|i| i as f32).collect();
        let p = Panel {
            start: 1,
            valid: 3,
            width: 8,
        };
        let mut out = vec![f32::NAN; k * p.width];
        pack_transposed(&x, k, p, &mut out);
        for kk in 0..k {
            for t in 0..8 {
                let expected = if t < 3 { x[(1 + t) * k + kk] } else { 0.0 };
                assert_eq!(out[kk * 8 + t], expected);
            }
        }
    }

    #[test]
    fn column_packing_pads_with_zeros() {
        let (k, n) = (3, 10);
        let b: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
        let p = Panel {
            start: 8,
            valid: 2,
            width: 8,
        };
        let mut out = vec![f32::NAN; k * 8];
        pack_columns(&b, k, n, p, &mut out);
        assert_eq!(&out[..8], &[8.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(out[16], 28.0);
    }
}
