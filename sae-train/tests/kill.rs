//! The kill test: a child process (this test binary, re-invoked with an environment variable)
//! saves a checkpoint and a SAELens folder in a loop and is killed (SIGKILL) at random points,
//! many times. After every kill, each load gives a complete state at least as new as the last
//! one the child reported saved — never a mix of two saves, never an error — or "nothing saved
//! yet" when the child never finished a save.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sae_core::Architecture;
use sae_core::io::{HostTensor, SaeLensConfig, SaeLensFolder, TensorSet};
use sae_train::CheckpointDir;

/// Set in the child: the directory it saves into.
const CHILD_DIR: &str = "SPARSELAND_KILL_TEST_DIR";
/// Set in the child: the first generation it saves.
const CHILD_START: &str = "SPARSELAND_KILL_TEST_START";
/// How many kills (default 30, a few seconds); `SPARSELAND_KILL_TEST_KILLS` asks for a long run.
const KILLS_VAR: &str = "SPARSELAND_KILL_TEST_KILLS";
const TEST_NAME: &str = "checkpoints_and_saelens_folders_survive_random_kills";

/// The bytes a checkpoint of generation `g` holds besides its generation: 96 KiB that differ
/// for every generation (so a file of one save in another's checkpoint is detected).
fn payload(g: u64) -> Vec<u8> {
    let mut x = g.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..96 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Checkpoint step of generation `g`: every step is saved twice, so every other save replaces
/// the checkpoint `LATEST` names.
fn step_of(g: u64) -> u64 {
    g / 2
}

/// A SAELens folder of generation `g`: `cfg.json` metadata and every tensor carry `g`.
fn folder(g: u64) -> SaeLensFolder {
    let (d_in, d_sae) = (16, 64);
    let mut config = SaeLensConfig::new(Architecture::TopK, d_in, d_sae);
    config.k = Some(4.0);
    config
        .metadata
        .insert("generation".into(), serde_json::json!(g));
    let v = g as f32;
    let mut tensors = TensorSet::new();
    tensors.insert(
        "W_enc".into(),
        HostTensor::new(vec![d_in, d_sae], vec![v; d_in * d_sae]),
    );
    tensors.insert("b_enc".into(), HostTensor::new(vec![d_sae], vec![v; d_sae]));
    tensors.insert(
        "W_dec".into(),
        HostTensor::new(vec![d_sae, d_in], vec![v; d_in * d_sae]),
    );
    tensors.insert("b_dec".into(), HostTensor::new(vec![d_in], vec![v; d_in]));
    SaeLensFolder::new(config, tensors, None)
}

fn checkpoints(root: &Path) -> CheckpointDir {
    CheckpointDir::new(root.join("checkpoints"), 2)
}

/// The child: save generation after generation until killed, reporting each finished pair.
fn child(root: &Path, start: u64) -> ! {
    let ckpt = checkpoints(root);
    for g in start.. {
        let mut state = g.to_le_bytes().to_vec();
        state.extend_from_slice(&payload(g));
        ckpt.save(
            step_of(g),
            &[("state.bin", state), ("payload.bin", payload(g))],
        )
        .expect("child: checkpoint save");
        folder(g)
            .write(root.join("sae"))
            .expect("child: SAELens save");
        println!("saved {g}");
    }
    unreachable!("the generations never run out")
}

/// The generation of the latest checkpoint, checked whole; `None` when nothing was saved.
fn load_checkpoint(root: &Path) -> Option<u64> {
    let (step, files) = checkpoints(root)
        .load_latest()
        .unwrap_or_else(|e| panic!("the checkpoint does not load after a kill: {e}"))?;
    let state = &files["state.bin"];
    let g = u64::from_le_bytes(state[..8].try_into().unwrap());
    assert_eq!(step, step_of(g), "checkpoint step and generation disagree");
    assert!(
        state[8..] == payload(g),
        "state.bin of generation {g} is not whole"
    );
    assert!(
        files["payload.bin"] == payload(g),
        "payload.bin is not generation {g}'s: a mix of two saves"
    );
    Some(g)
}

/// The generation of the SAELens folder, checked whole; `None` when nothing was saved.
fn load_folder(root: &Path) -> Option<u64> {
    let dir = root.join("sae");
    if !dir.exists() {
        return None;
    }
    let f = SaeLensFolder::read(&dir)
        .unwrap_or_else(|e| panic!("the SAELens folder does not load after a kill: {e}"));
    let g = f.config.metadata["generation"]
        .as_u64()
        .expect("cfg.json carries its generation");
    for (name, t) in &f.tensors {
        assert!(
            t.data().iter().all(|&v| v == g as f32),
            "tensor {name} is not from the generation cfg.json names ({g}): a mix of two saves"
        );
    }
    Some(g)
}

#[test]
fn checkpoints_and_saelens_folders_survive_random_kills() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let start = std::env::var(CHILD_START).unwrap().parse().unwrap();
        child(Path::new(&dir), start);
    }
    let tmp = tempfile::tempdir().unwrap();
    let root: PathBuf = tmp.path().to_path_buf();
    let exe = std::env::current_exe().unwrap();
    let kills: usize = std::env::var(KILLS_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut rng = StdRng::seed_from_u64(14);
    // The newest generation the child reported finished (both saves), if any.
    let mut confirmed: Option<u64> = None;
    let mut next = 0u64;
    let mut survived = 0;
    let mut empty_loads = 0;
    for kill in 0..kills {
        let mut child = Command::new(&exe)
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, &root)
            .env(CHILD_START, next.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after 0–3 reported saves plus a random pause of up to a few saves' time:
        // anywhere inside a save, the first one and the process start included (a kill before
        // any report is drawn one time in eight).
        let reports = if rng.random_range(0..8) == 0 {
            0
        } else {
            rng.random_range(1..4)
        };
        let mut seen = 0;
        while seen < reports {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(g) = line.strip_prefix("saved ") {
                        confirmed = Some(g.trim().parse().unwrap());
                        seen += 1;
                    }
                }
                other => panic!("the child stopped on its own: {other:?}"),
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(rng.random_range(0..4000)));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(lines);

        let from_checkpoint = load_checkpoint(&root);
        let from_folder = load_folder(&root);
        for (what, loaded) in [
            ("checkpoint", from_checkpoint),
            ("SAELens folder", from_folder),
        ] {
            match (loaded, confirmed) {
                (None, None) => empty_loads += 1,
                (None, Some(c)) => panic!("kill {kill}: the {what} vanished after generation {c}"),
                (Some(g), Some(c)) => assert!(
                    g >= c,
                    "kill {kill}: the {what} went back to generation {g} after {c} was saved"
                ),
                (Some(_), None) => {}
            }
        }
        let newest = from_checkpoint.max(from_folder);
        if let Some(g) = newest {
            next = next.max(g + 1);
        }
        survived += 1;
    }
    // Saving goes on normally over whatever the kills left behind.
    checkpoints(&root)
        .save(
            step_of(next),
            &[
                ("state.bin", {
                    let mut s = next.to_le_bytes().to_vec();
                    s.extend_from_slice(&payload(next));
                    s
                }),
                ("payload.bin", payload(next)),
            ],
        )
        .unwrap();
    assert_eq!(load_checkpoint(&root), Some(next));
    folder(next).write(root.join("sae")).unwrap();
    assert_eq!(load_folder(&root), Some(next));
    println!(
        "kill test: {survived} kills survived (SIGKILL at random points; {} generations saved, \
         {empty_loads} loads found nothing saved yet, every other load whole and not older than \
         the last reported save)",
        next
    );
    assert_eq!(survived, kills);
    assert!(
        next >= 10,
        "the children saved too little to test anything: {next} generations"
    );
}
