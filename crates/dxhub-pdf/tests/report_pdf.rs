//! Renders reports and checks them with independent readers: poppler-utils (pdftotext,
//! pdfinfo, pdffonts, pdftoppm) and zbar (zbarimg). A missing tool or font is a failure
//! under CI=true and a skip elsewhere (`apt-get install poppler-utils zbar-tools
//! fonts-wqy-microhei`).

use std::path::{Path, PathBuf};
use std::process::Command;

use dxhub_pdf::{Figure, FontData, ReportPdf, Section, SignatureBlock, find_font, render};

const URL: &str = "https://hub.example.cn/api/v1/reports/42/verify?v=3";
const FINGERPRINT: &str = "SM3:ab12cd34ef56a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn skip_or_panic(what: &str) {
    if ci() {
        panic!("{what} (required under CI=true)");
    }
    eprintln!("SKIP: {what}");
}

/// True when all `tools` are on PATH; otherwise skips (or panics under CI=true).
fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip_or_panic(&format!(
        "missing tools {} (apt-get install -y poppler-utils zbar-tools)",
        missing.join(", ")
    ));
    false
}

fn font() -> Option<FontData> {
    match find_font() {
        Ok(f) => Some(f),
        Err(e) => {
            skip_or_panic(&format!("no CJK font: {e}"));
            None
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn png_figure(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

fn jpeg_figure(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = if (x / 8 + y / 8) % 2 == 0 { 230 } else { 30 };
        image::Rgb([v, v, v])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

const FINDINGS: &str = "胸廓对称，气管居中。双肺纹理增多、增粗，右下肺野见斑片状模糊影，边缘欠清，\
密度不均。双侧肺门不大。心影大小、形态未见明显异常，主动脉结不宽。双侧膈面光整，肋膈角锐利。\
所见骨质结构未见明显异常。";
const IMPRESSION: &str = "右下肺炎症，建议抗炎治疗后复查。";

fn sample_report() -> ReportPdf {
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    ReportPdf {
        alliance: "演示医共体".into(),
        centre: "县人民医院 医学影像中心".into(),
        title: "医学影像诊断报告".into(),
        patient: pairs(&[
            ("姓名", "张三"),
            ("性别", "男"),
            ("年龄", "56岁"),
            ("患者ID", "P001"),
        ]),
        exam: pairs(&[
            ("检查项目", "胸部正位片"),
            ("检查日期", "2026-11-20"),
            ("送检机构", "城关镇卫生院"),
            ("检查号", "A123"),
        ]),
        banner: None,
        hr_mark: true,
        sections: vec![
            Section {
                heading: "检查所见".into(),
                // Long enough to push the report onto a second page.
                text: [FINDINGS; 10].join("\n"),
            },
            Section {
                heading: "诊断意见".into(),
                text: IMPRESSION.into(),
            },
            Section {
                heading: "建议".into(),
                text: "一周后复查胸片。Follow-up chest X-ray in one week.".into(),
            },
        ],
        fields: pairs(&[("病灶部位", "右下肺"), ("病灶大小", "约 32 mm × 25 mm")]),
        figures: vec![
            Figure {
                caption: "图1 胸部正位片关键图像".into(),
                image: png_figure(160, 120),
            },
            Figure {
                caption: "图2 局部放大".into(),
                image: jpeg_figure(96, 64),
            },
        ],
        addenda: vec![Section {
            heading: "补充报告（2026-11-21 李四）".into(),
            text: "复阅后补充：左上肺未见异常。".into(),
        }],
        communications: vec!["2026-11-20 10:32 电话通知临床医师王五，已复述确认。".into()],
        signature: Some(SignatureBlock {
            author: "李四".into(),
            verifier: "赵六".into(),
            signed_at: "2026-11-20 10:30:00".into(),
            fingerprint: FINGERPRINT.into(),
        }),
        verify_url: Some(URL.into()),
        footer: "本报告仅供临床参考，请以签名版本为准。".into(),
    }
}

fn write_pdf(dir: &Path, name: &str, report: &ReportPdf, font: &FontData) -> PathBuf {
    let bytes = render(report, font).expect("render");
    assert!(bytes.starts_with(b"%PDF-"));
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write pdf");
    // Keep a copy for eyeballing: DXHUB_PDF_TEST_OUT=/some/dir.
    if let Some(out) = std::env::var_os("DXHUB_PDF_TEST_OUT") {
        std::fs::write(Path::new(&out).join(name), &bytes).expect("copy pdf");
    }
    path
}

fn page_count(pdf: &str) -> usize {
    let info = run("pdfinfo", &[pdf]);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Pages: in pdfinfo output")
}

#[test]
fn text_is_recoverable_and_pages_are_a4() {
    if !have_tools(&["pdftotext", "pdfinfo"]) {
        return;
    }
    let Some(font) = font() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let report = sample_report();
    let pdf = write_pdf(dir.path(), "report.pdf", &report, &font);
    let pdf = pdf.to_str().expect("utf-8 path");

    let info = run("pdfinfo", &[pdf]);
    let pages = page_count(pdf);
    assert_eq!(pages, 2, "expected a two-page report:\n{info}");
    let size = info
        .lines()
        .find_map(|l| l.strip_prefix("Page size:"))
        .expect("Page size:");
    let dims: Vec<f32> = size
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(
        dims.len() >= 2 && (dims[0] - 595.0).abs() < 1.5 && (dims[1] - 842.0).abs() < 1.5,
        "not A4: {size}"
    );
    assert!(
        info.lines()
            .any(|l| l.starts_with("Title:") && l.contains("医学影像诊断报告")),
        "no document title:\n{info}"
    );

    let text = run("pdftotext", &["-layout", "-enc", "UTF-8", pdf, "-"]);
    let flat = squash(&text);
    for needle in [
        "演示医共体",
        "县人民医院医学影像中心",
        "医学影像诊断报告",
        "HR",
        "姓名：张三",
        "患者ID：P001",
        "送检机构：城关镇卫生院",
        "检查所见",
        "诊断意见",
        "建议",
        IMPRESSION,
        "Follow-upchestX-rayinoneweek.",
        "病灶大小",
        "图1胸部正位片关键图像",
        "补充报告（2026-11-21李四）",
        "危急值沟通记录",
        "报告医师：李四",
        "审核医师：赵六",
        FINGERPRINT,
        URL,
        "第1页/共2页",
        "第2页/共2页",
    ] {
        assert!(
            flat.contains(&squash(needle)),
            "missing {needle:?} in:\n{text}"
        );
    }
    // The Chinese body text survives wrapping and the page break.
    assert_eq!(
        flat.matches(&squash(FINDINGS)).count(),
        10,
        "findings paragraph not recovered 10 times:\n{text}"
    );
    // Each page carries a header: the compact one repeats the title on page 2.
    let page2 = text.split('\u{c}').nth(1).expect("page 2 text");
    assert!(squash(page2).contains("医学影像诊断报告"), "{page2}");
}

#[test]
fn qr_code_decodes_to_verify_url() {
    if !have_tools(&["pdftoppm", "zbarimg", "pdfinfo"]) {
        return;
    }
    let Some(font) = font() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = write_pdf(dir.path(), "report.pdf", &sample_report(), &font);
    let pdf = pdf.to_str().expect("utf-8 path");
    let last = page_count(pdf).to_string();
    let prefix = dir.path().join("page");
    run(
        "pdftoppm",
        &[
            "-r",
            "200",
            "-png",
            "-f",
            &last,
            "-l",
            &last,
            pdf,
            prefix.to_str().expect("utf-8 path"),
        ],
    );
    let png = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("rasterised page");
    let decoded = run("zbarimg", &["--raw", "-q", png.to_str().expect("utf-8")]);
    assert_eq!(decoded.trim_end_matches(['\n', '\r']), URL);
}

#[test]
fn cjk_font_is_embedded_as_subset() {
    if !have_tools(&["pdffonts"]) {
        return;
    }
    let Some(font) = font() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = write_pdf(dir.path(), "report.pdf", &sample_report(), &font);
    let out = run("pdffonts", &[pdf.to_str().expect("utf-8 path")]);
    let mut lines = out.lines();
    let header = lines.next().expect("pdffonts header");
    let col = |name: &str| header.find(name).expect("pdffonts column");
    let (emb, sub, uni) = (col(" emb") + 1, col(" sub") + 1, col(" uni") + 1);
    let rows: Vec<&str> = lines.skip(1).filter(|l| !l.trim().is_empty()).collect();
    assert!(!rows.is_empty(), "no fonts:\n{out}");
    for row in rows {
        let at = |c: usize| row.get(c..c + 3).unwrap_or("").trim().to_owned();
        assert_eq!(at(emb), "yes", "font not embedded:\n{out}");
        assert_eq!(at(sub), "yes", "font not subset:\n{out}");
        assert_eq!(at(uni), "yes", "no ToUnicode map:\n{out}");
        let name = row.split_whitespace().next().unwrap_or("");
        assert!(
            name.len() > 7 && name.as_bytes()[6] == b'+',
            "no subset tag in {name:?}:\n{out}"
        );
    }
}

#[test]
fn long_text_wraps_inside_the_page() {
    if !have_tools(&["pdftotext"]) {
        return;
    }
    let Some(font) = font() else { return };
    let mut r = sample_report();
    let long_name = format!("欧阳{}", "Wolfeschlegelsteinhausenbergerdorff".repeat(6));
    r.patient[0].1 = long_name.clone();
    r.banner = Some("草稿 未签名，不作诊断依据".into());
    r.sections.push(Section {
        heading: "超长内容".into(),
        text: format!("{} {}", "肺".repeat(3000), "x".repeat(2000)),
    });
    let long_url = format!("{URL}&token={}", "a1b2c3d4".repeat(40));
    r.verify_url = Some(long_url.clone());
    r.footer = "页脚".repeat(200);
    r.figures.push(Figure {
        caption: "心电图".into(),
        image: png_figure(2400, 600),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let pdf = write_pdf(dir.path(), "long.pdf", &r, &font);
    let pdf = pdf.to_str().expect("utf-8 path");
    let bbox = run("pdftotext", &["-bbox", pdf, "-"]);
    let attr = |l: &str, key: &str| -> Option<f32> {
        let i = l.find(key)? + key.len();
        l[i..].split('"').next()?.parse().ok()
    };
    let mut words = 0;
    for l in bbox.lines().filter(|l| l.contains("<word")) {
        words += 1;
        let (x0, x1) = (
            attr(l, "xMin=\"").expect("xMin"),
            attr(l, "xMax=\"").expect("xMax"),
        );
        let (y0, y1) = (
            attr(l, "yMin=\"").expect("yMin"),
            attr(l, "yMax=\"").expect("yMax"),
        );
        assert!(x0 >= 45.0 && x1 <= 550.0, "word off the column: {l}");
        assert!(y0 >= 40.0 && y1 <= 802.0, "word off the page: {l}");
    }
    assert!(words > 100);
    let text = squash(&run("pdftotext", &["-enc", "UTF-8", pdf, "-"]));
    assert!(text.contains("草稿未签名，不作诊断依据"));
    assert!(text.contains(&squash(&long_url)), "long URL not recovered");
}

#[test]
fn bad_figure_is_an_error_not_a_panic() {
    let Some(font) = font() else { return };
    let mut r = sample_report();
    r.figures = vec![Figure {
        caption: "坏图".into(),
        image: b"not an image".to_vec(),
    }];
    assert!(matches!(
        render(&r, &font),
        Err(dxhub_pdf::PdfError::Image { index: 0, .. })
    ));
}
