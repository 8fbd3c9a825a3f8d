//! Choosing between the portable tensor-op path and the host (CPU) kernels.

use std::sync::OnceLock;

use burn::prelude::*;

/// Which implementation a hot operation runs.
///
/// Every hot operation in this crate has two implementations that compute the same thing:
/// - [`ComputePath::TensorOps`]: burn tensor ops. Runs on every backend, is differentiated by
///   autodiff, and is the oracle the host kernels are tested against.
/// - [`ComputePath::HostKernels`]: this crate's own multi-threaded CPU kernels (partial-selection
///   top-k, k-row sparse decode). They read the tensor's memory on the host, so they only pay
///   off on a CPU backend, and they carry no autodiff graph.
///
/// [`ComputePath::for_device`] picks the host kernels on burn's CPU backends (`flex`,
/// `ndarray`) and tensor ops elsewhere. The environment variable `SPARSELAND_COMPUTE_PATH`
/// (`tensor-ops` or `host-kernels`) overrides the choice for the whole process, e.g. to compare
/// the two in a benchmark.
///
/// burn 0.22 offers no public query for "this device keeps tensors in host memory", so the CPU
/// backends are recognised by the device's `Debug` name (`Device<Flex(..)>`, also inside
/// `Device<Autodiff { device: .. }>`; the exact format is pinned by a test that fails when burn
/// changes it); a backend not recognised gets the always-correct tensor-op path.
///
/// ```
/// use burn::prelude::*;
/// use sae_core::kernels::ComputePath;
///
/// let cpu = Device::flex();
/// assert_eq!(ComputePath::for_device(&cpu), ComputePath::HostKernels);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComputePath {
    /// burn tensor ops: every backend, differentiable.
    TensorOps,
    /// This crate's CPU kernels on host memory: fast on CPU backends, not differentiable.
    HostKernels,
}

impl ComputePath {
    /// The path for work on `device`: host kernels on a CPU backend, tensor ops otherwise (or
    /// whatever `SPARSELAND_COMPUTE_PATH` forces).
    pub fn for_device(device: &Device) -> Self {
        if let Some(forced) = forced_path() {
            return forced;
        }
        if is_host_device(device) {
            Self::HostKernels
        } else {
            Self::TensorOps
        }
    }

    /// The path for an operation on these tensors: host kernels only when
    /// [`for_device`](Self::for_device) allows them *and* no tensor is tracked by autodiff (the
    /// host kernels record no graph, so a tracked input needs tensor ops to keep its gradient).
    pub fn for_tensors<const D1: usize, const D2: usize>(a: &Tensor<D1>, b: &Tensor<D2>) -> Self {
        match Self::for_device(&a.device()) {
            Self::HostKernels if !a.is_tracked() && !b.is_tracked() => Self::HostKernels,
            _ => Self::TensorOps,
        }
    }
}

fn forced_path() -> Option<ComputePath> {
    static FORCED: OnceLock<Option<ComputePath>> = OnceLock::new();
    *FORCED.get_or_init(
        || match std::env::var("SPARSELAND_COMPUTE_PATH").ok()?.as_str() {
            "tensor-ops" => Some(ComputePath::TensorOps),
            "host-kernels" => Some(ComputePath::HostKernels),
            _ => None,
        },
    )
}

fn is_host_device(device: &Device) -> bool {
    is_host_device_name(&format!("{device:?}"))
}

/// Whether a device's `Debug` name is burn 0.22's for a CPU backend: `Device<Flex(..)>` or
/// `Device<NdArray(..)>`, directly or inside `Device<Autodiff { device: .., .. }>`. The backend
/// variant is matched at its place, not anywhere in the text, so a device whose name merely
/// contains "Flex" is not taken for one. The exact format is pinned by a test.
fn is_host_device_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix("Device<") else {
        return false;
    };
    let inner = inner.strip_prefix("Autodiff { device: ").unwrap_or(inner);
    inner.starts_with("Flex(") || inner.starts_with("NdArray(")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;

    /// The CPU backend is recognised by the device's `Debug` name (burn offers no query): this
    /// test fails the day burn changes that output, before the host kernels silently stop
    /// being used. If it fails, update `is_host_device_name` (and pruning's
    /// `is_kernel_device`, which reads the same name) to the new format.
    #[test]
    fn burns_debug_names_of_the_cpu_device_are_pinned() {
        let device = test_device();
        assert_eq!(format!("{device:?}"), "Device<Flex(Cpu)>");
        assert_eq!(
            format!("{:?}", device.autodiff()),
            "Device<Autodiff { device: Flex(Cpu), checkpointing: Disabled }>"
        );
    }

    #[test]
    fn only_the_backend_variant_counts_not_any_mention_of_flex() {
        assert!(is_host_device_name("Device<Flex(Cpu)>"));
        assert!(is_host_device_name("Device<NdArray(Cpu)>"));
        assert!(is_host_device_name(
            "Device<Autodiff { device: Flex(Cpu), checkpointing: Balanced }>"
        ));
        for other in [
            "Device<Cube(Cuda(CudaDevice { index: 0 }))>",
            "Device<Cube(Wgpu(FlexibleAdapter))>",
            "Device<Remote(\"flex.example:3000\")>",
            "Flex(Cpu)",
        ] {
            assert!(!is_host_device_name(other), "{other}");
        }
    }

    #[test]
    fn flex_and_its_autodiff_wrapper_are_host_devices() {
        let device = test_device();
        assert!(is_host_device(&device));
        assert!(is_host_device(&device.autodiff()));
    }

    #[test]
    fn tracked_tensors_take_the_tensor_op_path() {
        if forced_path().is_some() {
            eprintln!("SPARSELAND_COMPUTE_PATH is set: the automatic choice is not tested");
            return;
        }
        let device = test_device().autodiff();
        let plain = Tensor::<2>::zeros([2, 2], &device);
        let tracked = Tensor::<2>::zeros([2, 2], &device).require_grad();
        assert_eq!(
            ComputePath::for_tensors(&plain, &plain),
            ComputePath::HostKernels
        );
        assert_eq!(
            ComputePath::for_tensors(&plain, &tracked),
            ComputePath::TensorOps
        );
    }
}
