//! EleutherAI sparsify folders: `cfg.json` + `sae.safetensors` (read only).

use std::path::Path;

use burn::prelude::*;

use super::convert::{blob, invalid_config, parts_to_sae};
use super::json::{Fields, read_json_object};
use super::layout::{Dim, Shape, check_tensors};
use super::saelens_config::SaeLensConfig;
use super::tensors::{HostTensor, TensorSet, read_safetensors};
use crate::{AbsTopKSaeConfig, AnySae, Architecture, Result, TopKSaeConfig};

/// The weights file of a sparsify SAE folder.
pub const SPARSIFY_WEIGHTS_FILENAME: &str = "sae.safetensors";

/// An SAE read from a sparsify folder, with what the reader decided.
#[derive(Debug)]
pub struct SparsifySae {
    /// The module: a TopK SAE (an AbsTopK SAE for sparsify's old `signed` coders).
    pub sae: AnySae,
    /// Whether the folder held a transcoder (`transcode: true`: it predicts another module's
    /// output, so `b_dec` is not subtracted from the input).
    pub transcoder: bool,
    /// Whether `W_dec` was stored `[d_in, num_latents]` and transposed on reading.
    pub w_dec_transposed: bool,
}

/// Reads a sparsify `SparseCoder` folder (one hookpoint: `cfg.json` with `d_in` and the
/// `SparseCoderConfig` fields, and `sae.safetensors`).
///
/// Mapping (sparsify `sparse_coder.py`): `W_enc = encoder.weightᵀ`, `b_enc = encoder.bias`,
/// `b_dec = b_dec`, TopK over `ReLU(pre)` without decoder-norm rescaling, `b_dec` subtracted from
/// the input unless `transcode`, `normalize_decoder` → a unit-norm decoder. `num_latents = 0`
/// means `d_in · expansion_factor`. An old `signed: true` coder (top-k of `|pre|` keeping signs)
/// becomes an AbsTopK SAE.
///
/// **`W_dec` orientation is decided by shape.** sparsify stores `W_dec [num_latents, d_in]`
/// today, while SAELens' sparsify loader (and its tests) transpose it, as if it were
/// `[d_in, num_latents]`. This reader accepts either: `[num_latents, d_in]` is used as is,
/// `[d_in, num_latents]` is transposed ([`SparsifySae::w_dec_transposed`]). When the two
/// coincide (`num_latents = d_in`) the shape cannot tell, and sparsify's own current layout,
/// `[num_latents, d_in]`, is assumed.
///
/// # Errors
/// [`crate::Error::Io`]; [`crate::Error::Json`], [`crate::Error::MissingConfigKey`] (`d_in`),
/// [`crate::Error::ConfigType`]; [`crate::Error::InvalidConfigValue`] for `activation:
/// groupmax`, `skip_connection: true` (a `W_skip` this crate's modules do not have) or `k` out
/// of range; the tensor errors of [`SaeLensFolder::read`](super::SaeLensFolder::read).
pub fn load_sparsify(dir: impl AsRef<Path>, device: &Device) -> Result<SparsifySae> {
    let dir = dir.as_ref();
    let cfg_path = dir.join("cfg.json");
    let weights_path = dir.join(SPARSIFY_WEIGHTS_FILENAME);
    let map = read_json_object(&cfg_path)?;
    let f = Fields::new(&cfg_path, &map);
    let d_in = f.usize("d_in")?;
    match f.opt_str("activation")? {
        None | Some("topk") => {}
        Some(_) => {
            return Err(f.invalid(
                "activation",
                &map["activation"],
                "only sparsify's topk activation is supported (not groupmax)",
            ));
        }
    }
    if f.opt_bool("skip_connection")?.unwrap_or(false) {
        return Err(f.invalid(
            "skip_connection",
            &map["skip_connection"],
            "skip connections (W_skip) are not supported",
        ));
    }
    let k = f.opt_usize("k")?.unwrap_or(32);
    let num_latents = match f.opt_usize("num_latents")?.unwrap_or(0) {
        0 => d_in * f.opt_usize("expansion_factor")?.unwrap_or(32),
        n => n,
    };
    let normalize_decoder = f.opt_bool("normalize_decoder")?.unwrap_or(true);
    let transcoder = f.opt_bool("transcode")?.unwrap_or(false);
    let signed = f.opt_bool("signed")?.unwrap_or(false);
    // The architecture's own range check (TopK and AbsTopK share it), in sparsify's key names.
    TopKSaeConfig::new(d_in, num_latents, k)
        .check()
        .map_err(|e| {
            let key = match e.field.as_str() {
                "d_sae" => "num_latents".to_string(),
                other => other.to_string(),
            };
            invalid_config(&cfg_path, key, e)
        })?;

    let mut raw = read_safetensors(&weights_path, &[])?.floats;
    let w_dec_transposed = match raw.get("W_dec").map(|t| t.shape().to_vec()) {
        Some(s) if num_latents != d_in && s == [d_in, num_latents] => {
            let t = raw.remove("W_dec").expect("present");
            raw.insert("W_dec".into(), transpose(&t));
            true
        }
        _ => false,
    };
    use Dim::{In, Sae};
    let layout = [
        ("encoder.weight", Shape::Dims(vec![Sae, In])),
        ("encoder.bias", Shape::Dims(vec![Sae])),
        ("W_dec", Shape::Dims(vec![Sae, In])),
        ("b_dec", Shape::Dims(vec![In])),
    ];
    check_tensors(
        &weights_path,
        &layout,
        "sparsify SparseCoder",
        d_in,
        num_latents,
        "cfg.json",
        &raw,
    )?;

    let architecture = if signed {
        Architecture::AbsTopK
    } else {
        Architecture::TopK
    };
    let mut cfg = SaeLensConfig::new(architecture, d_in, num_latents);
    cfg.k = Some(k as f64);
    cfg.rescale_acts_by_decoder_norm = Some(false);
    cfg.apply_b_dec_to_input = !transcoder;
    cfg.sparseland = Some(if signed {
        blob(
            architecture,
            &AbsTopKSaeConfig::new(d_in, num_latents, k)
                .with_rescale_acts_by_decoder_norm(false)
                .with_unit_norm_decoder(normalize_decoder)
                .with_apply_b_dec_to_input(!transcoder),
        )
    } else {
        blob(
            architecture,
            &TopKSaeConfig::new(d_in, num_latents, k)
                .with_rescale_acts_by_decoder_norm(false)
                .with_unit_norm_decoder(normalize_decoder)
                .with_apply_b_dec_to_input(!transcoder),
        )
    });
    let mut t = TensorSet::new();
    t.insert("W_enc".into(), transpose(&raw["encoder.weight"]));
    t.insert("b_enc".into(), raw["encoder.bias"].clone());
    t.insert("W_dec".into(), raw["W_dec"].clone());
    t.insert("b_dec".into(), raw["b_dec"].clone());
    let sae = parts_to_sae(&cfg, &t, &cfg_path, device)?;
    Ok(SparsifySae {
        sae,
        transcoder,
        w_dec_transposed,
    })
}

