//! `SparseLinear`: a linear layer whose weight is stored compressed and multiplied by the CPU
//! kernel on burn's CPU backend, with a dense masked matmul everywhere else.

use std::sync::Arc;

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
    Param, ParamId,
};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;

use crate::format::CsrMatrix;
use crate::kernel::csr_linear;
use crate::{Error, Result};

const LAYER: &str = "SparseLinear";

/// A linear layer `y = x · W + b` with a pruned weight, for inference.
///
/// The weight is held as a [`CsrMatrix`] `[d_output, d_input]` (torch's layout; burn's
/// `Linear.weight` is its transpose) in host memory, and the path is chosen from the input's
/// device at run time:
///
/// - on burn's **CPU backend (`flex`)**, without autodiff, for `f32` inputs, when at most
///   [`KERNEL_MAX_DENSITY`] of the weights are kept: the multi-threaded sparse kernel
///   [`csr_linear`](crate::kernel::csr_linear), on the current rayon pool;
/// - **everywhere else** (GPU backends, autodiff devices, other dtypes, denser weights): burn's
///   dense matmul with the masked weight, so the layer runs — and back-propagates into its input
///   — on any device. The dense weight is materialised at construction and by
///   [`Module::to_device`] / [`Module::fork`]; on a device the layer was not moved to, it is
///   built on the fly per call.
///
/// The density limit is measured, not assumed: on a 2048 × 2048 weight the kernel beats burn's
/// dense matmul (flex, SIMD, rayon) at every batch size from 50 % sparsity on, except batch 128
/// at exactly 50 % (0.95×); see `docs/benchmarks.md`.
///
/// The layer is a burn [`Module`]: burn's records ([`Module::save_file`] / [`Module::load_file`],
/// [`Module::into_record`] / [`Module::load_record`]) hold the whole layer — the bias, and the
/// weight as its dense masked values `weight.values` `[d_input, d_output]` with its keep-mask
/// `weight.mask` (see [`SparseWeight`]), so a record loads into any layer of the same shape,
/// whatever its sparsity pattern. The record is dense; for a compact file persist the weight
/// with [`CsrMatrix::into_parts`] and rebuild with [`SparseLinear::from_csr`].
///
/// # Example
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use burn::tensor::{Distribution, Tolerance};
/// use pruning::{Amount, HostTensor, SparseLinear, magnitude};
///
/// let device = Device::flex();
/// let linear = LinearConfig::new(64, 32).init(&device);
/// // Keep the 20 % largest weights (burn's layout: [d_input, d_output]).
/// let w = HostTensor::from_tensor(&linear.weight.val(), "fc.weight")?;
/// let mask = magnitude(&w, Amount::Fraction(0.8), None)?.to_tensor::<2>(&device);
/// let sparse = SparseLinear::from_linear(&linear, mask.clone())?;
/// // torch rounding: round(0.8 · 2048) = 1638 pruned.
/// assert_eq!(sparse.csr().nnz(), 2048 - 1638);
///
/// let x = Tensor::<2>::random([3, 64], Distribution::Default, &device);
/// let dense_masked = x.clone().matmul(linear.weight.val().mask_fill(mask.bool_not(), 0.0))
///     + linear.bias.as_ref().unwrap().val().unsqueeze();
/// sparse
///     .forward(x)
///     .into_data()
///     .assert_approx_eq::<f32>(&dense_masked.into_data(), Tolerance::default());
/// # Ok::<(), pruning::Error>(())
/// ```
#[derive(Module, Debug)]
#[module(custom_display)]
pub struct SparseLinear {
    /// The compressed weight and, off the CPU backend, its dense masked copy.
    pub weight: SparseWeight,
    /// The bias `[d_output]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl SparseLinear {
    /// Prunes a burn [`Linear`] with `mask` (`true` = keep), shaped like its weight
    /// `[d_input, d_output]`. The bias is kept as it is.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the mask's shape differs from the weight's,
    /// [`Error::Format`] ([`FormatError::NonFinite`](crate::format::FormatError::NonFinite)) for a NaN or infinite weight.
    pub fn from_linear(linear: &Linear, mask: Tensor<2, Bool>) -> Result<Self> {
        Self::from_weight(
            linear.weight.val(),
            Some(mask),
            linear.bias.as_ref().map(|b| b.val()),
        )
    }

