//! ECG upload load generator for `bench/ecg/run.sh`: D simulated village devices upload
//! distinct 10 s / 12-lead / 500 Hz ECGs (the JSON form, I, II, V1–V6 as a real device
//! sends) at the same time, each as soon as its previous upload was answered; prints the
//! latency from request to the 201 (stored, indexed, analysed) as JSON.
//!
//!   ecg_load URL TOKENS_FILE UPLOADS_PER_DEVICE [ROUND]
//!
//! TOKENS_FILE holds one device token per line; one concurrent device per token. ROUND
//! (default 0) makes the ECGs of this run differ from other rounds' (re-sends would be
//! answered from the idempotency record, which is not what is measured).

use std::time::Instant;

use dxhub_ecg::LeadCode;
use dxhub_ecg::synth::{SynthSpec, generate};

fn body(device: usize, k: usize, round: usize) -> Vec<u8> {
    let k = k + round * 10_000;
    let mut spec = SynthSpec::sinus(55.0 + ((device * 7 + k * 13) % 60) as f64);
    spec.seed = (device * 100_000 + k) as u64 + 1;
    spec.snr_db = Some(25.0);
    spec.wander_uv = 100.0;
    let (mut ecg, _) = generate(&spec);
    ecg.leads.retain(|l| {
        !matches!(
            l.code,
            LeadCode::III | LeadCode::AVR | LeadCode::AVL | LeadCode::AVF
        )
    });
    ecg.patient.id = Some(format!("LOAD-{device}-{k}"));
    ecg.device.serial = Some(format!("LOAD-DEVICE-{device}"));
    serde_json::to_vec(&dxhub_ecg::json::to_json_form(&ecg, 1.0)).expect("json")
}

fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, tokens, per, round) = match args.as_slice() {
        [_, u, t, n] => (u.clone(), t.clone(), n.clone(), "0".to_owned()),
        [_, u, t, n, r] => (u.clone(), t.clone(), n.clone(), r.clone()),
        _ => panic!("usage: ecg_load URL TOKENS_FILE UPLOADS_PER_DEVICE [ROUND]"),
    };
    let per: usize = per.parse().expect("uploads per device");
    let round: usize = round.parse().expect("round");
    let tokens: Vec<String> = std::fs::read_to_string(&tokens)
        .expect("tokens")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    // bodies are made before the clock starts: the devices' own work is not measured
    let bodies: Vec<Vec<Vec<u8>>> = (0..tokens.len())
        .map(|d| (0..per).map(|k| body(d, k, round)).collect())
        .collect();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (d, (token, mine)) in tokens.into_iter().zip(bodies).enumerate() {
        let client = client.clone();
        let url = format!("{url}/api/v1/ecg");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for b in mine {
                let t0 = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await
                    .expect("send");
                let status = r.status();
                let text = r.text().await.expect("body");
                assert_eq!(status, 201, "device {d}: {text}");
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "uploads": all.len(),
            "seconds": wall,
            "per_second": all.len() as f64 / wall,
            "p50_ms": pct(&all, 0.5),
            "p90_ms": pct(&all, 0.9),
            "p99_ms": pct(&all, 0.99),
            "max_ms": all.last().copied().unwrap_or(0.0),
        })
    );
}