/// The transpose of a 2-D host tensor.
pub(crate) fn transpose(t: &HostTensor) -> HostTensor {
    let [r, c] = [t.shape()[0], t.shape()[1]];
    let src = t.data();
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = src[i * c + j];
        }
    }
    HostTensor::new(vec![c, r], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn transpose_moves_every_entry() {
        let t = HostTensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let tt = transpose(&t);
        assert_eq!(tt.shape(), &[3, 2]);
        assert_eq!(tt.data(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(transpose(&tt), t);
    }

    #[test]
    fn groupmax_and_skip_connections_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let device = crate::test_device();
        std::fs::write(
            dir.path().join("cfg.json"),
            br#"{"d_in": 4, "activation": "groupmax"}"#,
        )
        .unwrap();
        let e = load_sparsify(dir.path(), &device).unwrap_err();
        assert!(
            matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "activation"),
            "{e}"
        );
        std::fs::write(
            dir.path().join("cfg.json"),
            br#"{"d_in": 4, "skip_connection": true}"#,
        )
        .unwrap();
        let e = load_sparsify(dir.path(), &device).unwrap_err();
        assert!(matches!(e, Error::InvalidConfigValue { ref key, .. } if key == "skip_connection"));
        std::fs::write(dir.path().join("cfg.json"), br#"{"k": 4}"#).unwrap();
        let e = load_sparsify(dir.path(), &device).unwrap_err();
        assert!(matches!(e, Error::MissingConfigKey { ref key, .. } if key == "d_in"));
    }
}
