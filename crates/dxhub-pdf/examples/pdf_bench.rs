//! PDF rendering benchmark for `bench/reports/run.sh`: a two-page Chinese report with an
//! ECG-sized figure (2,400 × 1,200 PNG), fields, addenda and the QR code, rendered
//! repeatedly with the installed CJK font.
//!
//!   pdf_bench [N]    (default 50)
//!
//! Prints `{"n", "mean_ms", "p50_ms", "p95_ms", "max_ms", "pdf_bytes"}`.

use std::time::Instant;

use dxhub_pdf::{Figure, ReportPdf, Section, SignatureBlock, find_font, render};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let font = find_font().expect("a CJK font (apt-get install fonts-wqy-microhei)");
    let img = image::RgbImage::from_fn(2400, 1200, |x, y| {
        if x % 50 == 0 || y % 50 == 0 {
            image::Rgb([240, 160, 160])
        } else if (y as i64 - 600 - ((x as f64 / 40.0).sin() * 80.0) as i64).abs() < 2 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let text = "窦性心律，心率72次/分。PR间期160毫秒，QRS时限92毫秒，QT/QTc 380/417毫秒。各导联ST段未见明显偏移，T波未见异常。".repeat(6);
    let report = ReportPdf {
        alliance: "演示医共体".into(),
        centre: "县人民医院 心电诊断中心".into(),
        title: "心电图诊断报告".into(),
        patient: vec![
            ("姓名".into(), "王五".into()),
            ("性别".into(), "男".into()),
            ("出生日期".into(), "1949-12-31".into()),
            ("患者ID".into(), "11010519491231002X".into()),
        ],
        exam: vec![
            ("检查项目".into(), "常规十二导联心电图".into()),
            ("检查日期".into(), "2026-11-22".into()),
            ("送检机构".into(), "东风村卫生室".into()),
        ],
        banner: None,
        hr_mark: true,
        sections: vec![
            Section {
                heading: "检查所见".into(),
                text: text.clone(),
            },
            Section {
                heading: "诊断意见".into(),
                text: "窦性心律，正常心电图。".into(),
            },
        ],
        fields: (0..10)
            .map(|i| (format!("测量项{i}"), format!("{} ms", 100 + i)))
            .collect(),
        figures: vec![Figure {
            caption: "心电图 25 mm/s 10 mm/mV".into(),
            image: png,
        }],
        addenda: vec![Section {
            heading: "补充报告".into(),
            text: "建议一周后复查。".into(),
        }],
        communications: vec![
            "危急值（ecg_acute_mi）由 senior 于 2026-11-22T10:00:00+08:00 报告".into(),
        ],
        signature: Some(SignatureBlock {
            author: "reader".into(),
            verifier: "senior".into(),
            signed_at: "2026-11-22T10:05:00+08:00".into(),
            fingerprint: "ab".repeat(32),
        }),
        verify_url: Some("https://hub.example.cn/api/v1/reports/42/verify?version=3".into()),
        footer: "报告编号 42-v3".into(),
    };
    let mut times = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let t = Instant::now();
        let pdf = render(&report, &font).expect("render");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = pdf.len();
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{}",
        serde_json::json!({
            "n": n,
            "mean_ms": times.iter().sum::<f64>() / n as f64,
            "p50_ms": pct(0.5),
            "p95_ms": pct(0.95),
            "max_ms": pct(1.0),
            "pdf_bytes": bytes,
        })
    );
}