    /// Builds the layer from a weight in burn's layout `[d_input, d_output]` (the layer computes
    /// `x · weight`), an optional keep-mask of the same shape (without one, the non-zeros are
    /// kept) and an optional bias `[d_output]`, on the weight's device.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] for a mask or bias of the wrong shape, [`Error::Format`]
    /// ([`FormatError::NonFinite`](crate::format::FormatError::NonFinite)) for a NaN or infinite weight.
    pub fn from_weight(
        weight: Tensor<2>,
        mask: Option<Tensor<2, Bool>>,
        bias: Option<Tensor<1>>,
    ) -> Result<Self> {
        let device = weight.device();
        let [d_input, d_output] = weight.dims();
        // Formats are [out, in]: transpose on the device, then read back.
        let dense = host_f32(weight.transpose());
        let csr = match mask {
            Some(mask) => {
                let dims = mask.dims();
                if dims != [d_input, d_output] {
                    return Err(Error::ShapeMismatch {
                        what: format!("{LAYER} weight and mask"),
                        expected: vec![d_input, d_output],
                        found: dims.to_vec(),
                    });
                }
                let mask = host_bool(mask.transpose());
                CsrMatrix::from_masked(&dense, &mask, d_output, d_input)?
            }
            None => CsrMatrix::from_dense(&dense, d_output, d_input)?,
        };
        Self::from_csr(csr, bias, &device)
    }

    /// Builds the layer from a compressed weight `[d_output, d_input]` and an optional bias, for
    /// `device`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the bias does not have `d_output` entries.
    pub fn from_csr(csr: CsrMatrix, bias: Option<Tensor<1>>, device: &Device) -> Result<Self> {
        if let Some(b) = &bias {
            let [len] = b.dims();
            if len != csr.rows() {
                return Err(Error::ShapeMismatch {
                    what: format!("{LAYER} bias and d_output"),
                    expected: vec![csr.rows()],
                    found: vec![len],
                });
            }
        }
        Ok(Self {
            weight: SparseWeight::new(Arc::new(csr), device),
            bias: bias.map(|b| Param::from_tensor(b.to_device(device).detach())),
        })
    }

    /// Input features.
    pub fn d_input(&self) -> usize {
        self.weight.csr.cols()
    }

    /// Output features.
    pub fn d_output(&self) -> usize {
        self.weight.csr.rows()
    }

    /// The compressed weight, `[d_output, d_input]`.
    pub fn csr(&self) -> &CsrMatrix {
        &self.weight.csr
    }

    /// Applies the layer to the last dimension of `input`.
    ///
    /// # Shapes
    ///
    /// - input: `[..., d_input]`
    /// - output: `[..., d_output]`
    ///
    /// # Panics
    ///
    /// If the last dimension of `input` is not `d_input`.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let dims = input.dims();
        let d_input = self.d_input();
        assert_eq!(
            dims[D - 1],
            d_input,
            "SparseLinear: input's last dimension is {}, expected d_input = {d_input}",
            dims[D - 1]
        );
        let device = input.device();
        if self.weight.uses_kernel_on(&device) && input.dtype() == DType::F32 {
            self.forward_kernel(input, &device)
        } else {
            self.forward_dense(input, &device)
        }
    }

    fn forward_kernel<const D: usize>(&self, input: Tensor<D>, device: &Device) -> Tensor<D> {
        let mut out_dims = input.dims();
        let batch = out_dims[..D - 1].iter().product::<usize>();
        let d_output = self.d_output();
        out_dims[D - 1] = d_output;
        let x = input.into_data();
        let x = x
            .as_slice::<f32>()
            .expect("an F32 tensor reads back as f32");
        let mut y = vec![0.0f32; batch * d_output];
        csr_linear(&self.weight.csr, x, batch, &mut y);
        if let Some(bias) = &self.bias {
            let bias = host_f32(bias.val());
            for row in y.chunks_exact_mut(d_output) {
                for (v, b) in row.iter_mut().zip(&bias) {
                    *v += b;
                }
            }
        }
        Tensor::from_data(TensorData::new(y, out_dims), device)
    }

    fn forward_dense<const D: usize>(&self, input: Tensor<D>, device: &Device) -> Tensor<D> {
        let weight = match &self.weight.dense {
            Some(w) if w.device() == *device => w.clone(),
            _ => self.weight.dense_on(device),
        };
        let weight = if weight.dtype() == input.dtype() {
            weight
        } else {
            weight.cast(input.dtype())
        };
        burn::tensor::module::linear(input, weight, self.bias.as_ref().map(|b| b.val()))
    }
}

impl ModuleDisplay for SparseLinear {
    fn custom_content(&self, content: Content) -> Option<Content> {
        content
            .add("d_input", &self.d_input())
            .add("d_output", &self.d_output())
            .add("nnz", &self.weight.csr.nnz())
            .add("bias", &self.bias.is_some())
            .optional()
    }
}

/// The weight of a [`SparseLinear`]: the compressed matrix (host memory, shared between clones)
/// and, for devices where the CPU kernel does not run, the dense masked weight `[d_input,
/// d_output]` on that device.
///
/// As a burn [`Module`] it is not trained; [`Module::num_params`] counts its stored (kept)
/// weights, and moving it with [`Module::to_device`] re-chooses the representation for the target
/// device.
///
/// Visitors and mappers (and so burn's records) see it as two parameters: `values`, the dense
/// masked weight `[d_input, d_output]` (float), and `mask`, its keep-mask `[d_input, d_output]`
/// (bool, `true` = stored; explicitly kept zeros stay kept). After a [`Module::map`] the
/// compressed matrix is rebuilt from the mapped values where the mapped mask is `true`.
#[derive(Debug, Clone)]
pub struct SparseWeight {
    csr: Arc<CsrMatrix>,
    dense: Option<Tensor<2>>,
    device: Device,
    values_id: ParamId,
    mask_id: ParamId,
}

/// The container type [`SparseWeight`] reports to visitors and mappers, burn's derive style.
const WEIGHT_CONTAINER: &str = "Struct:SparseWeight";

impl SparseWeight {
    fn new(csr: Arc<CsrMatrix>, device: &Device) -> Self {
        Self::with_ids(csr, device, ParamId::new(), ParamId::new())
    }

    fn with_ids(
        csr: Arc<CsrMatrix>,
        device: &Device,
        values_id: ParamId,
        mask_id: ParamId,
    ) -> Self {
        let mut weight = Self {
            csr,
            dense: None,
            device: device.clone(),
            values_id,
            mask_id,
        };
        if !weight.uses_kernel_on(device) {
            weight.dense = Some(weight.dense_on(device));
        }
        weight
    }

    /// The keep-mask `[d_input, d_output]` on `device`: `true` where the CSR stores an entry.
    fn mask_on(&self, device: &Device) -> Tensor<2, Bool> {
        let (out, inp) = (self.csr.rows(), self.csr.cols());
        let mut mask = vec![false; inp * out];
        for r in 0..out {
            for &c in self.csr.row(r).0 {
                mask[c as usize * out + r] = true;
            }
        }
        Tensor::from_data(TensorData::new(mask, [inp, out]), device)
    }

    /// The dense masked weight on the layer's device, as the `values` parameter.
    fn values_param(&self) -> Param<Tensor<2>> {
        let values = match &self.dense {
            Some(dense) => dense.clone(),
            None => self.dense_on(&self.device),
        };
        Param::initialized(self.values_id, values)
    }

    /// The keep-mask on the layer's device, as the `mask` parameter.
    fn mask_param(&self) -> Param<Tensor<2, Bool>> {
        Param::initialized(self.mask_id, self.mask_on(&self.device))
    }

    /// Whether a forward pass on `device` runs the sparse kernel: a CPU kernel device (see
    /// [`is_kernel_device`]) and a density of at most [`KERNEL_MAX_DENSITY`].
    pub fn uses_kernel_on(&self, device: &Device) -> bool {
        is_kernel_device(device) && self.csr.density() <= KERNEL_MAX_DENSITY
    }

    /// The dense masked weight `[d_input, d_output]` on `device`.
    fn dense_on(&self, device: &Device) -> Tensor<2> {
        let (out, inp) = (self.csr.rows(), self.csr.cols());
        let mut dense = vec![0.0f32; inp * out];
        for r in 0..out {
            let (cols, vals) = self.csr.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                dense[c as usize * out + r] = v;
            }
        }
        Tensor::from_data(TensorData::new(dense, [inp, out]), device)
    }

    /// The compressed weight `[d_output, d_input]`.
    pub fn csr(&self) -> &CsrMatrix {
        &self.csr
    }
}

impl Module for SparseWeight {
    fn collect_devices(&self, mut devices: Devices) -> Devices {
        if let Some(dense) = &self.dense {
            devices = dense.collect_devices(devices);
        }
        if !devices.contains(&self.device) {
            devices.push(self.device.clone());
        }
        devices
    }

    fn fork(self, device: &Device) -> Self {
        self.to_device(device)
    }

    fn to_device(self, device: &Device) -> Self {
        Self::with_ids(self.csr, device, self.values_id, self.mask_id)
    }

    fn train(self) -> Self {
        self
    }

    fn valid(&self) -> Self {
        let dense = self.dense.as_ref().map(|d| d.clone().without_autodiff());
        Self {
            csr: self.csr.clone(),
            device: dense.as_ref().map_or(self.device.clone(), |d| d.device()),
            dense,
            values_id: self.values_id,
            mask_id: self.mask_id,
        }
    }

    fn materialize(self) -> Self {
        self
    }

    fn num_params(&self) -> usize {
        self.csr.nnz()
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        visitor.enter_module("values", WEIGHT_CONTAINER);
        Module::visit(&self.values_param(), visitor);
        visitor.exit_module("values", WEIGHT_CONTAINER);
        visitor.enter_module("mask", WEIGHT_CONTAINER);
        Module::visit(&self.mask_param(), visitor);
        visitor.exit_module("mask", WEIGHT_CONTAINER);
    }

    /// Maps `values` and `mask` (see [`SparseWeight`]) and rebuilds the compressed weight from
    /// the results, on the mapped values' device.
    ///
    /// # Panics
    ///
    /// If the mapper returns values and a mask of different shapes, or NaN or infinite values
    /// where the mask is `true` (a burn record with such values, for instance): the compressed
    /// weight holds finite values only, and a mapper cannot report an error.
    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        mapper.enter_module("values", WEIGHT_CONTAINER);
        let values = Module::map(self.values_param(), mapper);
        mapper.exit_module("values", WEIGHT_CONTAINER);
        mapper.enter_module("mask", WEIGHT_CONTAINER);
        let mask = Module::map(self.mask_param(), mapper);
        mapper.exit_module("mask", WEIGHT_CONTAINER);
        let (values_id, values, _) = values.consume();
        let (mask_id, mask, _) = mask.consume();
        let device = values.device();
        let [d_input, d_output] = values.dims();
        assert_eq!(
            mask.dims(),
            [d_input, d_output],
            "{LAYER}: mapped weight.mask has shape {:?}, expected weight.values' [{d_input}, {d_output}]",
            mask.dims()
        );
        let csr = CsrMatrix::from_masked(
            &host_f32(values.transpose()),
            &host_bool(mask.transpose()),
            d_output,
            d_input,
        )
        .unwrap_or_else(|e| panic!("{LAYER}: mapped weight.values are not a valid weight: {e}"));
        Self::with_ids(Arc::new(csr), &device, values_id, mask_id)
    }
}

impl ModuleDisplayDefault for SparseWeight {
    fn content(&self, content: Content) -> Option<Content> {
        let text = format!(
            "CSR [{}, {}], nnz {}, density {:.4}",
            self.csr.rows(),
            self.csr.cols(),
            self.csr.nnz(),
            self.csr.density()
        );
        content.add_single(&text).optional()
    }
}

impl ModuleDisplay for SparseWeight {}

/// Above this fraction of kept weights [`SparseLinear`] multiplies with burn's dense matmul even
/// on the CPU: measured break-even of the sparse kernel against burn's flex matmul (SIMD, rayon)
/// at batch 128 on a 2048 × 2048 weight (smaller batches favour the kernel further).
pub const KERNEL_MAX_DENSITY: f64 = 0.5;

/// Whether the sparse CPU kernel can serve `device`: burn's `flex` CPU backend without autodiff
/// (the kernel is not differentiable). burn exposes no backend query without compiling the
/// backend into this crate, so this reads the device's `Debug` name, which burn 0.22 writes as
/// `Device<Flex(..)>` (a test pins it).
pub fn is_kernel_device(device: &Device) -> bool {
    !device.is_autodiff() && format!("{device:?}").starts_with("Device<Flex")
}

fn host_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("a float tensor converts to f32")
}

fn host_bool<const D: usize>(t: Tensor<D, Bool>) -> Vec<bool> {
    t.into_data()
        .try_into_vec_as::<bool>()
        .expect("a bool tensor converts to bool")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FormatError;
    use crate::test_device;
    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, Tolerance};
    use proptest::strategy::Strategy;

    fn reference(x: Tensor<2>, linear: &Linear, mask: Tensor<2, Bool>) -> Tensor<2> {
        let w = linear.weight.val().mask_fill(mask.bool_not(), 0.0);
        let y = x.matmul(w);
        match &linear.bias {
            Some(b) => y + b.val().unsqueeze(),
            None => y,
        }
    }

    /// `layer` maps `x` as the dense `linear` with the pruned weights zeroed does.
    fn assert_matches_reference(
        layer: &SparseLinear,
        x: Tensor<2>,
        linear: &Linear,
        mask: Tensor<2, Bool>,
    ) {
        layer
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(
                &reference(x, linear, mask).into_data(),
                Tolerance::default(),
            );
    }

    #[test]
    fn the_flex_device_is_recognised() {
        assert!(is_kernel_device(&test_device()));
        assert!(!is_kernel_device(&test_device().autodiff()));
    }

    #[test]
    fn kernel_path_equals_dense_masked_linear() {
        let device = test_device();
        device.seed(7);
        for (bias, batch) in [(true, 1), (false, 5), (true, 70)] {
            let linear = LinearConfig::new(24, 10).with_bias(bias).init(&device);
            let mask =
                Tensor::<2>::random([24, 10], Distribution::Default, &device).greater_elem(0.6);
            let layer = SparseLinear::from_linear(&linear, mask.clone()).unwrap();
            assert!(
                layer.weight.dense.is_none(),
                "flex keeps only the compressed weight"
            );
            let x = Tensor::<2>::random([batch, 24], Distribution::Normal(0.0, 1.0), &device);
            assert_matches_reference(&layer, x, &linear, mask);
        }
    }

    #[test]
    fn higher_rank_inputs_keep_their_leading_dimensions() {
        let device = test_device();
        device.seed(3);
        let linear = LinearConfig::new(6, 4).init(&device);
        let mask = Tensor::<2>::random([6, 4], Distribution::Default, &device).greater_elem(0.3);
        let layer = SparseLinear::from_linear(&linear, mask.clone()).unwrap();
        let x = Tensor::<3>::random([2, 3, 6], Distribution::Default, &device);
        let y = layer.forward(x.clone());
        assert_eq!(y.dims(), [2, 3, 4]);
        let expected = reference(x.reshape([6, 6]), &linear, mask).reshape([2, 3, 4]);
        y.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
    }

    #[test]
    fn autodiff_devices_take_the_dense_path_and_backpropagate() {
        let device = test_device().autodiff();
        device.seed(11);
        let linear = LinearConfig::new(5, 3).init(&device);
        let mask = Tensor::<2>::random([5, 3], Distribution::Default, &device).greater_elem(0.5);
        let layer = SparseLinear::from_linear(&linear, mask.clone()).unwrap();
        assert!(layer.weight.dense.is_some());
        let x = Tensor::<2>::random([4, 5], Distribution::Default, &device)
            .detach()
            .require_grad();
        let y = layer.forward(x.clone());
        y.clone().into_data().assert_approx_eq::<f32>(
            &reference(x.clone(), &linear, mask.clone()).into_data(),
            Tolerance::default(),
        );
        let grads = y.sum().backward();
        // d(sum(x·W))/dx = row sums of the masked W, for every input row.
        let w = linear.weight.val().mask_fill(mask.bool_not(), 0.0);
        let expected = w.sum_dim(1).reshape([1, 5]).repeat_dim(0, 4);
        x.grad(&grads)
            .unwrap()
            .into_data()
            .assert_approx_eq::<f32>(&expected.inner().into_data(), Tolerance::default());
    }

    #[test]
    fn dense_weights_use_burns_matmul_on_the_cpu_too() {
        let device = test_device();
        device.seed(5);
        let linear = LinearConfig::new(16, 8).init(&device);
        let mask = Tensor::<2>::random([16, 8], Distribution::Default, &device).greater_elem(0.2);
        let layer = SparseLinear::from_linear(&linear, mask.clone()).unwrap();
        assert!(layer.csr().density() > KERNEL_MAX_DENSITY);
        assert!(!layer.weight.uses_kernel_on(&device));
        assert!(layer.weight.dense.is_some());
        let x = Tensor::<2>::random([3, 16], Distribution::Default, &device);
        assert_matches_reference(&layer, x, &linear, mask);
    }

    #[test]
    fn moving_between_devices_switches_representation() {
        let device = test_device();
        let weight = Tensor::<2>::from_data(
            TensorData::from([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0], [0.0, 0.0]]),
            &device,
        );
        let layer = SparseLinear::from_weight(weight, None, None).unwrap();
        assert!(layer.weight.dense.is_none());
        let moved = layer.clone().to_device(&device.clone().autodiff());
        assert!(moved.weight.dense.is_some());
        let back = moved.to_device(&device);
        assert!(back.weight.dense.is_none());
        assert_eq!(back.csr(), layer.csr());
    }

    #[test]
    fn shape_errors_are_typed() {
        let device = test_device();
        let w = Tensor::<2>::ones([4, 3], &device);
        let bad_mask = Tensor::<2, Bool>::from_data(TensorData::from([[true, false]]), &device);
        assert!(matches!(
            SparseLinear::from_weight(w.clone(), Some(bad_mask), None),
            Err(Error::ShapeMismatch { .. })
        ));
        let bad_bias = Tensor::<1>::zeros([4], &device);
        assert!(matches!(
            SparseLinear::from_weight(w.clone(), None, Some(bad_bias)),
            Err(Error::ShapeMismatch { .. })
        ));
        let nan = w.mul_scalar(f32::NAN);
        assert!(matches!(
            SparseLinear::from_weight(nan, None, None),
            Err(Error::Format(FormatError::NonFinite { .. }))
        ));
    }

    /// A layer and a different one of the same shape (other weights, other mask) to load into.
    fn layer_pair(keep_above: f32, device: &Device) -> (SparseLinear, SparseLinear) {
        let make = || {
            let linear = LinearConfig::new(12, 7).init(device);
            let mask = Tensor::<2>::random([12, 7], Distribution::Default, device)
                .greater_elem(keep_above);
            SparseLinear::from_linear(&linear, mask).unwrap()
        };
        (make(), make())
    }

    #[test]
    fn burn_records_round_trip_the_whole_layer() {
        let dir = tempfile::tempdir().unwrap();
        let flex = test_device();
        flex.seed(17);
        // ~30 % kept on flex: the kernel; ~80 % kept: the dense path; autodiff: the dense path.
        for (keep_above, device, kernel) in [
            (0.7, flex.clone(), true),
            (0.2, flex.clone(), false),
            (0.7, flex.clone().autodiff(), false),
        ] {
            let (layer, fresh) = layer_pair(keep_above, &device);
            assert_eq!(layer.weight.uses_kernel_on(&device), kernel);
            assert_ne!(layer.csr(), fresh.csr());
            let x = Tensor::<2>::random([4, 12], Distribution::Normal(0.0, 1.0), &device);
            let expected = layer
                .forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();

            let path = dir.path().join(format!("sparse_{keep_above}_{kernel}.bpk"));
            layer.clone().save_file(&path).unwrap();
            let from_file = fresh.clone().load_file(&path);
            let from_record = fresh.load_record(layer.clone().into_record());
            for loaded in [from_file, from_record] {
                assert_eq!(loaded.csr(), layer.csr());
                assert_eq!(loaded.weight.uses_kernel_on(&device), kernel);
                assert_eq!(loaded.weight.dense.is_some(), !kernel);
                let got = loaded
                    .forward(x.clone())
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap();
                assert_eq!(got, expected, "outputs after reload (kernel = {kernel})");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn records_round_trip_any_pattern(
            (d_input, d_output, cells) in (1usize..6, 1usize..6).prop_flat_map(|(i, o)| {
                (
                    proptest::strategy::Just(i),
                    proptest::strategy::Just(o),
                    // (value, kept): kept zeros included.
                    proptest::collection::vec(
                        (proptest::prop_oneof![proptest::strategy::Just(0.0f32), -2.0f32..2.0], proptest::bool::ANY),
                        i * o,
                    ),
                )
            }),
            bias in proptest::bool::ANY,
        ) {
            let device = test_device();
            let (values, keep): (Vec<f32>, Vec<bool>) = cells.into_iter().unzip();
            let weight = Tensor::<2>::from_data(TensorData::new(values, [d_input, d_output]), &device);
            let mask = Tensor::<2, Bool>::from_data(TensorData::new(keep, [d_input, d_output]), &device);
            let bias = bias.then(|| Tensor::<1>::ones([d_output], &device));
            let layer = SparseLinear::from_weight(weight, Some(mask), bias.clone()).unwrap();
            let fresh = SparseLinear::from_weight(
                Tensor::<2>::zeros([d_input, d_output], &device),
                None,
                bias.map(|b| b.zeros_like()),
            )
            .unwrap();
            let loaded = fresh.load_record(layer.clone().into_record());
            proptest::prop_assert_eq!(loaded.csr(), layer.csr());
            proptest::prop_assert_eq!(
                loaded.bias.map(|b| b.val().into_data().try_to_vec::<f32>().unwrap()),
                layer.bias.map(|b| b.val().into_data().try_to_vec::<f32>().unwrap())
            );
        }
    }
}
